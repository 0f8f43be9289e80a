// The agent's log lines and the host's relay of them: the agent names each line's level and
// writes its per-turn progress only when the host runs at debug (the container's
// HAKO_LOG_LEVEL); the host logs each line at the level it names, anything else at debug.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_LEVELS, lineLogger, writesDebug, type AgentEvent } from '../../agent/log.ts';
import { loadConfig } from '../../src/core/config.ts';
import { AGENT_LINES_PER_MINUTE, agentLineLevel, agentLineRelay, relayAgentLines } from '../../src/core/agent-lines.ts';
import { containerSpec } from '../../src/core/runner.ts';
import type { Group } from '../../src/core/store-contract.ts';

const group = {
  name: 'main', isMain: true, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '',
} as unknown as Group;

test('agent log - the container is told the host\'s level: debug only when the host runs at debug', () => {
  const level = (value?: string) => {
    const config = loadConfig({ HAKO_HOME: '/tmp/hako-log-home', HAKO_CONFIG: '/tmp/hako-log-config', ...(value ? { HAKO_LOG_LEVEL: value } : {}) });
    return containerSpec(config, 'img', group, 'openai/gpt-4o').env.HAKO_LOG_LEVEL;
  };
  assert.equal(level('debug'), 'debug');
  assert.equal(level(), 'info');
  assert.equal(level('warn'), 'info');
  assert.equal(level('verbose'), 'info');
  assert.equal(writesDebug({ HAKO_LOG_LEVEL: 'debug' }), true);
  assert.equal(writesDebug({ HAKO_LOG_LEVEL: 'info' }), false);
  assert.equal(writesDebug({}), false);
});

test('agent log - without debug the agent writes no progress line; every other event is written with its level', () => {
  const lines: string[] = [];
  const log = lineLogger((l) => lines.push(l), false);
  for (const event of Object.keys(EVENT_LEVELS) as AgentEvent[]) log(event, { n: 1 });
  const written = lines.map((l) => JSON.parse(l) as { event: AgentEvent; level: string });
  assert.ok(written.length > 0);
  assert.deepEqual(written.map((w) => w.event), (Object.keys(EVENT_LEVELS) as AgentEvent[]).filter((e) => EVENT_LEVELS[e] !== 'debug'));
  for (const w of written) assert.equal(w.level, EVENT_LEVELS[w.event]);
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')), 'one line each');
});

test('agent log - the host relays each agent line at the level the agent gave it', () => {
  const lines: string[] = [];
  const log = lineLogger((l) => lines.push(l.trimEnd()), true);
  for (const event of Object.keys(EVENT_LEVELS) as AgentEvent[]) log(event);
  assert.equal(lines.length, Object.keys(EVENT_LEVELS).length);
  for (const line of lines) {
    const { event } = JSON.parse(line) as { event: AgentEvent };
    assert.equal(agentLineLevel(line), EVENT_LEVELS[event], event);
  }
});

test('agent log - output that is not one of its lines is relayed at debug, whatever it claims', () => {
  assert.equal(agentLineLevel('Error: boom'), 'debug');
  assert.equal(agentLineLevel('    at main (file:///app/agent/main.ts:1:1)'), 'debug');
  assert.equal(agentLineLevel('{"level":"error"'), 'debug', 'not JSON');
  assert.equal(agentLineLevel('{"level":"critical","event":"x"}'), 'debug', 'not a level');
  assert.equal(agentLineLevel('{"level":"constructor"}'), 'debug', 'not an own level name');
  assert.equal(agentLineLevel('{"level":["error"]}'), 'debug');
  assert.equal(agentLineLevel('["error"]'), 'debug');
  assert.equal(agentLineLevel('{"level":"warn","event":"inbox_error"}'), 'warn');
});

test('agent log - a flooding agent gets AGENT_LINES_PER_MINUTE lines a minute above debug; the rest go at debug, and the owner is told once a minute', () => {
  let now = 1_000_000;
  const relay = agentLineRelay(() => now);
  const error = '{"level":"error","event":"fatal"}';
  const levels = Array.from({ length: AGENT_LINES_PER_MINUTE + 5 }, () => relay(error));
  assert.ok(levels.slice(0, AGENT_LINES_PER_MINUTE).every((r) => r.level === 'error' && !r.over));
  assert.deepEqual(levels.slice(AGENT_LINES_PER_MINUTE).map((r) => `${r.level} ${r.over}`), ['debug true', 'debug false', 'debug false', 'debug false', 'debug false']);
  assert.deepEqual(relay('{"level":"debug","event":"batch_start"}'), { level: 'debug', over: false }, 'debug lines cost nothing of the budget');
  now += 59_999;
  assert.equal(relay(error).level, 'debug', 'still the same minute');
  now += 1;
  assert.deepEqual(relay(error), { level: 'error', over: false }, 'a new minute, a new budget');
});

test('agent log - each line is logged as a string field of the host\'s own agent line, cut at 2,000 characters, with a warning once the budget is spent', () => {
  const logged: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { logged.push({ level, msg, fields }); };
  const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const relay = relayAgentLines(log, { group: 'team', container: 'hako-team-1' }, () => 0);
  relay(JSON.stringify({ level: 'warn', event: 'inbox_error', error: 'x'.repeat(5000) }));
  relay('{"msg":"host","level":"error"} pretending');
  assert.equal(logged[0]!.level, 'warn');
  assert.equal(logged[0]!.msg, 'agent');
  assert.deepEqual([logged[0]!.fields.group, logged[0]!.fields.container, String(logged[0]!.fields.line).length], ['team', 'hako-team-1', 2000]);
  assert.deepEqual([logged[1]!.level, logged[1]!.msg], ['debug', 'agent'], 'not one JSON line: debug');
  for (let i = 0; i < AGENT_LINES_PER_MINUTE + 3; i++) relay('{"level":"error","event":"fatal"}');
  assert.equal(logged.filter((l) => l.msg === 'agent log lines over budget').length, 1);
  assert.equal(logged.filter((l) => l.msg === 'agent' && l.level !== 'debug').length, AGENT_LINES_PER_MINUTE);
});
