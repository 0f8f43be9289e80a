// What hako does when no container engine answers: install and start Docker where it may
// (root on Debian, the default socket, no dockerd running), otherwise name the endpoint it
// tried and say exactly what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_ENDPOINT, describeEndpoint, explainDaemonLog, planEngine, resolveEndpoint, runningDockerd } from '../../src/runtime/engine.ts';
import type { EngineEndpoint, EngineFacts, EnginePlan } from '../../src/runtime/engine.ts';

const defaultSocket: EngineEndpoint = { host: DEFAULT_ENDPOINT, source: 'default', context: 'default', error: '' };

const debianRoot: EngineFacts = {
  platform: 'linux',
  root: true,
  debian: true,
  wsl: false,
  systemd: false,
  dockerCli: false,
  dockerd: false,
  infoError: 'spawn docker ENOENT',
  endpoint: defaultSocket,
  connectError: 'no such file',
  dockerdPids: [],
};

function failMessage(plan: EnginePlan): string {
  assert.equal(plan.kind, 'fail');
  return plan.kind === 'fail' ? plan.message : '';
}

test('planEngine - root on Debian without Docker installs docker.io', () => {
  assert.deepEqual(planEngine(debianRoot, { install: true }), { kind: 'install' });
  assert.deepEqual(planEngine({ ...debianRoot, dockerCli: true }, { install: true }), { kind: 'install' });
});

test('planEngine - root on Debian with Docker installed starts it through systemd or a detached dockerd', () => {
  const installed = { ...debianRoot, dockerCli: true, dockerd: true, infoError: 'Cannot connect to the Docker daemon' };
  assert.deepEqual(planEngine(installed, { install: true }), { kind: 'start', via: 'dockerd' });
  assert.deepEqual(planEngine({ ...installed, systemd: true }, { install: true }), { kind: 'start', via: 'systemctl' });
});

test('planEngine - without install permission, root on Debian is told to run hako setup', () => {
  assert.match(failMessage(planEngine(debianRoot, { install: false })), /hako setup/);
});

test('planEngine - root on another Linux is told to install Docker Engine and start it', () => {
  const message = failMessage(planEngine({ ...debianRoot, debian: false }, { install: true }));
  assert.match(message, /docs\.docker\.com\/engine\/install/);
  assert.match(message, /systemctl start docker/);
});

test('planEngine - macOS names Docker Desktop, OrbStack and colima', () => {
  const mac = { ...debianRoot, platform: 'darwin' as const, root: false, debian: false };
  const message = failMessage(planEngine(mac, { install: true }));
  for (const engine of ['Docker Desktop', 'OrbStack', 'colima']) assert.ok(message.includes(engine), engine);
  assert.match(failMessage(planEngine({ ...mac, dockerCli: true }, { install: true })), /colima start/);
});

