import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpChannel } from '../../src/channels/http.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { ChannelContext } from '../../src/core/channel.ts';

const ctx: ChannelContext = {
  accept: async () => { throw new Error('not used'); },
  listMessages: () => [],
  listGroups: () => [],
  getGroup: () => undefined,
  subscribe: () => () => {},
};

test('http channel - listens on the loopback address only', async (t) => {
  const ch = new HttpChannel({ port: 0, token: 't'.repeat(32), log: silentLogger });
  await ch.start(ctx);
  t.after(() => ch.stop());
  assert.equal(ch.address.address, '127.0.0.1');
});

test('http channel - a port in use is a clear error', async (t) => {
  const a = new HttpChannel({ port: 0, token: 'x', log: silentLogger });
  await a.start(ctx);
  t.after(() => a.stop());
  const b = new HttpChannel({ port: a.port, token: 'x', log: silentLogger });
  await assert.rejects(b.start(ctx), /port \d+ is in use: is hako already running\?/);
});
