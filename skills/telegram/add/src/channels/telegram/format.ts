// The model's Markdown as Telegram renders it: plain text plus message entities (bold,
// italic, code, pre, links, quotes), never a parse mode. With entities nothing needs
// escaping, so a reply full of `_`, `*`, `[`, `.` or `!` can never be refused for its
// syntax. Long texts are cut at Telegram's limit by splitText (paragraph boundaries
// first) and each piece keeps the part of every entity that falls inside it.
//
// Invariants: entities nest, never overlap partially (Telegram refuses that); offsets and
// lengths are UTF-16 units, as the Bot API counts; code and pre hold their text verbatim.

import { splitText } from '../split.ts';

export type EntityType = 'bold' | 'italic' | 'strikethrough' | 'code' | 'pre' | 'text_link' | 'blockquote';

export interface TgEntity {
  readonly type: EntityType;
  readonly offset: number;
  readonly length: number;
  readonly url?: string;
  readonly language?: string;
}

export interface Formatted {
  readonly text: string;
  readonly entities: readonly TgEntity[];
}

class Builder {
  text = '';
  readonly entities: TgEntity[] = [];

  add(s: string): void {
    this.text += s;
  }

  /** Runs `fill` and covers what it added with one entity (none when it added nothing). */
  wrap(type: EntityType, fill: () => void, extra: { url?: string; language?: string } = {}): void {
    const start = this.text.length;
    const at = this.entities.length;
    fill();
    // Inserted before the entities `fill` added: an outer entity comes before those it holds.
    if (this.text.length > start) this.entities.splice(at, 0, { type, offset: start, length: this.text.length - start, ...extra });
  }
}

/** Markdown (as models write it: CommonMark with GitHub's tables, strikethrough and task lists) → text and entities. */
export function markdownToTelegram(markdown: string): Formatted {
  const b = new Builder();
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  let first = true;
  /** Starts an output line: every unit after the first follows a newline. */
  const line = () => {
    if (!first) b.add('\n');
    first = false;
  };
  let para: string[] = [];
  const flush = () => {
    if (para.length === 0) return;
    line();
    inline(b, para.join('\n'));
    para = [];
  };

  for (let i = 0; i < lines.length;) {
    const l = lines[i]!;
    const fence = /^ {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/.exec(l);
    if (fence) {
      flush();
      const marker = fence[1]!;
      const closing = new RegExp(`^ {0,3}\\${marker[0]}{${marker.length},}\\s*$`);
      const body: string[] = [];
      for (i++; i < lines.length && !closing.test(lines[i]!); i++) body.push(lines[i]!);
      i++;
      line();
      b.wrap('pre', () => b.add(body.join('\n')), fence[2] ? { language: fence[2] } : {});
      continue;
    }
    if (isTableRow(l) && i + 1 < lines.length && isTableRule(lines[i + 1]!)) {
      flush();
      const rows: string[] = [];
      for (; i < lines.length && isTableRow(lines[i]!); i++) rows.push(lines[i]!);
      line();
      b.wrap('pre', () => b.add(table(rows)));
      continue;
    }
    const heading = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(l);
    if (heading) {
      flush();
      line();
      b.wrap('bold', () => inline(b, heading[1]!));
      i++;
      continue;
    }
    if (/^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/.test(l)) {
      flush();
      line();
      b.add('──────────');
      i++;
      continue;
    }
    if (/^ {0,3}>/.test(l)) {
      flush();
      const quoted: string[] = [];
      for (; i < lines.length && /^ {0,3}>/.test(lines[i]!); i++) quoted.push(lines[i]!.replace(/^ {0,3}> ?/, ''));
      line();
      b.wrap('blockquote', () => inline(b, quoted.join('\n')));
      continue;
    }
    const bullet = /^([ \t]*)[-*+][ \t]+(.*)$/.exec(l);
    const numbered = /^([ \t]*)(\d{1,9}[.)])[ \t]+(.*)$/.exec(l);
    if (bullet || numbered) {
      flush();
      line();
      if (bullet) {
        const task = /^\[([ xX])\][ \t]+(.*)$/.exec(bullet[2]!);
        b.add(bullet[1]! + (task ? (task[1] === ' ' ? '☐ ' : '☑ ') : '• '));
        inline(b, task ? task[2]! : bullet[2]!);
      } else {
        b.add(`${numbered![1]}${numbered![2]} `);
        inline(b, numbered![3]!);
      }
      i++;
      continue;
    }
    if (l.trim() === '') {
      flush();
      line();
      i++;
      continue;
    }
    para.push(l);
    i++;
  }
  flush();
  return trimFormatted({ text: b.text, entities: b.entities });
}