test('planEngine - a Linux user without root is told to ask for the daemon and the docker group', () => {
  const user = { ...debianRoot, root: false, dockerCli: true, dockerd: true, infoError: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' };
  const notRunning = failMessage(planEngine(user, { install: true }));
  assert.match(notRunning, /sudo systemctl start docker/);
  assert.match(notRunning, /usermod -aG docker/);

  const denied = failMessage(planEngine({ ...user, infoError: 'permission denied while trying to connect to the Docker daemon socket' }, { install: true }));
  assert.match(denied, /docker group/);
  assert.doesNotMatch(denied, /systemctl start/);

  const missing = failMessage(planEngine({ ...user, dockerCli: false, dockerd: false }, { install: true }));
  assert.match(missing, /apt-get install docker\.io/);
});

test('planEngine - WSL users also hear about Docker Desktop WSL integration', () => {
  const wsl = { ...debianRoot, root: false, wsl: true, dockerCli: true, dockerd: false, infoError: 'Cannot connect' };
  assert.match(failMessage(planEngine(wsl, { install: true })), /WSL integration/);
});

// --- which endpoint, and never a second engine (issue #13, item 3) ---

const installedDebianRoot: EngineFacts = { ...debianRoot, dockerCli: true, dockerd: true, infoError: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' };
const wrongHost: EngineEndpoint = { host: 'unix:///nope.sock', source: 'DOCKER_HOST', context: '', error: '' };

test('resolveEndpoint - DOCKER_HOST wins over DOCKER_CONTEXT and the current context, as in the docker CLI', () => {
  const e = resolveEndpoint({ DOCKER_HOST: 'unix:///nope.sock', DOCKER_CONTEXT: 'colima' }, { name: 'colima', host: 'unix:///colima.sock' });
  assert.deepEqual(e, wrongHost);
  assert.equal(describeEndpoint(e), 'DOCKER_HOST=unix:///nope.sock');
});

test('resolveEndpoint - DOCKER_CONTEXT, else a context chosen with `docker context use`, else the default socket', () => {
  const fromVar = resolveEndpoint({ DOCKER_CONTEXT: 'colima' }, { name: 'colima', host: 'unix:///colima.sock' });
  assert.equal(describeEndpoint(fromVar), 'DOCKER_CONTEXT=colima (unix:///colima.sock)');
  const chosen = resolveEndpoint({}, { name: 'desktop-linux', host: 'unix:///Users/me/.docker/run/docker.sock' });
  assert.equal(describeEndpoint(chosen), 'docker context "desktop-linux" (unix:///Users/me/.docker/run/docker.sock)');
  assert.deepEqual(resolveEndpoint({}, { name: 'default', host: DEFAULT_ENDPOINT }), defaultSocket);
  assert.deepEqual(resolveEndpoint({}, null), defaultSocket, 'without a docker CLI to ask, the default');
  assert.equal(describeEndpoint(defaultSocket), `the default socket ${DEFAULT_ENDPOINT}`);
});

test('resolveEndpoint - a context the CLI cannot read is kept as an error, not taken for the default socket', () => {
  const e = resolveEndpoint({ DOCKER_CONTEXT: 'gone' }, { error: 'context "gone": context not found' });
  assert.equal(e.host, '');
  assert.match(e.error, /not found/);
});

test('planEngine - a wrong DOCKER_HOST never starts an engine: it names the socket, why it failed and the fix', () => {
  const facts = { ...installedDebianRoot, endpoint: wrongHost, connectError: 'no such file' };
  const message = failMessage(planEngine(facts, { install: true }));
  assert.ok(message.startsWith('DOCKER_HOST=unix:///nope.sock: no engine answers there (connect: no such file).'), message);
  assert.match(message, /unset DOCKER_HOST/);
  assert.match(message, /started none/);
});

test('planEngine - a DOCKER_HOST on another machine or a context elsewhere is never started, on any platform', () => {
  const tcp: EngineEndpoint = { host: 'tcp://10.0.0.5:2375', source: 'DOCKER_HOST', context: '', error: '' };
  const context: EngineEndpoint = { host: 'unix:///root/.colima/docker.sock', source: 'context', context: 'colima', error: '' };
  for (const endpoint of [tcp, context]) {
    for (const platform of ['linux', 'darwin'] as const) {
      const message = failMessage(planEngine({ ...installedDebianRoot, platform, endpoint, connectError: '' }, { install: true }));
      assert.ok(message.startsWith(`${describeEndpoint(endpoint)}: no engine answers there (docker info: Cannot connect`), message);
    }
  }
  assert.match(failMessage(planEngine({ ...installedDebianRoot, endpoint: context }, { install: true })), /docker context use default/);
});

test('planEngine - a Podman socket in DOCKER_HOST that does not answer is told how to start Podman\'s socket, not Docker', () => {
  const podman: EngineEndpoint = { host: 'unix:///run/user/1000/podman/podman.sock', source: 'DOCKER_HOST', context: '', error: '' };
  const message = failMessage(planEngine({ ...installedDebianRoot, root: false, endpoint: podman, connectError: 'connection refused, nothing listens on it' }, { install: true }));
  assert.match(message, /podman\.socket/);
  assert.doesNotMatch(message, /systemctl start docker/);
});

test('planEngine - DOCKER_HOST set to the default socket itself is the default local engine: setup may start it', () => {
  const explicit: EngineEndpoint = { host: DEFAULT_ENDPOINT, source: 'DOCKER_HOST', context: '', error: '' };
  assert.deepEqual(planEngine({ ...installedDebianRoot, endpoint: explicit }, { install: true }), { kind: 'start', via: 'dockerd' });
});

test('planEngine - a context the docker CLI cannot read starts nothing and says how to list and choose contexts', () => {
  const broken: EngineEndpoint = { host: '', source: 'DOCKER_CONTEXT', context: 'gone', error: 'context "gone": context not found' };
  const message = failMessage(planEngine({ ...installedDebianRoot, endpoint: broken }, { install: true }));
  assert.ok(message.startsWith('DOCKER_CONTEXT=gone: the docker CLI cannot read this context (context "gone": context not found).'), message);
  assert.match(message, /docker context ls/);
});

test('planEngine - a dockerd that runs but does not answer on the default socket is reported, and no second one is started', () => {
  const facts = { ...installedDebianRoot, connectError: 'connection refused, nothing listens on it', dockerdPids: [3045] };
  for (const systemd of [false, true]) {
    const message = failMessage(planEngine({ ...facts, systemd }, { install: true }));
    assert.ok(message.startsWith(`the default socket ${DEFAULT_ENDPOINT}: no engine answers there (connect: connection refused`), message);
    assert.match(message, /already running \(pid 3045\)/);
    assert.match(message, /will not start another/);
  }
  assert.match(failMessage(planEngine({ ...facts, root: false }, { install: false })), /already running/, 'a user is told too');
});

test('planEngine - the only start: root on Debian, the default socket, no dockerd running', () => {
  assert.deepEqual(planEngine(installedDebianRoot, { install: true }), { kind: 'start', via: 'dockerd' });
  assert.equal(planEngine({ ...installedDebianRoot, dockerdPids: [1] }, { install: true }).kind, 'fail');
  assert.equal(planEngine({ ...installedDebianRoot, endpoint: wrongHost }, { install: true }).kind, 'fail');
  assert.equal(planEngine(installedDebianRoot, { install: false }).kind, 'fail');
});

test('explainDaemonLog - the daemon log line "delete /var/run/docker.pid" is never passed on as advice', () => {
  const tail = [
    'time="2026-11-30T08:00:00Z" level=info msg="Starting up"',
    'failed to start daemon: pid file found, ensure docker is not running or delete /var/run/docker.pid',
  ];
  const shown = explainDaemonLog(tail);
  assert.equal(shown[0], tail[0]);
  assert.doesNotMatch(shown.join('\n'), /delete \/var\/run\/docker\.pid/);
  assert.match(shown[1]!, /another Docker daemon already runs/);
  assert.match(shown[1]!, /Do not delete the pid file/);
});

test('runningDockerd - counts dockerd processes by name, not a grep for it or a zombie', (t) => {
  const proc = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-proc-'));
  t.after(() => fs.rmSync(proc, { recursive: true, force: true }));
  const add = (pid: number, comm: string, state = 'S') => {
    fs.mkdirSync(path.join(proc, String(pid)));
    fs.writeFileSync(path.join(proc, String(pid), 'comm'), `${comm}\n`);
    fs.writeFileSync(path.join(proc, String(pid), 'stat'), `${pid} (${comm}) ${state} 1 1`);
  };
  add(3045, 'dockerd');
  add(12, 'grep');
  add(77, 'dockerd', 'Z');
  add(4000, 'dockerd');
  fs.mkdirSync(path.join(proc, 'self'));
  assert.deepEqual(runningDockerd(proc), [3045, 4000]);
  assert.deepEqual(runningDockerd(path.join(proc, 'missing')), []);
});
