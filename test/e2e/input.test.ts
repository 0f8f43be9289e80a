// Bad input gets a clear error and loses nothing: API misuse is a 4xx with a reason, the
// CLI explains what is wrong, and a message sent while the model is not configured is
// kept and answered once it is.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess, runCli } from '../support/hako.ts';

describe('HTTP API input checks', () => {
  let model: ModelServer;
  let hako: HakoProcess;
  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL } });
  });
  after(async () => { await hako.stop(); hako.cleanup(); await model.close(); });

  const cases: [string, string, RequestInit & { token?: string | null }, number, RegExp][] = [
    ['no token', '/api/groups/main/messages', { token: null }, 401, /bearer token/],
    ['a wrong token', '/api/groups/main/messages', { token: 'nope' }, 401, /bearer token/],
    ['an unknown group', '/api/groups/nosuch/messages', { method: 'POST', body: '{"text":"hi"}' }, 404, /unknown group "nosuch"/],
    ['malformed JSON', '/api/groups/main/messages', { method: 'POST', body: '{"text":' }, 400, /not valid JSON/],
    ['a body that is not an object', '/api/groups/main/messages', { method: 'POST', body: '["hi"]' }, 400, /JSON object/],
    ['a missing text', '/api/groups/main/messages', { method: 'POST', body: '{"sender":"x"}' }, 400, /"text" must be a string/],
    ['an empty text', '/api/groups/main/messages', { method: 'POST', body: '{"text":"  "}' }, 400, /empty/],
    ['a bad sender', '/api/groups/main/messages', { method: 'POST', body: '{"text":"hi","sender":""}' }, 400, /sender/],
    ['an oversized message', '/api/groups/main/messages', { method: 'POST', body: JSON.stringify({ text: 'x'.repeat(20_000) }) }, 413, /limit is 16000/],
    ['an oversized body', '/api/groups/main/messages', { method: 'POST', body: JSON.stringify({ text: 'x'.repeat(300_000) }) }, 413, /limit/],
    ['the wrong content type', '/api/groups/main/messages', { method: 'POST', body: 'text=hi', headers: { 'content-type': 'text/plain' } }, 415, /application\/json/],
    ['an unknown message id in after=', '/api/groups/main/messages?after=nope', {}, 404, /no message "nope"/],
    ['an unsupported method', '/api/groups/main/messages', { method: 'DELETE' }, 405, /use GET or POST/],
    ['an unknown endpoint', '/api/nothing', {}, 404, /no such endpoint/],
  ];
  for (const [what, p, init, status, reason] of cases) {
    test(`API - ${what} is answered ${status} with a reason`, async () => {
      const r = await hako.api(p, init);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(r.body.error, reason);
    });
  }

  test('API - rejected requests stored nothing, and the host keeps working', async () => {
    const before = await hako.messages('main');
    assert.equal(before.length, 0);
    model.script({ text: 'still here' });
    const id = await hako.post('main', 'are you ok?');
    const [reply] = await hako.waitForReplies('main', id);
    assert.equal(reply!.text, 'still here');
  });

  test('API token - generated once into HAKO_HOME/http-token, readable by the owner only', async () => {
    const { statSync } = await import('node:fs');
    const { join } = await import('node:path');
    assert.equal(statSync(join(hako.home, 'http-token')).mode & 0o777, 0o600);
    assert.ok(hako.token.length >= 32);
  });

  test('web chat - the page is served without the token and the API needs it', async () => {
    const page = await fetch(`${hako.base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>hako<\/title>/);
    const groups = await hako.api('/api/groups');
    assert.deepEqual(groups.body, { groups: [{ name: 'main', main: true, trigger: null }] });
  });

  test('hako chat - piped lines are sent and the answers printed', async () => {
    model.script({ text: 'pong from the agent' });
    const r = await runCli(['chat', 'main', '--sender', 'cli'], { HAKO_HOME: hako.home, HAKO_CONFIG: hako.configDir, HAKO_HTTP_PORT: String(hako.port) }, 'ping\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pong from the agent/);
    const unknown = await runCli(['chat', 'nosuch'], { HAKO_HOME: hako.home, HAKO_CONFIG: hako.configDir, HAKO_HTTP_PORT: String(hako.port) });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown group "nosuch"/);
  });

  // The test's own timeout turns a chat that never exits into a failure instead of a hang.
  test('regression: piped hako chat exits after --timeout with the reason, although the answer comes later', { timeout: 60_000 }, async () => {
    model.script({ toolCalls: [{ name: 'bash', args: { command: 'sleep 4' } }] }, { text: 'a late answer' });
    const r = await runCli(['chat', 'main', '--sender', 'cli', '--timeout', '1'], { HAKO_HOME: hako.home, HAKO_CONFIG: hako.configDir, HAKO_HTTP_PORT: String(hako.port) }, 'are you slow?\n');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no answer from "main" within 1 s \(the message is kept/);
    const [late] = await hako.waitForReplies('main', (await hako.messages('main')).filter((m) => m.text === 'are you slow?').at(-1)!.id);
    assert.equal(late!.text, 'a late answer', 'the message was kept and answered');
  });
});

describe('a model that is not configured', () => {
  test('the message is kept and answered once the key is set and hako restarts', async (t) => {
    const model = await startModelServer();
    const first = await HakoProcess.start({ env: { HAKO_MODEL: 'anthropic/test-claude', ANTHROPIC_BASE_URL: model.anthropicBaseURL } });
    t.after(async () => { first.cleanup(); await model.close(); });
    const r = await first.api('/api/groups/main/messages', { method: 'POST', body: JSON.stringify({ text: 'are you there?' }) });
    assert.equal(r.status, 202);
    assert.match(r.body.warning, /needs ANTHROPIC_API_KEY.*kept/);
    assert.equal(await first.stop(), 0);
    assert.equal(model.requests.length, 0, 'nothing reached the model without a key');

    model.script({ text: 'Yes, now I am.' });
    const second = await HakoProcess.start({ home: first.home, configDir: first.configDir, env: { HAKO_MODEL: 'anthropic/test-claude', ANTHROPIC_BASE_URL: model.anthropicBaseURL, ANTHROPIC_API_KEY: 'sk-ant-test' } });
    t.after(async () => { await second.stop(); });
    const replies = await second.waitForReplies('main', r.body.id);
    assert.deepEqual(replies.map((m) => m.text), ['Yes, now I am.']);
  });
});

describe('a model that cannot be used, in hako status', () => {
  test('status says the model is not ready from the start: no key, or a server where nothing listens', async (t) => {
    const nokey = await HakoProcess.start({ env: { HAKO_MODEL: 'anthropic/test-claude' } });
    t.after(async () => { await nokey.stop(); nokey.cleanup(); });
    const s1 = await nokey.cli(['status']);
    assert.match(s1.stdout, /MODEL NOT READY: model anthropic\/test-claude needs ANTHROPIC_API_KEY/);
    const api = await nokey.api('/api/status');
    assert.match(api.body.modelProblem, /needs ANTHROPIC_API_KEY/, 'the API (and the web chat header) says it too');

    const net = await import('node:net');
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const away = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/gpt-oss:20b', OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` } });
    t.after(async () => { await away.stop(); away.cleanup(); });
    await away.waitForLog((e) => String(e.msg).startsWith('model not ready: cannot reach the model server'));
    const s2 = await away.cli(['status']);
    assert.match(s2.stdout, /MODEL UNREACHABLE: messages wait and are answered when the openai server answers again/);
  });
});

