// One conformance suite for every chat channel: registers node:test tests that hold a
// channel to the Channel contract of src/core/channel.ts (send, split long text, errors,
// stop). test/unit/channel-fake.test.ts runs it against the in-memory fake; each channel
// skill runs it against its real module talking to its platform's local peer (emulator or
// real server), so the fake cannot drift from the real thing.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Channel, ChannelContext, ChatInbound, ReceiveResult } from '../../src/core/channel.ts';

export interface ChannelUnderTest {
  /** A channel made but not started. */
  readonly channel: Channel;
  /** An address within the channel (after `<name>:`) that the peer takes messages for. */
  readonly address: string;
  /** The platform's limit for one message, in characters. */
  readonly limit: number;
  /** Texts the peer has received for `address`, oldest first (as the platform shows them). */
  sent(): Promise<string[]>;
  /** Makes the peer refuse the next send with a final error (e.g. 400 chat not found). */
  refuseNext(): void;
  /**
   * What a user sees for a sent text, on a platform that renders Markdown (Telegram shows
   * `*stars*` as "stars" in italics); written independently of the channel's own converter.
   * Omitted: the text itself.
   */
  shows?(text: string): string;
  /** Stops the peer. */
  close(): Promise<void>;
}

/** A context that records what the channel hands in; enough for a channel's start. */
export function recordingContext(): ChannelContext & { received: ChatInbound[] } {
  const received: ChatInbound[] = [];
  return {
    received,
    accept: async () => { throw new Error('a chat channel uses receive, not accept'); },
    receive: async (m): Promise<ReceiveResult> => {
      received.push(m);
      return { kind: 'unbound', told: received.length === 1 };
    },
    groupFor: () => undefined,
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: () => {},
    getGroup: () => undefined,
    listGroups: () => [],
  };
}

export function channelConformance(label: string, setup: () => Promise<ChannelUnderTest>): void {
  describe(`channel conformance (${label})`, { timeout: 60_000 }, () => {
    let c: ChannelUnderTest;
    let n = 0;
    const id = () => `conformance-${++n}`;

    before(async () => {
      c = await setup();
      assert.ok(c.channel.send, 'a chat channel can send');
      await c.channel.start(recordingContext());
    });
    after(async () => {
      await c.channel.stop();
      await c.close();
    });

    test('channel - a message sent reaches its chat with its text unchanged', async () => {
      const before = (await c.sent()).length;
      const text = 'Hello from hako: *stars*, _underscores_, [brackets] & <angles> — ünïcödé 日本語 🎉';
      await c.channel.send!({ id: id(), group: 'conformance', address: c.address, text });
      const sent = (await c.sent()).slice(before);
      assert.deepEqual(sent, [c.shows ? c.shows(text) : text]);
    });

    test('channel - a reply over the platform limit arrives as several messages, in order, nothing lost', async () => {
      const before = (await c.sent()).length;
      const words = Math.max(1, Math.floor(c.limit / 4 / 27)); // a paragraph is about a quarter of the limit
      const paragraph = (i: number) => `Paragraph ${i}: ${'lorem ipsum dolor sit amet '.repeat(words).trim()}.`;
      const paragraphs = Array.from({ length: Math.ceil((c.limit * 2.5) / paragraph(0).length) }, (_, i) => paragraph(i));
      const text = paragraphs.join('\n\n');
      assert.ok(text.length > c.limit * 2);
      await c.channel.send!({ id: id(), group: 'conformance', address: c.address, text });
      const sent = (await c.sent()).slice(before);
      assert.ok(sent.length >= 3, `split into ${sent.length} messages`);
      for (const s of sent) assert.ok(s.length <= c.limit, `a piece of ${s.length} characters is within ${c.limit}`);
      assert.equal(sent.join('').replace(/\s+/g, ''), text.replace(/\s+/g, ''), 'every character arrives, in order');
      assert.ok(sent.every((s) => /^Paragraph \d+:/.test(s)), 'pieces are cut at paragraph boundaries');
    });

    test('channel - a send the platform refuses rejects with a reason that names the channel', async () => {
      c.refuseNext();
      await assert.rejects(c.channel.send!({ id: id(), group: 'conformance', address: c.address, text: 'refused' }),
        (err: unknown) => err instanceof Error && err.message.toLowerCase().includes(c.channel.name.toLowerCase()));
      const before = (await c.sent()).length;
      await c.channel.send!({ id: id(), group: 'conformance', address: c.address, text: 'after a refusal' });
      assert.deepEqual((await c.sent()).slice(before), ['after a refusal'], 'the channel still works after a refusal');
    });

    test('channel - typing never throws and can be stopped', () => {
      if (!c.channel.typing) return;
      const stop = c.channel.typing(c.address);
      stop();
      stop();
    });

    test('channel - stop is idempotent and a send after stop rejects', async () => {
      await c.channel.stop();
      await c.channel.stop();
      await assert.rejects(c.channel.send!({ id: id(), group: 'conformance', address: c.address, text: 'too late' }));
    });
  });
}
