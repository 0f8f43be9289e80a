// Streamed reply text: reads the text a model writes from the bytes of a streamed response as
// the group's proxy forwards them (Server-Sent Events of the OpenAI chat completions and the
// Anthropic messages wire formats), so local clients can see a reply while it is written.
// Pure: no I/O, no clock.
//
// Invariants: the parser only observes the bytes (the proxy forwards them unchanged and
// undelayed); it never throws, whatever the bytes; its memory is bounded (MAX_EVENT for the
// event being read, MAX_TEXT for the text kept); a non-streamed (JSON) body yields nothing;
// only text is read (tool-call arguments, thinking and usage are not text).

/** Characters of one event's data kept while it is read; a bigger event is skipped whole. */
export const MAX_EVENT = 1024 * 1024;
/** Characters of text kept per response; what comes after is not shown (`truncated`). */
export const MAX_TEXT = 256 * 1024;

export interface StreamTextParser {
  /** Whether the body is a stream at all (text/event-stream); a JSON body never yields text. */
  readonly streaming: boolean;
  /** The text of the response so far (at most MAX_TEXT characters). */
  readonly text: string;
  /** True once some text was dropped: MAX_TEXT was reached, or an event was too big to read. */
  readonly truncated: boolean;
  /** Takes the next bytes of the body, in order; returns the text they added ('' for none). Never throws. */
  push(chunk: Uint8Array): string;
  /** The body ended or was cut off: reads a last event that had no blank line after it; returns the text it added. */
  end(): string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The text one parsed event carries, in either wire format; '' for anything else. */
export function textOfEvent(v: unknown): string {
  if (!isRecord(v)) return '';
  // Anthropic: text arrives only as text_delta; input_json_delta and thinking_delta are not the reply.
  if (v.type === 'content_block_delta') {
    const d = v.delta;
    return isRecord(d) && d.type === 'text_delta' && typeof d.text === 'string' ? d.text : '';
  }
  // OpenAI: the first choice's delta; a request for n > 1 choices streams others with their own index.
  if (!Array.isArray(v.choices)) return '';
  const first: unknown = v.choices[0];
  if (!isRecord(first) || (first.index !== undefined && first.index !== 0) || !isRecord(first.delta)) return '';
  return typeof first.delta.content === 'string' ? first.delta.content : '';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// A lone CR at the very end is held back: it may be the first half of a CRLF split across chunks.
const LINE_BREAK = /\r\n|\n|\r(?!$)/;

/** A parser for one response body; `contentType` says whether it is a stream (text/event-stream). */
export function streamTextParser(contentType: string | undefined): StreamTextParser {
  const streaming = /^\s*text\/event-stream/i.test(contentType ?? '');
  const decoder = new TextDecoder();
  let text = '';
  let truncated = false;
  /** The line being read (no line break seen yet). */
  let line = '';
  /** The line being read grew past MAX_EVENT: the rest of it, up to its line break, is dropped. */
  let skippingLine = false;
  /** The data lines of the event being read, and their size. */
  let data: string[] = [];
  let dataSize = 0;
  let eventTooBig = false;

  const append = (piece: string): string => {
    if (piece === '') return '';
    const kept = piece.slice(0, Math.max(0, MAX_TEXT - text.length));
    if (kept.length < piece.length) truncated = true;
    text += kept;
    return kept;
  };

  // A blank line ends an event (the SSE rule); its data lines are joined with LF.
  const dispatch = (): string => {
    const body = data.join('\n');
    const skip = eventTooBig;
    data = [];
    dataSize = 0;
    eventTooBig = false;
    if (skip || body === '') return '';
    return append(textOfEvent(parseJson(body)));
  };

  const take = (l: string): string => {
    if (l === '') return dispatch();
    if (!l.startsWith('data:')) return ''; // event:, id:, retry: and comments carry no text
    const value = l.charCodeAt(5) === 0x20 ? l.slice(6) : l.slice(5);
    dataSize += value.length;
    if (dataSize > MAX_EVENT) {
      eventTooBig = true;
      truncated = true;
      data = [];
      return '';
    }
    data.push(value);
    return '';
  };

  const feed = (s: string): string => {
    const parts = (line + s).split(LINE_BREAK);
    line = parts.pop() ?? '';
    let added = '';
    for (const p of parts) {
      if (skippingLine) {
        // The tail of an over-long line: the event it belonged to cannot be read.
        skippingLine = false;
        eventTooBig = true;
        truncated = true;
        continue;
      }
      added += take(p);
    }
    if (line.length > MAX_EVENT) {
      line = '';
      skippingLine = true;
    }
    return added;
  };

  const guard = (fn: () => string): string => {
    try {
      return fn();
    } catch {
      // Unreachable by design (no step above throws); kept so a proxy tap can never break a response.
      return '';
    }
  };

  return {
    streaming,
    get text() { return text; },
    get truncated() { return truncated; },
    push: (chunk) => streaming ? guard(() => feed(decoder.decode(chunk, { stream: true }))) : '',
    end: () => {
      if (!streaming) return '';
      return guard(() => {
        let added = feed(decoder.decode());
        const last = skippingLine ? '' : line.replace(/\r$/, '');
        line = '';
        skippingLine = false;
        // A stream cut off after its last complete line: that event is read as if it had ended.
        if (last !== '') added += take(last);
        return added + dispatch();
      });
    },
  };
}
