// The model's Markdown as LINE shows it: plain text (LINE renders no markup). Emphasis
// markers go (`**bold**` → bold), a link keeps its address (`[text](url)` → `text (url)`),
// headings lose their `#`, and code — fenced blocks and inline spans — is kept exactly as
// written, only its fence lines dropped. Then cut at LINE's 5,000 characters per text
// message, and grouped 5 messages per request (LINE's most per reply or push).
// Invariant: no character of a code block is changed.

import { splitText } from '../split.ts';

export const TEXT_LIMIT = 5000;
export const MESSAGES_PER_REQUEST = 5;

const FENCE = /^ {0,3}(```|~~~)/;

export function markdownToPlain(md: string): string {
  const out: string[] = [];
  let fence: string | undefined;
  for (const line of md.replace(/\r\n?/g, '\n').split('\n')) {
    const f = FENCE.exec(line);
    if (fence) {
      if (f && f[1] === fence && line.trim() === fence) fence = undefined;
      else out.push(line);
      continue;
    }
    if (f) {
      fence = f[1];
      continue;
    }
    out.push(inline(block(line)));
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

/** Line-level markup: headings, `* ` bullets, horizontal rules. */
function block(line: string): string {
  if (/^ {0,3}([-*_])( *\1){2,} *$/.test(line)) return '──────────';
  return line.replace(/^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/, '$1').replace(/^(\s*)[*+]\s+/, '$1- ');
}

/** Inline markup outside code spans; a code span is kept as its content. */
function inline(line: string): string {
  return line.split(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/).map((part, i) => {
    // split() with two groups yields [text, ticks, code, text, ticks, code, …].
    if (i % 3 === 1) return '';
    if (i % 3 === 2) return part;
    return emphasis(links(part));
  }).join('');
}

function links(s: string): string {
  return s
    .replace(/!?\[([^\]]*)\]\((\S+?)(?:\s+"[^"]*")?\)/g, (_m, text: string, url: string) => (text.trim() === '' || text === url ? url : `${text} (${url})`))
    .replace(/<((?:https?|mailto):[^>\s]+)>/g, '$1');
}

function emphasis(s: string): string {
  return s
    .replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, '$2')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '$1')
    .replace(/(?<![\p{L}\p{N}*\\])\*(?=[^\s*])([^*]*?[^\s*])\*(?![\p{L}\p{N}*])/gu, '$1')
    .replace(/(?<![\p{L}\p{N}_\\])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}_])/gu, '$1');
}

/** The messages of one reply: the plain text cut at the limit, in requests of at most five. */
export function linePieces(md: string): string[][] {
  let text = markdownToPlain(md);
  if (text === '') text = md.trim() || md;
  const pieces = splitText(text, TEXT_LIMIT);
  const requests: string[][] = [];
  for (let i = 0; i < pieces.length; i += MESSAGES_PER_REQUEST) requests.push(pieces.slice(i, i + MESSAGES_PER_REQUEST));
  return requests;
}
