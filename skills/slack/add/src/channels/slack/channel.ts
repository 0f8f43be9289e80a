// The Slack channel: @slack/bolt's Web API client and Socket Mode client (made by
// `createSlackChannel`, which register.ts imports lazily) wired to the intake of each event
// (intake.ts), the outbox (outbox.ts) and, for the Events API over HTTP, the request check
// (verify.ts) behind hako's webhook listener at `/slack/events`. States: new → running →
// stopped, or → refused when Slack refuses a token (one clear line in the log and in
// `hako status`; the socket stops, sends then fail fast with the same line).
//
// Slack bots have no typing indicator over the Web API, so the channel has no `typing`.

import type { webApi } from '@slack/bolt';
import type { Channel, ChannelContext, Outbound, WebhookReply, WebhookRequest } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { DEFAULT_API_URL, type SlackConfig } from './config.ts';
import { classify, refusedLine, scrub, type Credential, type Failure } from './errors.ts';
import type { BotIdentity } from './inbound.ts';
import { Intake, type Lookups } from './intake.ts';
import { Outbox } from './outbox.ts';
import { SocketLink, type SocketClient } from './socket.ts';
import { RequestVerifier, type VerifySlackRequest } from './verify.ts';

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'running'; readonly intake: Intake; readonly link?: SocketLink; readonly loop?: Promise<void> }
  | { readonly kind: 'refused'; readonly line: string; readonly loop?: Promise<void> }
  | { readonly kind: 'stopped' };

export interface SlackChannelOptions {
  readonly config: SlackConfig;
  readonly web: webApi.WebClient;
  /** Socket Mode only: the client that opens the WebSocket with the app-level token. */
  readonly socket?: SocketClient;
  readonly verify: VerifySlackRequest;
  readonly home: string;
  readonly assistantName: string;
  readonly log: Logger;
}

/** Names looked up once per process; a conversation's title only matters for the owner's notice. */
const NAME_CACHE = 5000;

export class SlackChannel implements Channel {
  readonly name = 'slack';
  /** Only with the Events API over HTTP: the webhook listener serves the channels that have it. */
  readonly webhook?: (req: WebhookRequest) => Promise<WebhookReply>;
  #o: SlackChannelOptions;
  #state: State = { kind: 'new' };
  #bot: BotIdentity | undefined;
  #abort = new AbortController();
  #outbox: Outbox;
  #verifier: RequestVerifier | undefined;
  #names = new Map<string, string>();