const PUNCT = /[!-/:-@[-`{-~]/;
const isSpace = (c: string | undefined) => c === undefined || /\s/.test(c);
const isPunct = (c: string | undefined) => c !== undefined && /[\p{P}\p{S}]/u.test(c);
const isWord = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}]/u.test(c);

function runLength(s: string, i: number, c: string): number {
  let n = 0;
  while (s[i + n] === c) n++;
  return n;
}

/** Where the code span opened by the `n` backticks at `i` closes, or -1. */
function codeClose(s: string, i: number, n: number): number {
  for (let k = i + n; k < s.length;) {
    if (s[k] !== '`') { k++; continue; }
    const m = runLength(s, k, '`');
    if (m === n) return k;
    k += m;
  }
  return -1;
}

function inline(b: Builder, s: string, opts: { inLink?: boolean } = {}): void {
  for (let i = 0; i < s.length;) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length && PUNCT.test(s[i + 1]!)) {
      b.add(s[i + 1]!);
      i += 2;
      continue;
    }
    if (c === '`') {
      const n = runLength(s, i, '`');
      const close = codeClose(s, i, n);
      if (close < 0) {
        b.add('`'.repeat(n));
        i += n;
        continue;
      }
      let code = s.slice(i + n, close).replace(/\n/g, ' ');
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim()) code = code.slice(1, -1);
      b.wrap('code', () => b.add(code));
      i = close + n;
      continue;
    }
    if (!opts.inLink && (c === '[' || (c === '!' && s[i + 1] === '['))) {
      const link = parseLink(s, c === '!' ? i + 1 : i);
      if (link) {
        emitLink(b, link.label || (c === '!' ? 'image' : ''), link.url);
        i = link.end;
        continue;
      }
    }
    if (c === '<') {
      const auto = /^<((?:https?|mailto):[^\s<>]+)>/i.exec(s.slice(i, i + 2048));
      if (auto) {
        b.add(auto[1]!.replace(/^mailto:/i, ''));
        i += auto[0].length;
        continue;
      }
    }
    if (c === '*' || c === '_' || c === '~') {
      const n = runLength(s, i, c);
      const end = emphasis(b, s, i, c, n, opts);
      if (end > i) {
        i = end;
        continue;
      }
      b.add(c.repeat(n));
      i += n;
      continue;
    }
    b.add(c);
    i++;
  }
}

function canOpen(s: string, i: number, n: number, c: string): boolean {
  const before = s[i - 1];
  const after = s[i + n];
  if (isSpace(after)) return false;
  if (c === '_' && isWord(before)) return false; // snake_case is not emphasis
  return !isPunct(after) || isSpace(before) || isPunct(before);
}

function canClose(s: string, k: number, n: number, c: string): boolean {
  const before = s[k - 1];
  const after = s[k + n];
  if (isSpace(before)) return false;
  if (c === '_' && isWord(after)) return false;
  return !isPunct(before) || isSpace(after) || isPunct(after);
}

/** Emphasis opened by the run of `n` × `c` at `i`: emits it and returns where it ends, or returns `i`. */
function emphasis(b: Builder, s: string, i: number, c: string, n: number, opts: { inLink?: boolean }): number {
  if (c === '~' ? n !== 2 : n > 3) return i;
  if (!canOpen(s, i, n, c)) return i;
  for (let k = i + n; k < s.length;) {
    const ch = s[k]!;
    if (ch === '\\') { k += 2; continue; }
    if (ch === '`') {
      const m = runLength(s, k, '`');
      const close = codeClose(s, k, m);
      k = close < 0 ? k + m : close + m;
      continue;
    }
    if (ch !== c) { k++; continue; }
    const m = runLength(s, k, c);
    // A longer run can close with its first n characters (`**a****b**` is two bold parts).
    if (m >= n && k > i + n && canClose(s, k, m, c)) {
      const inner = s.slice(i + n, k);
      const types: EntityType[] = c === '~' ? ['strikethrough'] : n === 1 ? ['italic'] : n === 2 ? ['bold'] : ['bold', 'italic'];
      const fill = (t: EntityType[]): void => {
        if (t.length === 0) inline(b, inner, opts);
        else b.wrap(t[0]!, () => fill(t.slice(1)));
      };
      fill(types);
      return k + n;
    }
    k += m;
  }
  return i;
}

