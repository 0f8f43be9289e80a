// One assistant message out: Markdown → mrkdwn, cut at 4,000 characters, posted piece by
// piece in order into the thread of the message it answers (the thread it was in, or the
// thread it starts), then the file the agent sent, uploaded into the same thread.
// A 429 is waited out by the Web API client itself (Retry-After); a refused token marks
// the channel refused. Pieces already delivered are remembered by message id, so a message
// sent again after a failure does not repeat them.

import type { webApi } from '@slack/bolt';
import { readFile } from 'node:fs/promises';
import type { Outbound } from '../../core/channel.ts';
import { classify, type Failure } from './errors.ts';
import { markdownToMrkdwn, splitMrkdwn } from './format.ts';
import { isConversation, threadOf } from './inbound.ts';

/** Messages partly delivered, remembered this long at most. */
const MEMORY = 500;

export interface OutboxOptions {
  readonly web: webApi.WebClient;
  /** Called when a call meets a refused token, before the send rejects. */
  readonly onRefused: (f: Failure & { kind: 'revoked' }) => void;
}

export class Outbox {
  #o: OutboxOptions;
  /** Outbound id → steps (pieces, then the file) already delivered. */
  #delivered = new Map<string, number>();

  constructor(o: OutboxOptions) {
    this.#o = o;
  }

  async send(m: Outbound): Promise<void> {
    const channel = m.address;
    if (!isConversation(channel)) throw new Error(`slack: ${JSON.stringify(channel)} is not a Slack conversation id (C…, G… or D…)`);
    const thread = threadOf(m.replyTo);
    const text = m.text.trim() ? markdownToMrkdwn(m.text) : '';
    const steps: (() => Promise<unknown>)[] = (text ? splitMrkdwn(text) : []).map((piece) => () => this.#o.web.chat.postMessage({
      channel, text: piece, mrkdwn: true, unfurl_links: false, ...(thread ? { thread_ts: thread } : {}),
    }));
    const file = m.file;
    if (file) {
      steps.push(async () => {
        const data = await readFile(file.path);
        const where = thread ? { channel_id: channel, thread_ts: thread } : { channel_id: channel };
        return this.#o.web.filesUploadV2({ ...where, file: data, filename: file.name, title: file.name });
      });
    }
    for (let k = this.#delivered.get(m.id) ?? 0; k < steps.length; k++) {
      try {
        await steps[k]!();
      } catch (err) {
        const f = classify(err);
        if (f.kind === 'revoked') this.#o.onRefused(f);
        const what = file && k === steps.length - 1 ? `the file ${JSON.stringify(file.name)}` : 'the message';
        throw new Error(`slack: ${what} to ${channel} was not sent: ${f.text}${hint(f)}`);
      }
      this.#remember(m.id, k + 1);
    }
    this.#delivered.delete(m.id);
  }

  #remember(id: string, steps: number): void {
    this.#delivered.delete(id);
    this.#delivered.set(id, steps);
    if (this.#delivered.size > MEMORY) this.#delivered.delete(this.#delivered.keys().next().value!);
  }
}

function hint(f: Failure): string {
  if (f.kind !== 'refused') return '';
  if (f.error === 'not_in_channel' || f.error === 'channel_not_found') return ' (invite the app to the channel: /invite @<app name>)';
  if (f.error === 'missing_scope') return ' (add the missing scope under OAuth & Permissions and reinstall the app)';
  return '';
}