describe('hako CLI', () => {
  test('groups - add, list and remove, with clear errors for bad names and unknown groups', async (t) => {
    const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const home = mkdtempSync(join(tmpdir(), 'hako-cli-'));
    const configDir = mkdtempSync(join(tmpdir(), 'hako-cli-config-'));
    t.after(() => { rmSync(home, { recursive: true, force: true }); rmSync(configDir, { recursive: true, force: true }); });
    const env = { HAKO_HOME: home, HAKO_CONFIG: configDir };
    const add = await runCli(['groups', 'add', 'sales', '--trigger', '@bot'], env);
    assert.equal(add.code, 0, add.stderr);
    assert.ok(existsSync(join(home, 'groups', 'sales', 'MEMORY.md')), 'the group gets its MEMORY.md');
    const bad = await runCli(['groups', 'add', '../etc'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /group name "..\/etc" is invalid/);
    const twice = await runCli(['groups', 'add', 'sales'], env);
    assert.match(twice.stderr, /already exists/);
    const list = await runCli(['groups', 'list'], env);
    assert.match(list.stdout, /^sales\s+trigger @bot/m);
    const usage = await runCli(['groups', 'frobnicate'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown subcommand "frobnicate"[\s\S]*Usage:/);
    const rm = await runCli(['groups', 'remove', 'sales'], env);
    assert.equal(rm.code, 0);
    assert.match(rm.stdout, /was kept/);
    const gone = await runCli(['groups', 'remove', 'sales'], env);
    assert.match(gone.stderr, /unknown group "sales"/);
  });

  test('every command has --help, and an unknown command prints the usage', async () => {
    const usage = await runCli(['--help'], {});
    const commands = [...usage.stdout.slice(usage.stdout.indexOf('Commands:')).matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
    assert.ok(commands.length >= 10 && commands.includes('web'), `the usage lists the commands: ${commands.join(', ')}`);
    for (const cmd of commands) {
      const r = await runCli([cmd, '--help'], {});
      assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
      assert.match(r.stdout, /Usage/, cmd);
    }
    const r = await runCli(['frob'], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frob"/);
  });

  test('doctor - names the missing model key and how to fix it', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const r = await runCli(['doctor'], { HAKO_HOME: mkdtempSync(join(tmpdir(), 'hako-doc-')), HAKO_CONFIG: mkdtempSync(join(tmpdir(), 'hako-doc-c-')), HAKO_MODEL: 'openai/gpt-test' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /\[ ok \] container engine/);
    assert.match(r.stdout, /\[FAIL\] model openai\/gpt-test\n\s+model openai\/gpt-test needs OPENAI_API_KEY/);
    assert.match(r.stdout, /\[ ok \] mount policy mounts\.json: none \(.*mounts\.json does not exist: no group can mount an extra folder\)/, 'a missing policy file is not just "ok"');
  });

  test('doctor - asks the model server itself: a base URL where nothing listens fails with the address, a server that answers passes', async (t) => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const net = await import('node:net');
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const dirs = () => ({ HAKO_HOME: mkdtempSync(join(tmpdir(), 'hako-doc-')), HAKO_CONFIG: mkdtempSync(join(tmpdir(), 'hako-doc-c-')) });
    const down = await runCli(['doctor'], { ...dirs(), HAKO_MODEL: 'openai/gpt-oss:20b', OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` });
    assert.equal(down.code, 1);
    assert.match(down.stdout, new RegExp(`\\[FAIL\\] model openai/gpt-oss:20b\\n\\s+cannot reach the model server at http://127\\.0\\.0\\.1:${port}/v1/models \\(ECONNREFUSED\\): is it running, and is OPENAI_BASE_URL right\\?`));
    const model = await startModelServer();
    t.after(() => model.close());
    const up = await runCli(['doctor'], { ...dirs(), HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL });
    assert.match(up.stdout, /\[(?: ok |warn)\] model openai\/test-model/);
    assert.ok(model.requests.some((r) => r.method === 'GET' && r.path.endsWith('/models')), 'doctor asked the server for its models');
  });
});

describe('audit', () => {
  test('container starts, applied outputs and policy changes are audited, and tampering is caught with its location', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-audit-test-key-123456' } });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const add = await h.cli(['groups', 'add', 'team', '--trigger', '@bot']);
    assert.equal(add.code, 0, add.stderr);
    const id = await h.post('main', 'hello audit');
    await h.waitForReplies('main', id);
    await h.waitForLog((e) => e.msg === 'turn ended');
    const list = await h.cli(['audit', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const records = JSON.parse(list.stdout) as { kind: string; group: string; data: Record<string, unknown> }[];
    const start = records.find((r) => r.kind === 'container.start')!;
    const args = (start.data.args as string[]).join(' ');
    for (const flag of ['--network none', '--read-only', '--cap-drop ALL', 'no-new-privileges']) assert.ok(args.includes(flag), flag);
    assert.ok(records.some((r) => r.kind === 'ipc.apply' && r.data.type === 'reply'));
    assert.ok(records.some((r) => r.kind === 'policy.change' && r.group === 'team' && r.data.action === 'group.add'));
    assert.ok(!list.stdout.includes('sk-audit-test-key-123456'), 'no secret in the audit log');
    const ok = await h.cli(['audit', 'verify']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /audit log intact: \d+ records/);

    // Tamper as an attacker with file access would: drop the trigger, edit a record.
    const { DatabaseSync } = await import('node:sqlite');
    const { join } = await import('node:path');
    const db = new DatabaseSync(join(h.home, 'hako.db'));
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET data = ? WHERE seq = 2").run(JSON.stringify({ edited: true }));
    db.close();
    const broken = await h.cli(['audit', 'verify']);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout + broken.stderr, /record 2 was altered/);
  });

  test('no container starts without its audit record: the turn waits, and the message is answered once the record can be written', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_RETRY_BASE_MS: '1000', HAKO_RETRY_MAX_MS: '1000' } });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const { DatabaseSync } = await import('node:sqlite');
    const { join } = await import('node:path');
    const db = new DatabaseSync(join(h.home, 'hako.db'));
    t.after(() => db.close());
    db.exec('PRAGMA busy_timeout = 5000');
    // As a full disk would for this kind of record only.
    db.exec(`CREATE TRIGGER test_start_unrecordable BEFORE INSERT ON audit WHEN NEW.kind = 'container.start' BEGIN SELECT RAISE(ABORT, 'test: the audit log cannot be written'); END`);
    const id = await h.post('main', 'hello while the audit log is down');
    const failed = await h.waitForLog((e) => e.msg === 'turn failed; will retry' && e.group === 'main');
    assert.match(String(failed.error), /the container could not start: its audit record could not be written/);
    assert.ok(h.logEvents().some((e) => e.level === 'error' && e.msg === 'audit append failed' && e.kind === 'container.start'));
    assert.ok(!h.logEvents().some((e) => e.msg === 'container started'), 'no container was started');
    assert.deepEqual(model.requests.filter((r) => r.method === 'POST').map((r) => r.path), [], 'no agent asked the model');

    db.exec('DROP TRIGGER test_start_unrecordable');
    const [reply] = await h.waitForReplies('main', id);
    assert.match(reply!.text, /hello while the audit log is down/);
    assert.equal(h.logEvents().filter((e) => e.msg === 'turn failed; will retry').length, 1, 'one failed try, then the retry after its backoff');
    const audit = JSON.parse((await h.cli(['audit', '--kind', 'container.start', '--json'])).stdout) as unknown[];
    assert.equal(audit.length, 1, 'the container that did start has its record');
    assert.equal((await h.cli(['audit', 'verify'])).code, 0);
  });
});