/** `[label](url "title")` at `i` (a `[`), or undefined when it is not a link. */
function parseLink(s: string, i: number): { label: string; url: string; end: number } | undefined {
  let depth = 0;
  let k = i;
  for (; k < s.length; k++) {
    const ch = s[k];
    if (ch === '\\') { k++; continue; }
    if (ch === '[') depth++;
    else if (ch === ']' && --depth === 0) break;
  }
  if (k >= s.length || s[k + 1] !== '(') return undefined;
  const label = s.slice(i + 1, k);
  let p = k + 2;
  while (s[p] === ' ') p++;
  let url = '';
  if (s[p] === '<') {
    const close = s.indexOf('>', p);
    if (close < 0) return undefined;
    url = s.slice(p + 1, close);
    p = close + 1;
  } else {
    let parens = 0;
    for (; p < s.length && !/\s/.test(s[p]!); p++) {
      if (s[p] === '(') parens++;
      else if (s[p] === ')') { if (parens === 0) break; parens--; }
      url += s[p];
    }
  }
  while (s[p] === ' ') p++;
  const title = /^("[^"]*"|'[^']*')\s*/.exec(s.slice(p));
  if (title) p += title[0].length;
  if (s[p] !== ')') return undefined;
  return { label, url, end: p + 1 };
}

/** A URL Telegram takes for a text link: http(s), mailto or tg, well formed. */
export function linkUrl(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (!['http:', 'https:', 'mailto:', 'tg:'].includes(u.protocol)) return undefined;
  if ((u.protocol === 'http:' || u.protocol === 'https:') && !u.hostname.includes('.') && u.hostname !== 'localhost') return undefined;
  return u.href;
}

function emitLink(b: Builder, label: string, raw: string): void {
  const url = linkUrl(raw);
  if (!url) {
    // Not a link Telegram would take: keep both parts readable.
    inline(b, label, { inLink: true });
    if (raw) b.add(` (${raw})`);
    return;
  }
  b.wrap('text_link', () => (label ? inline(b, label, { inLink: true }) : b.add(raw)), { url });
}

const isTableRow = (l: string) => /^\s*\|.*\|\s*$/.test(l);
const isTableRule = (l: string) => /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(l);

/** A GitHub table, aligned in monospace (Telegram has no tables). */
function table(rows: string[]): string {
  const cells = rows.map((r) => (isTableRule(r) ? undefined : r.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim().replace(/\*\*|__|`/g, ''))));
  const widths: number[] = [];
  for (const row of cells) row?.forEach((c, j) => { widths[j] = Math.max(widths[j] ?? 0, c.length); });
  return cells.map((row) => (row ? row.map((c, j) => c.padEnd(widths[j]!)).join(' | ').trimEnd() : widths.map((w) => '-'.repeat(w)).join('-+-'))).join('\n');
}

/** Drops leading and trailing whitespace, as Telegram does, moving the entities with the text. */
export function trimFormatted(f: Formatted): Formatted {
  const lead = f.text.length - f.text.trimStart().length;
  return slice(f, lead, lead + f.text.trim().length);
}

/** The part [start, end) of a formatted text, with the part of each entity inside it. */
function slice(f: Formatted, start: number, end: number): Formatted {
  const entities: TgEntity[] = [];
  for (const e of f.entities) {
    const s = Math.max(start, e.offset);
    const t = Math.min(end, e.offset + e.length);
    if (t > s) entities.push({ ...e, offset: s - start, length: t - s });
  }
  entities.sort((a, b) => a.offset - b.offset || b.length - a.length); // stable: nesting order kept for equal ranges
  return { text: f.text.slice(start, end), entities };
}

/** Pieces of at most `limit` UTF-16 units, cut where splitText cuts, each with its entities. */
export function splitFormatted(f: Formatted, limit: number): Formatted[] {
  const pieces = splitText(f.text, limit);
  const out: Formatted[] = [];
  let pos = 0;
  for (const piece of pieces) {
    // splitText drops only whitespace at a cut: the piece is the text from the next non-skipped position.
    let start = pos;
    while (start < f.text.length && !f.text.startsWith(piece, start)) start++;
    out.push(trimFormatted(slice(f, start, start + piece.length)));
    pos = start + piece.length;
  }
  return out.filter((p) => p.text.length > 0);
}
