// The context budget's pure parts: the default per provider, where a group's budget comes
// from and how the container gets it, the doctor's Ollama hint, the token estimate, fitting.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/core/store.ts';
import { databaseBefore } from '../support/old-database.ts';
import { contextTokens, defaultContextTokens, effectiveContextTokens, loadConfig, ConfigError } from '../../src/core/config.ts';
import { containerSpec } from '../../src/core/runner.ts';
import { contextCheck } from '../../src/cli/doctor.ts';
import type { Group } from '../../src/core/store-contract.ts';
import { readConfig } from '../../agent/config.ts';
import { capToolResult, estimateTokens, fitMessages, messagesTokens, planBudget } from '../../agent/budget.ts';
import type { Message } from '../../agent/providers/provider.ts';

const env = { HAKO_HOME: '/tmp/hako-budget-home', HAKO_CONFIG: '/tmp/hako-budget-config' };
const group = (over: Partial<Group> = {}): Group => ({ name: 'team', isMain: false, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '', ...over });

test('context budget - defaults per provider: Claude 200000, OpenAI\'s own API 128000, any other OpenAI-compatible server 8192', () => {
  assert.equal(defaultContextTokens('anthropic', 'https://api.anthropic.com'), 200_000);
  assert.equal(defaultContextTokens('openai', 'https://api.openai.com/v1'), 128_000);
  assert.equal(defaultContextTokens('openai', 'http://127.0.0.1:11434/v1'), 8192);
  assert.equal(defaultContextTokens('openai', 'http://gpu-box:8000/v1'), 8192);
});