  constructor(o: SlackChannelOptions) {
    this.#o = o;
    this.#outbox = new Outbox({ web: o.web, onRefused: (f) => this.#refused('SLACK_BOT_TOKEN', f) });
    if (o.config.mode.kind === 'events') {
      this.#verifier = new RequestVerifier({ signingSecret: o.config.mode.signingSecret, verify: o.verify });
      this.webhook = (req) => this.#webhook(req);
    }
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`slack: the channel cannot start again (it is ${this.#state.kind})`);
    const { config, log } = this.#o;
    try {
      await this.#identify();
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'revoked') {
        const line = refusedLine('SLACK_BOT_TOKEN', f.error);
        this.#state = { kind: 'refused', line };
        log.error(line);
        throw new Error(line);
      }
      // Not reachable yet (no network at boot): each event tries again, and the socket retries.
      log.warn('slack: the Web API does not answer yet; hako keeps trying', { apiUrl: config.apiUrl, reason: f.text });
    }
    const intake = new Intake({
      ctx, lookups: this.#lookups(), assistantName: this.#o.assistantName, ownerIds: config.ownerIds, home: this.#o.home,
      token: config.mode.botToken, fileOrigins: fileOrigins(config.apiUrl), limits: config.limits, log, signal: this.#abort.signal,
    });
    if (!this.#o.socket) {
      this.#state = { kind: 'running', intake };
      log.info('slack: receiving events over HTTP at /slack/events on the webhook listener', { bot: this.#bot?.userId });
      return;
    }
    const link = new SocketLink({
      client: this.#o.socket, log, signal: this.#abort.signal,
      handle: (eventId, event) => this.#take(eventId, event),
      onRefused: (f) => this.#refused('SLACK_APP_TOKEN', f),
    });
    const loop = link.run();
    this.#state = { kind: 'running', intake, link, loop };
    log.info('slack: receiving events over Socket Mode', { bot: this.#bot?.userId });
  }

  async send(m: Outbound): Promise<void> {
    const s = this.#state;
    if (s.kind === 'refused') throw new Error(s.line);
    if (s.kind !== 'running') throw new Error(`slack: the channel is ${s.kind === 'new' ? 'not started' : 'stopped'}`);
    await this.#outbox.send(m);
  }

  problem(): string | undefined {
    const s = this.#state;
    if (s.kind === 'refused') return s.line;
    if (s.kind === 'running') return s.link?.problem();
    return undefined;
  }

  async stop(): Promise<void> {
    const s = this.#state;
    if (s.kind === 'stopped') return;
    this.#state = { kind: 'stopped' };
    this.#abort.abort();
    await this.#o.socket?.disconnect().catch(() => {});
    if (s.kind === 'running' || s.kind === 'refused') await s.loop;
  }

  async #identify(): Promise<BotIdentity> {
    if (this.#bot) return this.#bot;
    const me = await this.#o.web.auth.test();
    if (!me.user_id) throw new Error('slack: auth.test did not name the bot user (is SLACK_BOT_TOKEN a bot token?)');
    this.#bot = { userId: me.user_id, ...(me.bot_id ? { botId: me.bot_id } : {}) };
    return this.#bot;
  }

  async #take(eventId: string | undefined, event: unknown): Promise<boolean> {
    const s = this.#state;
    if (s.kind !== 'running') return false;
    let bot: BotIdentity;
    try {
      bot = await this.#identify();
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'revoked') this.#refused('SLACK_BOT_TOKEN', f);
      else this.#o.log.warn('slack: cannot tell who the bot is yet (auth.test); the event comes again', { reason: f.text });
      return false;
    }
    return s.intake.take(eventId, event, bot);
  }

  async #webhook(req: WebhookRequest): Promise<WebhookReply> {
    if (this.#state.kind !== 'running') return { status: 503, body: 'slack channel not running' };
    if (req.method !== 'POST' || req.path !== '/events') return { status: 404, body: 'not found' };
    const verdict = this.#verifier!.check(req);
    if (!verdict.ok) return { status: 401, refused: verdict.reason };
    let body: { type?: unknown; challenge?: unknown; event?: unknown; event_id?: unknown };
    try {
      body = JSON.parse(req.body.toString('utf8'));
    } catch {
      return { status: 400, body: 'the body is not JSON' };
    }
    if (body.type === 'url_verification' && typeof body.challenge === 'string') {
      return { status: 200, contentType: 'application/json', body: JSON.stringify({ challenge: body.challenge }) };
    }
    if (body.type !== 'event_callback') return { status: 200 };
    const done = await this.#take(typeof body.event_id === 'string' ? body.event_id : undefined, body.event);
    // 500 makes Slack deliver the event again (with x-slack-retry-num); 200 only once it is stored.
    return done ? { status: 200 } : { status: 500, body: 'not stored; deliver again' };
  }

  #lookups(): Lookups {
    const { web, log } = this.#o;
    const cached = async (key: string, look: () => Promise<string | undefined>): Promise<string | undefined> => {
      const known = this.#names.get(key);
      if (known !== undefined) return known;
      try {
        const value = await look();
        if (value !== undefined) {
          this.#names.set(key, value);
          if (this.#names.size > NAME_CACHE) this.#names.delete(this.#names.keys().next().value!);
        }
        return value;
      } catch (err) {
        log.debug('slack: a name lookup failed', { key, reason: classify(err).text });
        return undefined;
      }
    };
    const userName = async (id: string) => (await cached(`user:${id}`, async () => {
      const u = (await web.users.info({ user: id })).user;
      return u?.profile?.display_name || u?.real_name || u?.name || undefined;
    })) ?? id;
    return {
      userName,
      chatTitle: (channel) => cached(`chat:${channel}`, async () => {
        const c = (await web.conversations.info({ channel })).channel as { name?: string; is_im?: boolean; user?: string } | undefined;
        if (c?.is_im && c.user) return `direct messages with ${await userName(c.user)}`;
        return c?.name ? `#${c.name}` : undefined;
      }),
    };
  }

  #refused(credential: Credential, f: Failure & { kind: 'revoked' }): void {
    const s = this.#state;
    if (s.kind !== 'running') return;
    const line = refusedLine(credential, f.error);
    this.#o.log.error(line);
    this.#state = { kind: 'refused', line, ...(s.loop ? { loop: s.loop } : {}) };
    this.#abort.abort();
    void this.#o.socket?.disconnect().catch(() => {});
  }
}

