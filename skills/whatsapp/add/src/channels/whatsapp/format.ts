// Markdown (what the model writes) → WhatsApp's own markup: *bold*, _italic_, ~strike~,
// ```monospace```, "- " lists and "> " quotes; links become "text (url)" and headings bold
// lines. Used by both ways of the skill (Cloud API and WhatsApp Web).
// Invariants: code is never reformatted (its text stays byte for byte, only its fences
// change); a URL is never touched by the emphasis rules; text without Markdown comes back
// unchanged; WhatsApp has no escape character, so a marker that does not pair stays as it is.

/** Private-use characters stand in for what is already converted, so no later rule sees it. */
const SLOT = '\uE000';
const SLOT_END = '\uE001';
const BOLD = '\uE002';
const ITALIC = '\uE003';
const STRIKE = '\uE004';

const FENCE = /^([ \t]*)(`{3,}|~{3,})[^\n]*\n([\s\S]*?)\n?[ \t]*\2[ \t]*$/gm;
const INLINE_CODE = /(`+)([^`\n]|[^`\n][\s\S]*?[^`\n])\1(?!`)/g;
const LINK = /(!?)\[([^\]\n]*)\]\((<[^>\n]*>|[^)\s]+)(?:\s+"[^"\n]*")?\)/g;
const AUTOLINK = /<((?:https?|mailto):[^>\s]+)>/g;
const BARE_URL = /\b(?:https?:\/\/|www\.)[^\s<>()]+(?:\([^\s<>()]*\)[^\s<>()]*)*/g;

export function markdownToWhatsApp(md: string): string {
  const slots: string[] = [];
  const keep = (text: string) => `${SLOT}${slots.push(text) - 1}${SLOT_END}`;
  let s = md.replace(/\r\n?/g, '\n');
  s = s.replace(FENCE, (_m, indent: string, _fence: string, body: string) => `${indent}${keep(`\`\`\`${body}\`\`\``)}`);
  s = s.replace(INLINE_CODE, (_m, _ticks: string, body: string) => keep(`\`\`\`${body.trim() || body}\`\`\``));
  s = s.replace(LINK, (_m, _bang: string, text: string, rawUrl: string) => {
    const url = rawUrl.replace(/^<|>$/g, '');
    const label = text.trim();
    if (!label || label === url || `mailto:${label}` === url) return keep(url);
    return `${label} (${keep(url)})`;
  });
  s = s.replace(AUTOLINK, (_m, url: string) => keep(url));
  s = s.replace(BARE_URL, (url) => keep(url));
  s = s.split('\n').map(line).join('\n');
  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, `${BOLD}$1${BOLD}`);
  s = s.replace(/(?<![\p{L}\p{N}_])__(?=\S)([\s\S]*?\S)__(?![\p{L}\p{N}_])/gu, `${BOLD}$1${BOLD}`);
  s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, `${STRIKE}$1${STRIKE}`);
  s = s.replace(/(?<![*\p{L}\p{N}])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![*\p{L}\p{N}])/gu, `${ITALIC}$1${ITALIC}`);
  s = s.replace(/(?<![\p{L}\p{N}_])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\p{L}\p{N}_])/gu, `${ITALIC}$1${ITALIC}`);
  s = s.replaceAll(BOLD, '*').replaceAll(ITALIC, '_').replaceAll(STRIKE, '~');
  return s.replace(new RegExp(`${SLOT}(\\d+)${SLOT_END}`, 'g'), (_m, i: string) => slots[Number(i)]!);
}

/** One line's block syntax: a heading becomes a bold line, a "* " or "+ " item a "- " item, a rule a line of dashes. */
function line(l: string): string {
  const heading = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(l);
  if (heading) {
    // Emphasis inside a heading would close the bold early: the whole line is bold instead.
    const text = heading[1]!.replace(/\*\*|__/g, '');
    return text ? `${BOLD}${text}${BOLD}` : '';
  }
  if (/^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$/.test(l)) return '———';
  return l.replace(/^(\s*)[*+][ \t]+/, '$1- ');
}
