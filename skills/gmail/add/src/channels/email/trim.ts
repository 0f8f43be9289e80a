// Trims what the sender did not write in this message from an e-mail's plain text: the
// quoted history below a reply ("On … wrote:" and the `>` lines, Outlook's "Original
// Message" block) and the signature (the `-- ` line, "Sent from my iPhone"). A forwarded
// message is the opposite case — the history IS the content — so nothing from a forward
// marker on is ever trimmed, and a message whose subject says it is forwarded keeps its
// whole text. Inline answers between quotes are kept: only a trailing quote goes. Pure.

export interface Trimmed {
  readonly text: string;
  /** Lines of quoted history removed. */
  readonly quotedLines: number;
  readonly signature: boolean;
}

const FORWARD_SUBJECT = /^\s*(fwd?|fw|wg|tr|rv|i)\s*:/i;
const FORWARD_MARKER = /^[ \t]*(-{2,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)\s*-{2,}|begin forwarded message:)\s*$/im;

/** Lines that start the quoted history of a reply (the line that introduces the quote). */
const REPLY_HEADERS: readonly RegExp[] = [
  // Gmail, Apple Mail, Thunderbird, K-9 … — possibly wrapped over two lines.
  /^(on|am|le|el|op|il|em|den|på)\s[^\n]{0,250}(?:\n[^\n]{0,250})?(wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu|skrev)(?:\s[^\n]{0,120})?\s?:[ \t]*$/im,
  /^-{3,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original)\s*-{3,}\s*$/im,
  // Outlook: a rule of underscores, then From:/Sent: (or Von:/Gesendet:).
  /^_{10,}\s*\n\s*(from|von|de):.*\n\s*(sent|gesendet|envoyé|enviado):/im,
];

const MOBILE_SIGNATURE = /^\s*(sent from my \S.*|sent from (outlook|mail) for .*|get outlook for \S.*|von meinem \S.* gesendet)\s*$/i;

/** The index of the first line of the quoted history, or -1. */
function quoteStart(lines: readonly string[], limit: number): number {
  // A reply header: the history runs from it to the end (only quotes, blanks and the header's tail may follow).
  const joined = lines.slice(0, limit).join('\n');
  let best = -1;
  for (const re of REPLY_HEADERS) {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
    for (const m of joined.matchAll(g)) {
      const line = joined.slice(0, m.index).split('\n').length - 1;
      // Only when what follows is history: quoted lines, or the rest of the message (top-posting).
      const after = lines.slice(line + m[0].split('\n').length, limit);
      const isReplyHeader = re !== REPLY_HEADERS[0] || after.some((l) => l.startsWith('>')) || after.every((l) => !l.trim());
      if (isReplyHeader && (best === -1 || line < best)) best = line;
      if (isReplyHeader) break;
    }
  }
  if (best !== -1) return best;
  // No header: a trailing run of `>` lines (bottom-quoted without an introduction).
  let i = limit;
  while (i > 0 && (lines[i - 1]!.startsWith('>') || !lines[i - 1]!.trim())) i--;
  const quoted = lines.slice(i, limit).filter((l) => l.startsWith('>')).length;
  return quoted > 0 ? i : -1;
}

/** The index of the signature delimiter, or -1: `-- ` near the end, or a mobile footer. */
function signatureStart(lines: readonly string[], limit: number): number {
  for (let i = limit - 1; i >= Math.max(0, limit - 20); i--) {
    if (/^-- ?$/.test(lines[i]!)) return i;
  }
  let last = limit - 1;
  while (last >= 0 && !lines[last]!.trim()) last--;
  if (last >= 0 && MOBILE_SIGNATURE.test(lines[last]!)) return last;
  return -1;
}

export function trimReply(body: string, subject = ''): Trimmed {
  const text = body.replace(/\r\n?/g, '\n');
  if (FORWARD_SUBJECT.test(subject)) return { text: text.trim(), quotedLines: 0, signature: false };
  const lines = text.split('\n');
  // Nothing from a forward marker on is touched.
  const fwd = FORWARD_MARKER.exec(text);
  const limit = fwd ? text.slice(0, fwd.index).split('\n').length - 1 : lines.length;
  let end = limit;
  let quotedLines = 0;
  const q = quoteStart(lines, end);
  if (q > 0) {
    quotedLines = lines.slice(q, end).filter((l) => l.trim()).length;
    end = q;
  }
  const s = signatureStart(lines, end);
  const signature = s > 0;
  if (signature) end = s;
  const kept = (end < limit ? [...lines.slice(0, end), '', ...lines.slice(limit)] : lines).join('\n').trim();
  // A message that is nothing but a quote keeps it: an empty text would tell the agent nothing.
  if (!kept) return { text: text.trim(), quotedLines: 0, signature: false };
  return { text: kept, quotedLines, signature };
}
