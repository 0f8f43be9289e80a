// Splits a long reply into pieces a chat platform takes (Telegram: 4,096 characters), at
// the most natural boundary that fits: a paragraph, else a line, else a sentence or a
// space, else anywhere (never inside a surrogate pair). Only the whitespace at a cut is
// dropped; no other character is lost or reordered.

const BOUNDARIES = [/\n\s*\n/g, /\n/g, /(?<=[.!?。！？])\s+/g, /\s+/g];

/** Pieces of at most `limit` UTF-16 units each; one piece when the text fits. */
export function splitText(text: string, limit: number): string[] {
  if (limit < 2) throw new RangeError(`split limit ${limit} is too small`);
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    const cut = cutAt(rest, limit);
    const piece = rest.slice(0, cut.end).trimEnd();
    if (piece) pieces.push(piece);
    rest = rest.slice(cut.next);
  }
  if (rest.trim() || pieces.length === 0) pieces.push(rest);
  return pieces;
}

/** Where to end the first piece (`end`) and where the next starts (`next`, after the boundary). */
function cutAt(text: string, limit: number): { end: number; next: number } {
  const window = text.slice(0, limit + 1);
  for (const re of BOUNDARIES) {
    let best: { end: number; next: number } | undefined;
    for (const m of window.matchAll(re)) {
      if (m.index > 0 && m.index <= limit) best = { end: m.index, next: m.index + m[0].length };
    }
    // A boundary in the first fifth would leave tiny pieces: try a finer one instead.
    if (best && best.end >= limit / 5) return best;
  }
  const code = text.charCodeAt(limit - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
  return { end, next: end };
}
