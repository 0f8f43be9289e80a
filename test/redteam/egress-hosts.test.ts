// Red team: egress to hosts that are not what they seem. A compromised agent in a real container
// uses its allowlist and its one bound secret against (a) this machine's own interface address,
// and (b) the secret's bound host turned hostile, which echoes the injected value back compressed
// or in a header of the agent's choosing. The remote host is a test host of our own: a network
// namespace on this machine, reached over a veth link.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestHost, testHostProblem, type TestHost } from '../support/netns.ts';
import { startRecordingServer, type RecordingServer } from '../support/raw-http.ts';
import { attack, startFixture, type Fixture } from './support.ts';

const skip = testHostProblem() ?? false;
const ROOT = path.resolve(import.meta.dirname, '..', '..');

let f: Fixture;
let net: TestHost;
let dir: string;
let hostSide: RecordingServer;

before(async () => {
  if (skip) return;
  net = createTestHost();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-echo-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${net.remote}`, '-addext', `subjectAltName=IP:${net.remote}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const echo: ChildProcess = net.spawn(process.execPath, [path.join(ROOT, 'test', 'support', 'echo-server.ts'), net.remote, cert, key]);
  await once(echo.stdout!, 'data');
  // A service of this machine's own, on its link address: what the agent must never reach.
  hostSide = await startRecordingServer({ host: net.local, port: 80 });
  f = await startFixture({ env: { NODE_EXTRA_CA_CERTS: cert } });
  fs.writeFileSync(path.join(f.hako.configDir, 'egress.json'), JSON.stringify({
    groups: { team: [net.remote, net.local] },
    secrets: { TOKEN: { hosts: [net.remote], groups: ['team'] } },
  }));
});

after(async () => {
  await f?.close();
  await hostSide?.close();
  net?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A gateway-form request (absolute https:// URL through the in-container forwarder), so the proxy injects secrets. */
const gateway = (url: string, header: string) => `curl -s -m 10 -H '${header}' --request-target '${url}' http://127.0.0.1:3128/ -o /tmp/body; echo "rc=$?"; (gunzip -c /tmp/body 2>/dev/null || cat /tmp/body)`;

describe('egress to hosts that are not what they seem', { skip }, () => {
  test('attack 41 - reach a service of this host through an allowlisted address of its own interfaces', async () => {
    const out = await attack(f, 'team', [
      `curl -s -m 10 http://${net.local}/; echo " rc=$?"`,
      `curl -s -m 10 https://${net.local}/ 2>&1; echo " rc=$?"`,
    ]);
    assert.match(out[0]!, new RegExp(`hako refused ${net.local.replace(/\./g, '\\.')}:80: .*an address of this host`), out[0]);
    assert.match(out[1]!, /rc=56/, 'the tunnel was refused too');
    assert.deepEqual(hostSide.seen, [], 'the host service was never reached');
  });

  test('attack 42 - make the bound host echo the secret gzip-compressed (although identity was asked) or in a header of the agent\'s choosing', async () => {
    const value = `${f.canary.text}-config`;
    const out = await attack(f, 'team', [
      gateway(`https://${net.remote}/plain`, 'authorization: Bearer hako-secret:TOKEN'),
      gateway(`https://${net.remote}/gzip`, 'authorization: Bearer hako-secret:TOKEN'),
      gateway(`https://${net.remote}/plain`, 'x-reflect: hako-secret:TOKEN'),
    ]);
    assert.match(out[0]!, /echo:Bearer hako-secret:TOKEN/, 'the secret was injected and its echo redacted');
    assert.match(out[1]!, /echo:Bearer hako-secret:TOKEN/, 'the compressed echo was decoded and redacted before the container got it');
    assert.match(out[2]!, /secret TOKEN may only be sent in the header authorization, not in x-reflect/);
    assert.ok(!out.join('\n').includes(value), 'the value never reached the container');
  });
});
