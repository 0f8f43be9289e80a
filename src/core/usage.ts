// Token usage and daily budgets: reads the tokens a model response reports from the bytes the
// group's proxy forwards (JSON or SSE, Anthropic or OpenAI wire format), and decides whether a
// group may still use the model today. Pure: no I/O, no clock (the caller passes the time).
//
// Invariants: the parser only observes the bytes (the proxy forwards them unchanged and
// undelayed); it never throws, whatever the bytes; its memory is bounded (MAX_BUFFER); a
// provider that repeats a usage field (Anthropic's message_delta, OpenAI-compatible servers
// that stream running totals) is counted once, by its latest value, because those are totals.

/** Tokens one model response used. Anthropic's cache reads and writes count as input. */
export interface Usage {
  readonly input: number;
  readonly output: number;
}

/** Bytes kept of one JSON body or one SSE line; a bigger one is not read (and reported as unreadable). */
const MAX_BUFFER = 8 * 1024 * 1024;

/** The usage fields of both wire formats; each is a running total, so the latest value wins. */
const FIELDS = ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'output_tokens', 'prompt_tokens', 'completion_tokens'] as const;
type Field = typeof FIELDS[number];

export interface UsageParser {
  /** Takes the next bytes of the response body, in order. Never throws. */
  push(chunk: Buffer): void;
  /**
   * The body ended (or was cut off): the usage it reported, null when it reported none.
   * `unreadable` is true when a body or line was too big to read (the count may be short).
   */
  end(): { usage: Usage | null; unreadable: boolean };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Copies the numeric usage fields of one parsed object (`usage`, or Anthropic's `message.usage`). */
function collect(into: Map<Field, number>, value: unknown): void {
  if (!isRecord(value)) return;
  const usage = isRecord(value.usage) ? value.usage : isRecord(value.message) && isRecord(value.message.usage) ? value.message.usage : undefined;
  if (!usage) return;
  for (const f of FIELDS) {
    const n = usage[f];
    if (typeof n === 'number' && Number.isFinite(n) && n >= 0) into.set(f, Math.floor(n));
  }
}

function totals(seen: ReadonlyMap<Field, number>): Usage | null {
  if (seen.size === 0) return null;
  const get = (f: Field) => seen.get(f) ?? 0;
  return {
    input: get('input_tokens') + get('cache_creation_input_tokens') + get('cache_read_input_tokens') + get('prompt_tokens'),
    output: get('output_tokens') + get('completion_tokens'),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A parser for one response body; `contentType` picks SSE (text/event-stream) or JSON. */
export function usageParser(contentType: string | undefined): UsageParser {
  const seen = new Map<Field, number>();
  let unreadable = false;
  if (/^\s*text\/event-stream/i.test(contentType ?? '')) {
    // SSE: complete lines only; a chunk may end in the middle of a line (or of a UTF-8 character).
    const decoder = new TextDecoder();
    let line = '';
    const take = (l: string) => {
      if (l.startsWith('data:')) collect(seen, parseJson(l.slice(5).trim()));
    };
    const feed = (text: string) => {
      const parts = (line + text).split(/\r?\n|\r/);
      line = parts.pop() ?? '';
      for (const p of parts) take(p);
      if (line.length > MAX_BUFFER) {
        unreadable = true;
        line = '';
      }
    };
    return {
      push: (chunk) => feed(decoder.decode(chunk, { stream: true })),
      end: () => {
        feed(decoder.decode());
        take(line); // a stream cut off after its last complete event
        line = '';
        return { usage: totals(seen), unreadable };
      },
    };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push: (chunk) => {
      size += chunk.length;
      if (size > MAX_BUFFER) unreadable = true;
      else chunks.push(chunk);
    },
    end: () => {
      if (!unreadable) collect(seen, parseJson(Buffer.concat(chunks).toString('utf8')));
      chunks.length = 0;
      return { usage: totals(seen), unreadable };
    },
  };
}

/** One formatter per time zone: building one costs about 0.25 ms, and a model request asks twice. */
const dayFormatters = new Map<string, Intl.DateTimeFormat>();

/** `YYYY-MM-DD` of the instant `ms` in time zone `tz`: the day usage is counted under. */
export function dayIn(tz: string, ms: number): string {
  let f = dayFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormatters.set(tz, f);
  }
  return f.format(ms);
}

export interface BudgetFacts {
  readonly group: string;
  /** The group's own budget (hako groups set --tokens-per-day), null for none. */
  readonly groupBudget: number | null;
  /** HAKO_TOKENS_PER_DAY, for all groups together; null for none. */
  readonly globalBudget: number | null;
  /** Tokens (input + output) the group used today. */
  readonly groupUsed: number;
  /** Tokens all groups used today. */
  readonly totalUsed: number;
  readonly tz: string;
}

/** Which budget is used up, with the text the group and the owner are told; null when the group may use the model. */
export function budgetProblem(f: BudgetFacts): { which: 'group' | 'global'; text: string } | null {
  const until = `messages wait until tomorrow (00:00 ${f.tz}) or until the owner raises it`;
  if (f.groupBudget !== null && f.groupUsed >= f.groupBudget) {
    return { which: 'group', text: `the daily token budget of ${f.groupBudget} for group "${f.group}" is used up (${f.groupUsed} used today); ${until}: hako groups set ${f.group} --tokens-per-day N (or none)` };
  }
  if (f.globalBudget !== null && f.totalUsed >= f.globalBudget) {
    return { which: 'global', text: `the daily token budget of ${f.globalBudget} for all groups (HAKO_TOKENS_PER_DAY) is used up (${f.totalUsed} used today); ${until}: set HAKO_TOKENS_PER_DAY higher (or unset it) and restart hako` };
  }
  return null;
}
