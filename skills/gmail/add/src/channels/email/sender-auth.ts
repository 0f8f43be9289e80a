// Whether a message's From address can be believed. Anyone can write any From; the
// receiving server (Gmail: mx.google.com) checks SPF, DKIM and DMARC and stamps its verdict
// as the topmost Authentication-Results header (RFC 8601). With HAKO_EMAIL_AUTHSERV_ID set,
// the owner's address counts only when that topmost header is the configured server's and
// says DMARC passed for the From domain, or a DKIM signature of the From domain (or its
// parent) passed. Headers further down could have been written by the sender: never read.
// Also: mail that says it was sent by a program (Auto-Submitted, Precedence: bulk/list/junk)
// is never trusted, so hako and another auto-responder cannot answer each other forever. Pure.

export interface SenderCheck {
  /** Authentication-Results header values, topmost first. */
  readonly authResults: readonly string[];
  readonly fromDomain: string;
  readonly authservId: string | undefined;
}

/** Removes RFC 5322 comments (`(…)`, nested) from a header value. */
function stripComments(v: string): string {
  let out = '';
  let depth = 0;
  for (const ch of v) {
    if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0) out += ch;
  }
  return out;
}

function aligned(domain: string, fromDomain: string): boolean {
  const d = domain.toLowerCase().replace(/^@/, '');
  return d === fromDomain || (d.includes('.') && fromDomain.endsWith(`.${d}`));
}

/** Whether the From address is vouched for (always true when no authserv-id is configured). */
export function senderVerified(c: SenderCheck): boolean {
  if (c.authservId === undefined) return true;
  const top = c.authResults[0];
  if (top === undefined) return false;
  const [idPart, ...results] = stripComments(top).replace(/\r?\n[ \t]*/g, ' ').split(';');
  const id = idPart!.trim().split(/\s+/)[0]?.toLowerCase();
  if (id !== c.authservId.toLowerCase()) return false;
  const from = c.fromDomain.toLowerCase();
  for (const r of results) {
    const words = r.trim().split(/\s+/);
    const [method, verdict] = (words[0] ?? '').toLowerCase().split('=');
    if (verdict !== 'pass') continue;
    const props = new Map(words.slice(1).map((w) => { const i = w.indexOf('='); return [w.slice(0, i).toLowerCase(), w.slice(i + 1)] as const; }));
    if (method === 'dmarc' && props.get('header.from')?.toLowerCase() === from) return true;
    if (method === 'dkim') {
      const d = props.get('header.d') ?? props.get('header.i')?.split('@').pop();
      if (d && aligned(d, from)) return true;
    }
  }
  return false;
}

/** Whether the message says a program sent it (RFC 3834 Auto-Submitted, or bulk/list/junk Precedence). */
export function isAutomated(headers: { autoSubmitted: string | undefined; precedence: string | undefined }): boolean {
  const auto = headers.autoSubmitted?.trim().toLowerCase();
  if (auto && auto !== 'no') return true;
  return /^(bulk|list|junk)$/i.test(headers.precedence?.trim() ?? '');
}
