// Daily token budgets against a real host process, the real agent container and the scripted
// model server: the tokens the provider reports are counted; a group over its own budget, or
// over the budget of all groups together, sends nothing more to the model, is told once, and
// its waiting messages are answered once the owner raises the budget.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess, type ApiMessage } from '../support/hako.ts';

const BUDGET_NOTICE = /daily token budget of/;

/** Waits (bounded) until the host logged `n` events named `msg` for `group`. */
async function logged(hako: HakoProcess, msg: string, group: string, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (hako.logEvents().filter((e) => e.msg === msg && e.group === group).length < n) {
    if (Date.now() > deadline) throw new Error(`the host did not log "${msg}" ${n} times for ${group}:\n${hako.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const notices = (all: ApiMessage[]) => all.filter((m) => m.role === 'assistant' && BUDGET_NOTICE.test(m.text));

describe('a group\'s own daily token budget (openai, streamed)', () => {
  let model: ModelServer;
  let hako: HakoProcess;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test', HAKO_TZ: 'Europe/Berlin' } });
  });

  after(async () => {
    const code = await hako?.stop();
    assert.equal(code, 0, `hako should exit cleanly:\n${hako?.output.slice(-3000)}`);
    hako.cleanup();
    await model?.close();
  });

  test('budget - a group over its budget gets no further model request, is told once, and is answered after the owner raises the budget', async () => {
    const set = await hako.cli(['groups', 'set', 'main', '--tokens-per-day', '1']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /token budget 1 per day/);
    assert.match((await hako.cli(['groups', 'list'])).stdout, /main .*1 tokens\/day/);

    model.script({ text: 'first answer' });
    const first = await hako.post('main', 'hello');
    assert.equal((await hako.waitForReplies('main', first))[0]!.text, 'first answer', 'the turn that starts under the budget is answered');
    const sent = model.requests.length;
    const req = model.requests.at(-1)!;
    assert.deepEqual(req.json.stream_options, { include_usage: true }, 'the agent asks for the usage of a stream');

    const second = await hako.post('main', 'are you there?');
    const [notice] = await hako.waitForReplies('main', second);
    const m = /^Your message waits: the daily token budget of 1 for group "main" is used up \((\d+) used today\); messages wait until tomorrow \(00:00 Europe\/Berlin\) or until the owner raises it: hako groups set main --tokens-per-day N \(or none\)\.$/.exec(notice!.text);
    assert.ok(m, `the group is told which budget, what was used and how to raise it: ${notice!.text}`);
    const used = Number(m[1]);
    assert.ok(used > 1);

    const third = await hako.post('main', 'hello again?');
    await logged(hako, 'token budget still used up: no model use for the group', 'main', 1);
    assert.equal(model.requests.length, sent, 'nothing more was sent to the model');

    const status = await hako.cli(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`tokens today \\(\\d{4}-\\d\\d-\\d\\d, Europe/Berlin\\): ${used} \\(no daily budget: HAKO_TOKENS_PER_DAY\\)`));
    assert.match(status.stdout, new RegExp(`  main\\s+${used} of 1 — USED UP — messages wait for the budget`));
    const json = (await hako.api('/api/status')).body;
    assert.deepEqual(json.groups.find((g: { name: string }) => g.name === 'main').tokens, { used, budget: 1, waitsForBudget: true });

    model.script({ text: 'answered after the raise' });
    const raise = await hako.cli(['groups', 'set', 'main', '--tokens-per-day', 'none']);
    assert.equal(raise.code, 0, raise.stderr);
    const [late] = await hako.waitForReplies('main', third);
    assert.equal(late!.text, 'answered after the raise', 'the waiting messages are answered without a restart');
    assert.ok(model.requests.length > sent);
    assert.match(JSON.stringify(model.requests.at(-1)!.json.messages), /are you there\?[\s\S]*hello again\?/, 'both waiting messages reached the model');
    assert.equal(notices(await hako.messages('main')).length, 1, 'the group was told once');
  });

  test('budget - a turn that uses up the budget is stopped before its next model request; its message waits and is answered after a raise', async () => {
    const used = (await hako.api('/api/status')).body.groups.find((g: { name: string }) => g.name === 'main').tokens.used as number;
    assert.equal((await hako.cli(['groups', 'set', 'main', '--tokens-per-day', String(used + 1)])).code, 0);
    model.script({ toolCalls: [{ name: 'bash', args: { command: 'echo hi' } }] }, { text: 'finished after the raise' });
    const sent = model.requests.length;
    const id = await hako.post('main', 'run a command');
    const [stopped] = await hako.waitForReplies('main', id);
    assert.match(stopped!.text, new RegExp(`^I stopped this turn: the daily token budget of ${used + 1} for group "main" is used up`));
    assert.equal(model.requests.length, sent + 1, 'the model request after the budget was used up never reached the model');
    assert.equal((await hako.cli(['groups', 'set', 'main', '--tokens-per-day', 'none'])).code, 0);
    const replies = await hako.waitForReplies('main', id, 2);
    assert.equal(replies[1]!.text, 'finished after the raise', 'the message was kept and answered');
  });
});

describe('the daily token budget of all groups together (anthropic, streamed)', () => {
  let model: ModelServer;
  let hako: HakoProcess;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'anthropic/test-model', ANTHROPIC_BASE_URL: model.anthropicBaseURL, ANTHROPIC_API_KEY: 'sk-test', HAKO_TOKENS_PER_DAY: '1', HAKO_TZ: 'UTC' } });
  });

  after(async () => {
    const code = await hako?.stop();
    assert.equal(code, 0, `hako should exit cleanly:\n${hako?.output.slice(-3000)}`);
    hako.cleanup();
    await model?.close();
  });

  test('budget - the tokens of one group use up HAKO_TOKENS_PER_DAY for another, which is told and sends nothing', async () => {
    const add = await hako.cli(['groups', 'add', 'team']);
    assert.equal(add.code, 0, add.stderr);
    model.script({ text: 'main answered' });
    const first = await hako.post('main', 'hello');
    assert.equal((await hako.waitForReplies('main', first))[0]!.text, 'main answered');
    const sent = model.requests.length;

    const asked = await hako.post('team', '@hako hello from the team');
    const [notice] = await hako.waitForReplies('team', asked);
    assert.match(notice!.text, /^Your message waits: the daily token budget of 1 for all groups \(HAKO_TOKENS_PER_DAY\) is used up \(\d+ used today\); .*set HAKO_TOKENS_PER_DAY higher \(or unset it\) and restart hako\.$/);
    assert.equal(model.requests.length, sent, 'the other group sent nothing to the model');

    const json = (await hako.api('/api/status')).body;
    const main = json.groups.find((g: { name: string }) => g.name === 'main').tokens.used;
    assert.ok(main > 1, 'the streamed Anthropic usage was counted');
    assert.deepEqual(json.tokens, { day: json.tokens.day, tz: 'UTC', used: main, budget: 1 });
    assert.match((await hako.cli(['status'])).stdout, new RegExp(`tokens today \\(\\S+, UTC\\): ${main} of 1 — USED UP \\(HAKO_TOKENS_PER_DAY\\)`));
  });
});
