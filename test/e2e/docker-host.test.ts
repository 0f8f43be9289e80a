// hako talks to the engine the docker CLI points at (DOCKER_HOST, a context, else the default
// socket), and never starts a second dockerd: a wrong DOCKER_HOST fails with the socket named
// and the fix, and a compatible socket elsewhere (Podman's, here a relay to the real engine)
// just works. Real CLI runs against the real engine; dockerd processes counted in /proc.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/hako.ts';

const ENGINE_SOCKET = '/var/run/docker.sock';

/** The dockerd processes running now, by pid (what a second start would add to). */
function dockerdPids(): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd';
    } catch {
      return false; // ended while we looked
    }
  }).map(Number).sort((a, b) => a - b);
}

function tempDirs(t: { after(fn: () => void): void }): { dir: string; env: Record<string, string> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-docker-host-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['home', 'config', 'cache']) fs.mkdirSync(path.join(dir, sub));
  return { dir, env: { HAKO_HOME: path.join(dir, 'home'), HAKO_CONFIG: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache') } };
}

/** A unix socket elsewhere that relays every connection to the real engine, as Podman's compatible socket would answer. */
async function relaySocket(t: { after(fn: () => Promise<void>): void }, socketPath: string): Promise<void> {
  const server = net.createServer((client) => {
    const engine = net.connect({ path: ENGINE_SOCKET });
    client.pipe(engine).pipe(client);
    client.on('error', () => engine.destroy());
    engine.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
}

test('docker host - with a wrong DOCKER_HOST, setup, start and doctor fail naming the socket and the fix, and no second dockerd appears', async (t) => {
  assert.ok(fs.existsSync(ENGINE_SOCKET), 'this test needs the local engine the suite runs on');
  const { dir, env } = tempDirs(t);
  const socket = `unix://${path.join(dir, 'nothing-here.sock')}`;
  const before = dockerdPids();
  assert.ok(before.length > 0, 'a dockerd runs already: the case the issue hit');
  for (const command of ['setup', 'start', 'doctor']) {
    const run = await runCli([command], { ...env, DOCKER_HOST: socket });
    const output = run.stdout + run.stderr;
    assert.equal(run.code, 1, `${command} fails:\n${output}`);
    assert.ok(output.includes(`DOCKER_HOST=${socket}: no engine answers there (connect: no such file).`), `${command} names the socket and why:\n${output}`);
    assert.match(output, /unset DOCKER_HOST/, `${command} says how to fix it`);
    assert.doesNotMatch(output, /starting .*dockerd|docker\.pid/, `${command} starts nothing and gives no pid-file advice`);
  }
  assert.deepEqual(dockerdPids(), before, 'the same dockerd processes, no new one');
});

test('docker host - DOCKER_HOST set to the running engine\'s own socket works for doctor, and names it', async (t) => {
  const { env } = tempDirs(t);
  const run = await runCli(['doctor'], { ...env, DOCKER_HOST: `unix://${ENGINE_SOCKET}` });
  assert.match(run.stdout, new RegExp(`\\[ ok \\] container engine at DOCKER_HOST=unix://${ENGINE_SOCKET}\\n`), run.stdout + run.stderr);
});

test('docker host - a compatible socket elsewhere (as Podman\'s) just works for setup and doctor, and no engine is started', async (t) => {
  const { dir, env } = tempDirs(t);
  const socketPath = path.join(dir, 'podman.sock');
  await relaySocket(t, socketPath);
  const before = dockerdPids();
  const doctor = await runCli(['doctor'], { ...env, DOCKER_HOST: `unix://${socketPath}` });
  assert.ok(doctor.stdout.includes(`[ ok ] container engine at DOCKER_HOST=unix://${socketPath}\n`), doctor.stdout + doctor.stderr);
  const setup = await runCli(['setup'], { ...env, DOCKER_HOST: `unix://${socketPath}` });
  assert.equal(setup.code, 0, setup.stdout + setup.stderr);
  assert.match(setup.stdout, new RegExp(`engine: server \\S+ answers at DOCKER_HOST=unix://${socketPath.replace(/[.]/g, '\\.')}\\n`));
  assert.deepEqual(dockerdPids(), before, 'no dockerd started');
});
