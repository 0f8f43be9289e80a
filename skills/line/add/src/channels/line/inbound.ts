// A LINE webhook request in: the signature check over the raw bytes (constant time, the
// SDK's validateSignature), the body parsed from `unknown`, and each message event mapped to
// what hako needs — the chat address by the event's source, the sender, whether it is
// addressed to the bot, the files to fetch. Pure: no I/O; the channel does the rest.
// Invariants: nothing is parsed before the signature holds; an event outside the age window
// is never mapped to a message.

/** An event whose `timestamp` is further than this from now is refused as a replay (redeliveries too). */
export const MAX_EVENT_AGE_MS = 10 * 60 * 1000;

export type Verify = (body: Buffer, secret: string, signature: string) => boolean;

/** Whether `signature` (the x-line-signature header) is the body's HMAC-SHA256 under the secret; never throws. */
export function signatureHolds(verify: Verify, body: Buffer, secret: string, signature: string | undefined): boolean {
  if (!signature || !/^[A-Za-z0-9+/]{43}=$/.test(signature.trim())) return false;
  try {
    return verify(body, secret, signature.trim());
  } catch {
    return false;
  }
}

export interface LineEvent {
  readonly type: string;
  readonly webhookEventId: string;
  readonly timestamp: number;
  readonly mode: string;
  readonly redelivery: boolean;
  readonly replyToken?: string;
  readonly source: { readonly type: 'user' | 'group' | 'room'; readonly id: string; readonly userId?: string };
  readonly message?: Readonly<Record<string, unknown>> & { readonly type: string; readonly id: string };
}

/** The events of a webhook body, or why it is not LINE's shape. Events of unknown shape are left out. */
export function parseBody(body: Buffer): { events: LineEvent[] } | { error: string } {
  let j: unknown;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: 'the body is not JSON' };
  }
  const events = (j as { events?: unknown })?.events;
  if (!Array.isArray(events)) return { error: 'the body has no events array' };
  return { events: events.map(parseEvent).filter((e): e is LineEvent => e !== undefined) };
}

function parseEvent(raw: unknown): LineEvent | undefined {
  const e = raw as Record<string, unknown> | null;
  if (!e || typeof e !== 'object') return undefined;
  const { type, webhookEventId, timestamp, mode } = e;
  if (typeof type !== 'string' || typeof webhookEventId !== 'string' || !webhookEventId || typeof timestamp !== 'number') return undefined;
  const source = parseSource(e.source);
  if (!source) return undefined;
  const m = e.message as Record<string, unknown> | undefined;
  const message = m && typeof m === 'object' && typeof m.type === 'string' && typeof m.id === 'string' ? (m as LineEvent['message']) : undefined;
  const ctx = e.deliveryContext as { isRedelivery?: unknown } | undefined;
  return {
    type, webhookEventId, timestamp, mode: typeof mode === 'string' ? mode : 'active',
    redelivery: ctx?.isRedelivery === true, source,
    ...(typeof e.replyToken === 'string' ? { replyToken: e.replyToken } : {}),
    ...(message ? { message } : {}),
  };
}

function parseSource(raw: unknown): LineEvent['source'] | undefined {
  const s = raw as { type?: unknown; userId?: unknown; groupId?: unknown; roomId?: unknown } | null;
  if (!s || typeof s !== 'object') return undefined;
  const userId = typeof s.userId === 'string' && s.userId ? s.userId : undefined;
  const id = s.type === 'user' ? userId : s.type === 'group' ? s.groupId : s.type === 'room' ? s.roomId : undefined;
  if (typeof id !== 'string' || !/^[A-Za-z0-9]{1,64}$/.test(id)) return undefined;
  return { type: s.type as 'user' | 'group' | 'room', id, ...(userId ? { userId } : {}) };
}

/** Why an event is outside the age window (too old, or from the future), or undefined. */
export function ageProblem(e: LineEvent, now: number): string | undefined {
  const age = now - e.timestamp;
  if (age > MAX_EVENT_AGE_MS) return `event older than ${MAX_EVENT_AGE_MS / 60_000} minutes`;
  if (age < -MAX_EVENT_AGE_MS) return 'event timestamp in the future';
  return undefined;
}

export interface FileToFetch {
  readonly kind: 'image' | 'video' | 'audio' | 'file';
  readonly messageId: string;
  readonly name: string;
  readonly mime: string;
  /** The size LINE announced (file messages), to refuse before downloading. */
  readonly size?: number;
}

export interface Mapped {
  readonly chat: string;
  readonly senderId: string;
  /** The user id to look the sender's name up with, when LINE gave one. */
  readonly userId?: string;
  readonly text: string;
  readonly direct: boolean;
  readonly file?: FileToFetch;
  /** What could not be carried (a sticker, a location, a file LINE keeps elsewhere). */
  readonly note?: string;
}

const EXT: Record<string, [string, string]> = { image: ['jpg', 'image/jpeg'], video: ['mp4', 'video/mp4'], audio: ['m4a', 'audio/m4a'] };

/** A message event as hako sees it, or undefined for every other event (follow, join, unsend, postback, standby). */
export function mapMessage(e: LineEvent): Mapped | undefined {
  if (e.type !== 'message' || !e.message || e.mode !== 'active') return undefined;
  const m = e.message;
  const base = { chat: `line:${e.source.id}`, senderId: e.source.userId ? `line:${e.source.userId}` : 'line:unknown', ...(e.source.userId ? { userId: e.source.userId } : {}) };
  const oneToOne = e.source.type === 'user';
  switch (m.type) {
    case 'text': {
      const text = typeof m.text === 'string' ? m.text : '';
      return { ...base, text, direct: oneToOne || mentionsBot(m.mention) };
    }
    case 'image': case 'video': case 'audio': {
      const provider = m.contentProvider as { type?: unknown; originalContentUrl?: unknown } | undefined;
      if (provider?.type === 'external') {
        const url = typeof provider.originalContentUrl === 'string' ? provider.originalContentUrl : 'an external address';
        return { ...base, text: '', direct: oneToOne, note: `[${m.type}: not saved: it is kept outside LINE at ${url}]` };
      }
      const [ext, mime] = EXT[m.type]!;
      return { ...base, text: '', direct: oneToOne, file: { kind: m.type, messageId: m.id, name: `${m.type}-${m.id}.${ext}`, mime } };
    }
    case 'file': {
      const name = typeof m.fileName === 'string' && m.fileName ? m.fileName : `file-${m.id}`;
      const size = typeof m.fileSize === 'number' ? m.fileSize : undefined;
      return { ...base, text: '', direct: oneToOne, file: { kind: 'file', messageId: m.id, name, mime: 'application/octet-stream', ...(size !== undefined ? { size } : {}) } };
    }
    case 'sticker': return { ...base, text: '', direct: oneToOne, note: '[sticker]' };
    case 'location': {
      const title = typeof m.title === 'string' ? `${m.title}: ` : '';
      const address = typeof m.address === 'string' ? m.address : '';
      return { ...base, text: `[location: ${title}${address} (${String(m.latitude)}, ${String(m.longitude)})]`, direct: oneToOne };
    }
    default: return { ...base, text: '', direct: oneToOne, note: `[${m.type} message: not shown]` };
  }
}

/** A mention of the bot itself (LINE marks it `isSelf`); `@All` does not count. */
function mentionsBot(mention: unknown): boolean {
  const list = (mention as { mentionees?: unknown } | undefined)?.mentionees;
  return Array.isArray(list) && list.some((x) => (x as { type?: unknown; isSelf?: unknown })?.type === 'user' && (x as { isSelf?: unknown }).isSelf === true);
}