test('context budget - a group\'s own wins over HAKO_CONTEXT_TOKENS, which wins over the model\'s default; the container gets it', () => {
  const local = loadConfig({ ...env, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' });
  assert.deepEqual(effectiveContextTokens(local, null, 'openai/gpt-oss:20b'), { tokens: 8192, from: 'default' });
  assert.deepEqual(effectiveContextTokens(local, null, 'anthropic/claude-sonnet-4-5'), { tokens: 200_000, from: 'default' });
  const set = loadConfig({ ...env, HAKO_CONTEXT_TOKENS: '32_768' });
  assert.deepEqual(effectiveContextTokens(set, null, 'openai/gpt-4o'), { tokens: 32_768, from: 'HAKO_CONTEXT_TOKENS' });
  assert.deepEqual(effectiveContextTokens(set, 16_384, 'openai/gpt-4o'), { tokens: 16_384, from: 'group' });
  assert.equal(containerSpec(set, 'img', group({ contextTokens: 16_384 }), 'openai/gpt-4o').env.HAKO_CONTEXT_TOKENS, '16384');
  assert.equal(containerSpec(set, 'img', group(), 'openai/gpt-4o').env.HAKO_CONTEXT_TOKENS, '32768');
  assert.equal(containerSpec(loadConfig(env), 'img', group(), 'openai/gpt-4o').env.HAKO_CONTEXT_TOKENS, '128000');
});

test('context budget - a value out of range is refused with the range and "default"; "default" and unset mean the model\'s default', () => {
  assert.throws(() => loadConfig({ ...env, HAKO_CONTEXT_TOKENS: '1000' }), (err: unknown) => err instanceof ConfigError && /HAKO_CONTEXT_TOKENS="1000" is invalid: expected a whole number of tokens from 4096 to 10000000 .* or "default"/.test(err.message));
  assert.throws(() => contextTokens('lots', '--context-tokens'), /--context-tokens="lots" is invalid/);
  assert.equal(contextTokens('default', 'x'), null);
  assert.equal(loadConfig(env).contextTokens, null);
});

test('context budget - the agent reads HAKO_CONTEXT_TOKENS and refuses a value it cannot honour', () => {
  const base = { HAKO_MODEL: 'openai/m' };
  const ok = readConfig({ ...base, HAKO_CONTEXT_TOKENS: '8192' });
  assert.ok(ok.ok && ok.config.contextTokens === 8192);
  const bad = readConfig({ ...base, HAKO_CONTEXT_TOKENS: '100' });
  assert.ok(!bad.ok && bad.problems.some((p) => /HAKO_CONTEXT_TOKENS is "100"; expected a whole number from 4096/.test(p)));
});

test('doctor - an Ollama base URL gets a hint to raise num_ctx to the budget; other servers do not', () => {
  const ollama = contextCheck(loadConfig({ ...env, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }), 'openai/qwen3:8b', null);
  assert.equal(ollama.warnOnly, true);
  assert.match(ollama.name, /context budget 8192 tokens per model request \(the default for this model; set HAKO_CONTEXT_TOKENS/);
  assert.match(ollama.problem ?? '', /OLLAMA_CONTEXT_LENGTH=8192 ollama serve/);
  assert.match(ollama.problem ?? '', /PARAMETER num_ctx 8192/);
  const claude = contextCheck(loadConfig(env), 'anthropic/claude-sonnet-4-5', null);
  assert.equal(claude.problem, null);
  assert.match(claude.name, /200000 tokens/);
  assert.match(contextCheck(loadConfig(env), 'openai/gpt-4o', 65_536).name, /65536 tokens per model request \(the main group's --context-tokens\)/);
});

test('estimateTokens - errs high: one token per 3 UTF-8 bytes, rounded up', () => {
  assert.equal(estimateTokens(''), 0);
  assert.equal(estimateTokens('abcd'), 2);
  assert.equal(estimateTokens('x'.repeat(300)), 100);
  // CJK: 3 bytes per character, so one token per character.
  assert.equal(estimateTokens('日本語のテキスト'), 8);
});

test('capToolResult - cuts on a character boundary, says how much was cut, and stays within its tokens', () => {
  const big = 'é'.repeat(10_000);
  const capped = capToolResult(big, 500);
  assert.ok(estimateTokens(capped) <= 500);
  assert.ok(!capped.includes('\uFFFD'));
  const cut = Number(/\[… (\d+) more bytes cut/.exec(capped)?.[1]);
  assert.equal(Buffer.byteLength(capped.slice(0, capped.indexOf('\n['))) + cut, Buffer.byteLength(big));
  assert.equal(capToolResult('short', 500), 'short');
});

test('fitMessages - leaves out the oldest whole turns first and never separates a tool call from its result', () => {
  const turn = (n: number): Message[] => [
    { role: 'user', text: `q${n} `.padEnd(900, '.') },
    { role: 'assistant', text: '', toolCalls: [{ id: `c${n}`, name: 'bash', args: {} }] },
    { role: 'tool', toolCallId: `c${n}`, name: 'bash', text: 'r'.repeat(900), isError: false },
    { role: 'assistant', text: `a${n}`, toolCalls: [] },
  ];
  const all = [...turn(1), ...turn(2), ...turn(3)];
  const limit = messagesTokens(turn(3)) + messagesTokens(turn(2));
  const fitted = fitMessages(all, limit);
  assert.deepEqual(fitted, [...turn(2), ...turn(3)]);
  assert.deepEqual(fitMessages(all, 1_000_000), all);
  const tight = fitMessages(turn(1), 400);
  assert.ok(messagesTokens(tight) <= 400);
  assert.equal(tight[0]?.role, 'user');
});

test('planBudget - keeps room for the answer and gives the history at most half of what the messages may take', () => {
  const plan = planBudget(8192, 2500);
  assert.equal(plan.input, 8192 - 2048);
  assert.equal(plan.messages, 8192 - 2048 - 2500);
  assert.ok(plan.history <= plan.messages / 2);
  assert.ok(plan.keep + plan.summary < plan.history, 'a compacted history fits its share with room to spare');
  assert.equal(planBudget(200_000, 3000).input, 200_000 - 4096);
});

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hako-ctx-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('store migrations - a database of the version before context budgets keeps its groups, each with no own budget', (t) => {
  const file = join(tempDir(t), 'hako.db');
  databaseBefore(file, 'context_tokens');
  const s = new Store(file);
  t.after(() => s.close());
  assert.equal(s.getGroup('main')?.contextTokens, null);
  assert.equal(s.updateGroup('main', { contextTokens: 8192 }).contextTokens, 8192);
});

test('hako groups - --context-tokens gives a group its own budget, list shows it, "default" removes it, a bad value is refused', (t) => {
  const dir = tempDir(t);
  const hako = (...args: string[]) => spawnSync(process.execPath, [new URL('../../bin/hako.mjs', import.meta.url).pathname, 'groups', ...args], {
    encoding: 'utf8', env: { PATH: process.env.PATH, HAKO_HOME: join(dir, 'home'), HAKO_CONFIG: join(dir, 'config'), HAKO_MODEL: 'openai/gpt-oss:20b', OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' },
  });
  const add = hako('add', 'team', '--context-tokens', '16384');
  assert.equal(add.status, 0, add.stderr);
  assert.match(add.stdout, /context budget: 16384 tokens per request \(the group's own\)/);
  assert.match(hako('list').stdout, /^team .*context 16384 tokens/m);
  const reset = hako('set', 'team', '--context-tokens', 'default');
  assert.equal(reset.status, 0, reset.stderr);
  assert.match(reset.stdout, /context budget: 8192 tokens per request \(default for openai\/gpt-oss:20b\)/);
  assert.doesNotMatch(hako('list').stdout, /context \d+ tokens/);
  const bad = hako('set', 'team', '--context-tokens', '12');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--context-tokens="12" is invalid: expected a whole number of tokens from 4096/);
});
