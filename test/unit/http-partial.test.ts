// The HTTP channel's `partial` event: the streamed reply's text so far reaches the event streams
// of its own group only, a page that connects mid-reply is told at once, and an ended turn
// leaves nothing behind. The host side is a fake context whose watchers the test drives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { HttpChannel } from '../../src/channels/http.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { ChannelContext } from '../../src/core/channel.ts';

const TOKEN = 't'.repeat(32);
type Watcher = (group: string, working: boolean, text?: string) => void;

function fakeHost() {
  const watchers = new Set<Watcher>();
  const groups = new Set(['main', 'team']);
  const ctx: ChannelContext = {
    accept: async () => { throw new Error('not used'); },
    receive: async () => { throw new Error('not used'); },
    groupFor: () => undefined,
    listMessages: () => [],
    listGroups: () => [],
    getGroup: (name) => (groups.has(name) ? { name, isMain: name === 'main', trigger: null } as never : undefined),
    subscribe: () => () => {},
    watchTurns: (fn) => {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
    refused: () => {},
  };
  const tell: Watcher = (g, working, text) => { for (const fn of watchers) fn(g, working, text); };
  return { ctx, tell };
}

/** A group's event stream, parsed; `next(n)` resolves once `n` events have come. */
async function events(port: number, group: string) {
  const got: { event: string; data: unknown }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let buf = '';
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/api/groups/${group}/events`, headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${TOKEN}` } }, resolve);
    req.on('error', reject);
    req.end();
  });
  assert.equal(res.statusCode, 200);
  let connected!: () => void;
  const ready = new Promise<void>((r) => { connected = r; });
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block.startsWith(': connected')) connected();
      const event = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (event && data) got.push({ event, data: JSON.parse(data) });
    }
    for (const w of waiters.filter((w) => got.length >= w.n)) w.resolve();
  });
  await ready;
  return {
    got,
    next: (n: number) => got.length >= n ? Promise.resolve() : new Promise<void>((resolve) => { waiters.push({ n, resolve }); }),
    close: () => res.destroy(),
  };
}

test('http channel - partial: the text so far goes to the group\'s own streams only, as `partial` {group, text}', async (t) => {
  const { ctx, tell } = fakeHost();
  const ch = new HttpChannel({ port: 0, token: TOKEN, log: silentLogger });
  await ch.start(ctx);
  t.after(() => ch.stop());
  const main = await events(ch.port, 'main');
  const team = await events(ch.port, 'team');
  t.after(() => { main.close(); team.close(); });
  tell('main', true);
  tell('main', true, 'Hel');
  tell('main', true, 'Hello, wor');
  tell('main', false);
  // team's own turn afterwards: anything of main's that leaked would arrive before it.
  tell('team', true);
  await main.next(4);
  await team.next(1);
  assert.deepEqual(main.got, [
    { event: 'working', data: { working: true } },
    { event: 'partial', data: { group: 'main', text: 'Hel' } },
    { event: 'partial', data: { group: 'main', text: 'Hello, wor' } },
    { event: 'working', data: { working: false } },
  ]);
  assert.deepEqual(team.got, [{ event: 'working', data: { working: true } }]);
});

test('http channel - partial: a page that connects mid-reply gets the text so far at once; after the turn ended it gets none', async (t) => {
  const { ctx, tell } = fakeHost();
  const ch = new HttpChannel({ port: 0, token: TOKEN, log: silentLogger });
  await ch.start(ctx);
  t.after(() => ch.stop());
  tell('main', true);
  tell('main', true, 'Hello');
  const late = await events(ch.port, 'main');
  t.after(() => late.close());
  await late.next(2);
  assert.deepEqual(late.got, [
    { event: 'working', data: { working: true } },
    { event: 'partial', data: { group: 'main', text: 'Hello' } },
  ]);
  tell('main', false);
  tell('team', true);
  const after = await events(ch.port, 'main');
  t.after(() => after.close());
  tell('main', true);
  await after.next(1);
  assert.deepEqual(after.got, [{ event: 'working', data: { working: true } }], 'the ended turn\'s text is not shown again');
});
