// An in-memory chat channel for tests of the seam: inbound messages are pushed with
// `write`, outbound ones are kept in `outbox`, and a send can be made to fail. It passes
// the same conformance suite as every real channel (test/unit/channel-fake.test.ts).

import fs from 'node:fs';
import type { Channel, ChannelContext, ChatInbound, Outbound, ReceiveResult } from '../../src/core/channel.ts';
import { splitText } from '../../src/channels/split.ts';

export class FakeChannel implements Channel {
  readonly name: string;
  readonly limit: number;
  /** Every piece sent, in order. */
  readonly outbox: { address: string; text: string; id: string; replyTo?: string; file?: { name: string; data: string } }[] = [];
  readonly typingLog: string[] = [];
  #ctx: ChannelContext | undefined;
  #failures: Error[] = [];
  #waiters: (() => void)[] = [];

  constructor(opts: { name?: string; limit?: number } = {}) {
    this.name = opts.name ?? 'fake';
    this.limit = opts.limit ?? 100;
  }

  async start(ctx: ChannelContext): Promise<void> {
    this.#ctx = ctx;
  }

  /** A message from a chat of this channel, as the platform would report it. */
  write(m: Omit<ChatInbound, 'chat' | 'senderId' | 'trusted' | 'direct'> & { address: string; senderId?: string; trusted?: boolean; direct?: boolean }): Promise<ReceiveResult> {
    if (!this.#ctx) throw new Error('fake channel: not started');
    const { address, ...rest } = m;
    return this.#ctx.receive({ senderId: `${this.name}:${m.sender}`, trusted: true, direct: false, ...rest, chat: `${this.name}:${address}` });
  }

  /** Makes the next send fail with `err`. */
  failNext(err = new Error(`${this.name}: the platform refused the message`)): void {
    this.#failures.push(err);
  }

  async send(m: Outbound): Promise<void> {
    if (!this.#ctx) throw new Error(`${this.name}: channel is stopped`);
    const failure = this.#failures.shift();
    if (failure) throw failure;
    const file = m.file ? { file: { name: m.file.name, data: fs.readFileSync(m.file.path, 'utf8') } } : {};
    for (const text of splitText(m.text, this.limit)) this.outbox.push({ address: m.address, text, id: m.id, ...(m.replyTo ? { replyTo: m.replyTo } : {}), ...file });
    for (const w of this.#waiters.splice(0)) w();
  }

  typing(address: string): () => void {
    this.typingLog.push(`start ${address}`);
    let on = true;
    return () => {
      if (on) this.typingLog.push(`stop ${address}`);
      on = false;
    };
  }

  /** Resolves once at least `n` pieces were sent. */
  async sentCount(n: number): Promise<void> {
    while (this.outbox.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }

  async stop(): Promise<void> {
    this.#ctx = undefined;
  }
}
