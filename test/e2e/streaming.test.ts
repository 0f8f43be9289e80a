// Streamed replies end to end: a real host and agent container, a scripted model that streams
// its reply and holds it half-way. An event-stream client of the group sees `partial` events
// whose text grows, each a prefix of the final reply, before the committed `message`; another
// group's client sees none; and what is stored is exactly the turn's messages, nothing partial.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

type SseEvent = { event: string; data: any };

/** A group's event stream through the API, parsed; `until(pred)` resolves with the first event that matches. */
async function follow(hako: HakoProcess, group: string, signal: AbortSignal) {
  const res = await fetch(`${hako.base}/api/groups/${group}/events`, { headers: { authorization: `Bearer ${hako.token}` }, signal });
  assert.equal(res.status, 200);
  const got: SseEvent[] = [];
  const waiters: { pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  let connected!: () => void;
  const ready = new Promise<void>((r) => { connected = r; });
  void (async () => {
    let buf = '';
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith(': connected')) connected();
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data) continue;
        const e = { event: /^event: (.+)$/m.exec(block)?.[1] ?? 'message', data: JSON.parse(data) };
        got.push(e);
        for (const w of waiters.filter((w) => w.pred(e))) { waiters.splice(waiters.indexOf(w), 1); w.resolve(e); }
      }
    }
  })().catch(() => { /* aborted at the end of the test */ });
  await ready;
  return {
    got,
    until: (pred: (e: SseEvent) => boolean) => {
      const seen = got.find(pred);
      return seen ? Promise.resolve(seen) : new Promise<SseEvent>((resolve) => { waiters.push({ pred, resolve }); });
    },
  };
}

describe('streamed replies through a real host', () => {
  let model: ModelServer;
  let hako: HakoProcess;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL } });
    const add = await hako.cli(['groups', 'add', 'team']);
    assert.equal(add.code, 0, add.stderr);
  });
  after(async () => {
    await hako.stop();
    hako.cleanup();
    await model.close();
  });

  test('streaming - an SSE client sees partial text that grows, each a prefix of the reply, before the message; other groups see none; nothing partial is stored', { timeout: 120_000 }, async (t) => {
    const ctrl = new AbortController();
    t.after(() => ctrl.abort());
    const main = await follow(hako, 'main', ctrl.signal);
    const team = await follow(hako, 'team', ctrl.signal);
    const reply = 'First words. Then **the rest** of a reply that the model writes while the person watches.';
    let release!: () => void;
    model.script({ text: reply, pause: { at: 'First words.'.length, until: new Promise<void>((r) => { release = r; }) } });
    const asked = await hako.post('main', 'write slowly please', 'tester');

    // The model holds the rest of its reply: whatever is shown now came while it was writing.
    const early = await main.until((e) => e.event === 'partial');
    assert.equal(early.data.group, 'main');
    assert.ok(early.data.text !== '' && 'First words.'.startsWith(early.data.text), `first partial: ${JSON.stringify(early.data)}`);
    assert.equal(main.got.some((e) => e.event === 'message' && e.data.role === 'assistant'), false, 'a reply was committed while the model still wrote');
    release();

    const committed = await main.until((e) => e.event === 'message' && e.data.role === 'assistant');
    assert.equal(committed.data.text, reply);
    const upToReply = main.got.slice(0, main.got.indexOf(committed));
    const partials = upToReply.filter((e) => e.event === 'partial').map((e) => e.data.text as string);
    assert.ok(partials.length >= 2, `partials: ${JSON.stringify(partials)}`);
    for (const [i, text] of partials.entries()) {
      assert.ok(reply.startsWith(text), `partial ${i} is not a prefix of the reply: ${JSON.stringify(text)}`);
      if (i > 0) assert.ok(text.length > partials[i - 1]!.length, `partial ${i} did not grow: ${JSON.stringify(partials)}`);
    }
    assert.equal(partials.at(-1), reply, 'the whole text is shown when the response ends');
    assert.equal(main.got.slice(main.got.indexOf(committed)).some((e) => e.event === 'partial'), false, 'partial text after the committed reply');

    await main.until((e) => e.event === 'working' && e.data.working === false);
    assert.equal(team.got.some((e) => e.event === 'partial'), false, 'another group\'s client saw the reply being written');
    const stored = await hako.messages('main');
    assert.deepEqual(stored.map((m) => [m.role, m.text]), [['user', 'write slowly please'], ['assistant', reply]]);
    assert.equal(stored[0]!.id, asked);
    assert.deepEqual(await hako.messages('team'), []);
  });
});