/** Where shared files may be downloaded from with the bot token. */
function fileOrigins(apiUrl: string): string[] {
  return apiUrl === DEFAULT_API_URL ? ['https://files.slack.com'] : [new URL(apiUrl).origin];
}

/** bolt's and the Slack clients' own log lines carry payloads (message texts): only their warnings and errors are kept, at debug. */
function quietLogger(log: Logger) {
  const put = (...msgs: unknown[]) => log.debug('slack (library)', { detail: scrub(msgs.map(String).join(' ')).slice(0, 500) });
  return { debug: () => {}, info: () => {}, warn: put, error: put, setLevel: () => {}, getLevel: () => 'info' as never, setName: () => {} };
}

/** Makes the channel with bolt's clients: the Web API client, and in Socket Mode bolt's Socket Mode client. */
export async function createSlackChannel(o: { config: SlackConfig; home: string; assistantName: string; log: Logger }): Promise<SlackChannel> {
  const bolt = await import('@slack/bolt');
  const logger = quietLogger(o.log);
  // Retries: a 429 is waited out (Retry-After) and a failed request tried again a few times;
  // beyond that the send rejects and the host sends the message again later.
  const clientOptions = { slackApiUrl: o.config.apiUrl, logger, timeout: 30_000, retryConfig: { retries: 4, factor: 2, minTimeout: 500, maxTimeout: 10_000 } };
  const web = new bolt.webApi.WebClient(o.config.mode.botToken, clientOptions);
  const mode = o.config.mode;
  const socket = mode.kind === 'socket'
    ? new bolt.SocketModeReceiver({ appToken: mode.appToken, logger, autoReconnectEnabled: false, installerOptions: { clientOptions: { ...clientOptions, retryConfig: { retries: 2, minTimeout: 500 } } } }).client as unknown as SocketClient
    : undefined;
  return new SlackChannel({ config: o.config, web, ...(socket ? { socket } : {}), verify: bolt.verifySlackRequest, home: o.home, assistantName: o.assistantName, log: o.log });
}

/** The doctor check: undefined when the bot token works, else what is wrong and the setting that fixes it. */
export async function checkSlack(config: SlackConfig): Promise<string | undefined> {
  const bolt = await import('@slack/bolt');
  const web = new bolt.webApi.WebClient(config.mode.botToken, { slackApiUrl: config.apiUrl, timeout: 15_000, retryConfig: { retries: 0 }, logger: quietLogger({ debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger) });
  try {
    await web.auth.test();
    return undefined;
  } catch (err) {
    const f = classify(err);
    if (f.kind === 'revoked') return refusedLine('SLACK_BOT_TOKEN', f.error);
    if (f.kind === 'network') return `slack: cannot reach the Web API at ${config.apiUrl} (${f.text}): check the network, or SLACK_API_URL`;
    return `slack: Slack refused auth.test (${f.text})`;
  }
}
