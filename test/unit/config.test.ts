import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, isLoopback, loadConfig, modelProblem } from '../../src/core/config.ts';
import { parseModel } from '../../protocol/model.ts';

const base = { HAKO_HOME: '/srv/hako', HAKO_CONFIG: '/etc/hako' };

test('config - defaults are the documented ones', () => {
  const c = loadConfig(base);
  assert.equal(c.httpPort, 7878);
  assert.equal(c.maxContainers, 4);
  assert.equal(c.idleTimeoutMs, 600_000);
  assert.equal(c.assistantName, 'hako');
  assert.equal(c.providers.openai.baseURL, 'https://api.openai.com/v1');
  assert.equal(c.providers.anthropic.baseURL, 'https://api.anthropic.com');
  assert.equal(c.model, undefined);
});

test('config - HAKO_CONFIG inside HAKO_HOME is refused, so the policy is never in reach of a group folder', () => {
  assert.throws(() => loadConfig({ HAKO_HOME: '/srv/hako', HAKO_CONFIG: '/srv/hako/config' }), /must lie outside HAKO_HOME/);
  assert.throws(() => loadConfig({ HAKO_HOME: '/srv/hako', HAKO_CONFIG: '/srv/hako' }), /must lie outside HAKO_HOME/);
});

test('config - bad values are refused with what was expected', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ HAKO_MAX_CONTAINERS: '0' }, /HAKO_MAX_CONTAINERS="0" is invalid: expected a whole number from 1/],
    [{ HAKO_HTTP_PORT: 'http' }, /HAKO_HTTP_PORT/],
    [{ HAKO_MODEL: 'gpt-4' }, /HAKO_MODEL is "gpt-4"; expected "anthropic\/<model>" or "openai\/<model>"/],
    [{ HAKO_MODEL: 'google/gemini' }, /HAKO_MODEL/],
    [{ OPENAI_BASE_URL: 'ftp://x' }, /OPENAI_BASE_URL.*not an http\(s\) URL/],
    [{ HAKO_ASSISTANT_NAME: 'two words' }, /HAKO_ASSISTANT_NAME/],
  ];
  for (const [env, reason] of cases) assert.throws(() => loadConfig({ ...base, ...env }), (err: unknown) => err instanceof ConfigError && reason.test(err.message));
});

test('model - names may contain slashes and colons after the provider', () => {
  assert.deepEqual(parseModel('openai/gpt-oss:20b'), { ok: true, value: { provider: 'openai', model: 'gpt-oss:20b' } });
  assert.deepEqual(parseModel('openai/openrouter/meta/llama'), { ok: true, value: { provider: 'openai', model: 'openrouter/meta/llama' } });
});

test('model - a missing key is named; a local OpenAI-compatible server needs none', () => {
  assert.match(modelProblem(loadConfig(base), undefined) ?? '', /set HAKO_MODEL/);
  assert.match(modelProblem(loadConfig(base), 'anthropic/claude') ?? '', /needs ANTHROPIC_API_KEY/);
  assert.match(modelProblem(loadConfig(base), 'openai/gpt') ?? '', /needs OPENAI_API_KEY/);
  assert.equal(modelProblem(loadConfig({ ...base, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }), 'openai/gpt-oss:20b'), null);
  assert.equal(modelProblem(loadConfig({ ...base, ANTHROPIC_API_KEY: 'k' }), 'anthropic/claude'), null);
});

test('config - loopback is 127.0.0.0/8, ::1 in any spelling and the name localhost; nothing that only looks like them', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '0000:0000:0000:0000:0000:0000:0000:0001', '::ffff:127.0.0.1']) {
    assert.equal(isLoopback(a), true, a);
  }
  for (const a of ['128.0.0.1', '0.0.0.0', '::', '10.0.0.5', 'fe80::1', '::ffff:10.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io', '']) {
    assert.equal(isLoopback(a), false, a);
  }
});
