// Text from agents and chat users, made safe to print to a terminal. Such text must never
// drive the terminal: no escape sequence (clipboard writes, window titles, cursor moves,
// colours), no carriage return that overwrites a line, no bidi override that reorders one.
// Invariant: every character that could do so comes out as a visible `\uXXXX` escape.

// C0 controls, DEL and C1 controls; line/paragraph separators; the bidi embeddings,
// overrides and isolates, and the invisible direction marks.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// The same set except newline and tab, for text printed over several lines.
const UNSAFE_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// JSON.stringify escapes C0 inside strings already, but not DEL, C1 or the Unicode ones.
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** One line: every control character escaped, newline and tab included. */
export function safeLine(s: string): string {
  return s.replace(UNSAFE, escape);
}

/** Several lines: as safeLine but keeping newline and tab (a CRLF counts as a newline). */
export function safeText(s: string): string {
  return s.replace(/\r\n/g, '\n').replace(UNSAFE_IN_TEXT, escape);
}

/** A JSON text (still valid JSON, same value) that is safe to print. */
export function safeJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, escape);
}
