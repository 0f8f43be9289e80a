// Markdown as the model writes it → Slack mrkdwn: **bold** → *bold*, *italic*/_italic_ →
// _italic_, ~~strike~~ → ~strike~, `code` and ``` blocks kept (the language tag dropped:
// Slack would show it), [text](url) → <url|text>, headings → bold lines, list markers →
// bullets; &, < and > escaped everywhere as Slack requires. Then split at Slack's limit,
// a code block cut in two closed and reopened so each piece renders on its own.

import { splitText } from '../split.ts';

/** Characters per message: Slack's recommended limit for chat.postMessage's `text`. */
export const TEXT_LIMIT = 4000;
const FENCE = '```';

export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function markdownToMrkdwn(md: string): string {
  const out: string[] = [];
  // Odd parts are code blocks: their content is only escaped.
  const parts = md.split(/```[^\n`]*\n?([\s\S]*?)```/g);
  parts.forEach((part, i) => {
    if (i % 2 === 1) out.push(`${FENCE}${escapeMrkdwn(part.replace(/\n$/, ''))}${FENCE}`);
    else out.push(prose(part));
  });
  return out.join('');
}

/** Text outside code blocks: inline code is kept (escaped), the rest converted. */
function prose(text: string): string {
  return text.split(/(`[^`\n]+`)/g).map((piece, i) => (i % 2 === 1 ? escapeMrkdwn(piece) : inline(piece))).join('');
}

const BOLD_OPEN = '\u0002';
const BOLD_CLOSE = '\u0003';

function inline(text: string): string {
  let s = escapeMrkdwn(text);
  s = s.replace(/^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/gm, (_m, title: string) => `${BOLD_OPEN}${title.replace(/\*\*|__/g, '')}${BOLD_CLOSE}`);
  s = s.replace(/^([ \t]*)[-*+][ \t]+/gm, '$1• ');
  s = s.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (_m, label: string, url: string) => `<${url}|${label.replace(/\|/g, '¦')}>`);
  s = s.replace(/\*\*(?=\S)([^*\n]+?)\*\*|__(?=\S)([^_\n]+?)__/g, (_m, a?: string, b?: string) => `${BOLD_OPEN}${a ?? b}${BOLD_CLOSE}`);
  s = s.replace(/(?<![\p{L}\p{N}*])\*(?=\S)([^*\n]+?)\*(?![\p{L}\p{N}*])/gu, '_$1_');
  s = s.replace(/~~(?=\S)([^~\n]+?)~~/g, '~$1~');
  return s.replaceAll(BOLD_OPEN, '*').replaceAll(BOLD_CLOSE, '*');
}

/** Pieces of at most `limit` characters; a code block cut by a split is closed and reopened. */
export function splitMrkdwn(text: string, limit = TEXT_LIMIT): string[] {
  const pieces = splitText(text, limit - 2 * (FENCE.length + 1));
  let open = false;
  return pieces.map((piece) => {
    const fences = piece.split(FENCE).length - 1;
    const opened = open ? `${FENCE}${piece}` : piece;
    open = (fences % 2 === 1) !== open;
    return open ? `${opened}${FENCE}` : opened;
  });
}
