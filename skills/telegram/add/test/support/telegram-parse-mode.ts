// The Bot API's three parse modes (MarkdownV2, Markdown, HTML) as the server applies them,
// for the Telegram emulator: text in, visible text and entities out, or the server's own
// refusal ("Character '.' is reserved and must be escaped with the preceding '\'"). The
// MarkdownV2 and Markdown rules follow tdlib's parser (td/telegram/MessageEntity.cpp); the
// HTML rules cover the tags the Bot API documents. Offsets are UTF-16 units, as the API's.

export interface Entity {
  type: string;
  offset: number;
  length: number;
  url?: string;
  language?: string;
}

export type Parsed = { readonly text: string; readonly entities: Entity[] } | { readonly error: string };

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\f';

/** tdlib's check_url, simplified: a URL it would accept, normalized, or undefined. */
export function checkUrl(raw: string): string | undefined {
  const url = raw.trim();
  if (!url || /[\s<>"]/.test(url)) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:/i.test(url) ? url : `http://${url}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    return undefined;
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  if (scheme === 'tg' || scheme === 'ton' || scheme === 'mailto') return withScheme;
  if (scheme !== 'http' && scheme !== 'https') return undefined;
  if (!u.hostname.includes('.') && u.hostname !== 'localhost') return undefined;
  return withScheme;
}

function sortEntities(entities: Entity[]): Entity[] {
  return entities.sort((a, b) => a.offset - b.offset || b.length - a.length);
}

// tdlib names entity types this way in its error messages.
const TD_NAME: Record<string, string> = {
  bold: 'Bold', italic: 'Italic', underline: 'Underline', strikethrough: 'Strikethrough', spoiler: 'Spoiler',
  code: 'Code', pre: 'Pre', text_link: 'TextUrl', blockquote: 'BlockQuote',
};

/** MarkdownV2, as td's do_parse_markdown_v2 (plus spoilers and line-start block quotes). */
export function parseMarkdownV2(src: string): Parsed {
  let out = '';
  const entities: Entity[] = [];
  const stack: { type: string; offset: number; byteAt: number; beginPos: number; language?: string }[] = [];
  let quote: number | undefined; // offset in `out` where an open block quote began
  const closeQuote = () => {
    if (quote !== undefined && out.length > quote) entities.push({ type: 'blockquote', offset: quote, length: out.length - quote });
    quote = undefined;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    const next = src.charCodeAt(i + 1);
    if (c === '\\' && next > 0 && next <= 126) {
      i++;
      out += src[i];
      continue;
    }
    const top = stack.at(-1);
    const lineStart = i === 0 || src[i - 1] === '\n';
    if (c === '\n' && quote !== undefined && stack.length === 0 && src[i + 1] !== '>') {
      closeQuote();
    }
    if (c === '>' && lineStart && stack.length === 0) {
      if (quote === undefined) quote = out.length;
      continue;
    }
    const reserved = top && (top.type === 'code' || top.type === 'pre') ? '`' : '_*[]()~`>#+-=|{}.!';
    if (!reserved.includes(c)) {
      out += c;
      continue;
    }
    let isEnd = false;
    if (top) {
      switch (top.type) {
        case 'bold': isEnd = c === '*'; break;
        case 'italic': isEnd = c === '_' && src[i + 1] !== '_'; break;
        case 'code': isEnd = c === '`'; break;
        case 'pre': isEnd = c === '`' && src[i + 1] === '`' && src[i + 2] === '`'; break;
        case 'text_link': isEnd = c === ']'; break;
        case 'underline': isEnd = c === '_' && src[i + 1] === '_'; break;
        case 'strikethrough': isEnd = c === '~'; break;
        case 'spoiler': isEnd = c === '|' && src[i + 1] === '|'; break;
      }
    }
    if (!isEnd) {
      const byteAt = bytes(src.slice(0, i));
      let type: string;
      let language: string | undefined;
      switch (c) {
        case '_':
          if (src[i + 1] === '_') { type = 'underline'; i++; } else type = 'italic';
          break;
        case '*': type = 'bold'; break;
        case '~': type = 'strikethrough'; break;
        case '[': type = 'text_link'; break;
        case '|':
          if (src[i + 1] !== '|') return { error: `Character '|' is reserved and must be escaped with the preceding '\\'` };
          type = 'spoiler';
          i++;
          break;
        case '`':
          if (src[i + 1] === '`' && src[i + 2] === '`') {
            i += 3;
            type = 'pre';
            let end = i;
            while (end < src.length && !isSpace(src[end]) && src[end] !== '`') end++;
            if (i !== end && end < src.length && src[end] !== '`') {
              language = src.slice(i, end);
              i = end;
            }
            if (src[i] === '\n' || src[i] === '\r') {
              i += (src[i + 1] === '\n' || src[i + 1] === '\r') && src[i] !== src[i + 1] ? 2 : 1;
            }
            i--;
          } else type = 'code';
          break;
        default:
          return { error: `Character '${c}' is reserved and must be escaped with the preceding '\\'` };
      }
      stack.push({ type, offset: out.length, byteAt, beginPos: out.length, ...(language ? { language } : {}) });
      continue;
    }
    const open = stack.pop()!;
    let skip = out.length === open.offset;
    let url: string | undefined;
    switch (open.type) {
      case 'underline': case 'spoiler': i++; break;
      case 'pre': i += 2; break;
      case 'text_link': {
        let raw = '';
        if (src[i + 1] !== '(') raw = out.slice(open.beginPos);
        else {
          i += 2;
          const urlBegin = i;
          while (i < src.length && src[i] !== ')') {
            const n = src.charCodeAt(i + 1);
            if (src[i] === '\\' && n > 0 && n <= 126) { raw += src[i + 1]; i += 2; continue; }
            raw += src[i++];
          }
          if (src[i] !== ')') return { error: `Can't find end of a URL at byte offset ${bytes(src.slice(0, urlBegin))}` };
        }
        url = checkUrl(raw);
        if (url === undefined) skip = true;
        break;
      }
    }
    if (!skip) {
      const e: Entity = { type: open.type, offset: open.offset, length: out.length - open.offset };
      if (url !== undefined) e.url = url;
      if (open.language) e.language = open.language;
      entities.push(e);
    }
  }
  if (stack.length > 0) {
    const open = stack.at(-1)!;
    return { error: `Can't find end of ${open.type === 'pre' && open.language ? 'PreCode' : TD_NAME[open.type]} entity at byte offset ${open.byteAt}` };
  }
  closeQuote();
  return { text: out, entities: sortEntities(entities) };
}

/** The legacy Markdown mode, as td's parse_markdown. */
export function parseMarkdown(src: string): Parsed {
  let out = '';
  const entities: Entity[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\' && '_*`['.includes(src[i + 1] ?? '\0')) {
      i++;
      out += src[i];
      continue;
    }
    if (!'_*`['.includes(c)) {
      out += c;
      continue;
    }
    const begin = i;
    const endChar = c === '[' ? ']' : c;
    let isPre = false;
    let language = '';
    i++;
    if (c === '`' && src[i] === '`' && src[i + 1] === '`') {
      i += 2;
      isPre = true;
      let end = i;
      while (end < src.length && !isSpace(src[end]) && src[end] !== '`') end++;
      if (i !== end && end < src.length && src[end] !== '`') {
        language = src.slice(i, end);
        i = end;
      }
      if (src[i] === '\n' || src[i] === '\r') i += (src[i + 1] === '\n' || src[i + 1] === '\r') && src[i] !== src[i + 1] ? 2 : 1;
    }
    const offset = out.length;
    while (i < src.length && (src[i] !== endChar || (isPre && !(src[i + 1] === '`' && src[i + 2] === '`')))) out += src[i++];
    if (i >= src.length) return { error: `Can't find end of the entity starting at byte offset ${bytes(src.slice(0, begin))}` };
    if (out.length !== offset) {
      const length = out.length - offset;
      if (c === '_') entities.push({ type: 'italic', offset, length });
      else if (c === '*') entities.push({ type: 'bold', offset, length });
      else if (c === '`') entities.push(isPre ? { type: 'pre', offset, length, ...(language ? { language } : {}) } : { type: 'code', offset, length });
      else {
        let raw: string;
        if (src[i + 1] !== '(') raw = src.slice(begin + 1, i);
        else {
          i += 2;
          raw = '';
          while (i < src.length && src[i] !== ')') raw += src[i++];
        }
        const url = checkUrl(raw);
        if (url !== undefined) entities.push({ type: 'text_link', offset, length, url });
      }
    }
    if (isPre) i += 2;
  }
  return { text: out, entities: sortEntities(entities) };
}

const HTML_TAGS: Record<string, string> = {
  b: 'bold', strong: 'bold', i: 'italic', em: 'italic', u: 'underline', ins: 'underline',
  s: 'strikethrough', strike: 'strikethrough', del: 'strikethrough', 'tg-spoiler': 'spoiler',
  span: 'spoiler', a: 'text_link', code: 'code', pre: 'pre', blockquote: 'blockquote',
};
const HTML_NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };

/** The HTML mode: the documented tags, the four named entities and numeric ones. */
export function parseHtml(src: string): Parsed {
  let out = '';
  const entities: Entity[] = [];
  const stack: { tag: string; type: string; offset: number; url?: string; language?: string }[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '&') {
      const m = /^&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/i.exec(src.slice(i, i + 12));
      if (m) {
        const name = m[1]!;
        const ch = name.startsWith('#x') || name.startsWith('#X') ? String.fromCodePoint(parseInt(name.slice(2), 16))
          : name.startsWith('#') ? String.fromCodePoint(parseInt(name.slice(1), 10)) : HTML_NAMED[name];
        if (ch !== undefined) {
          out += ch;
          i += m[0].length - 1;
          continue;
        }
      }
      out += c;
      continue;
    }
    if (c !== '<') {
      out += c;
      continue;
    }
    const at = bytes(src.slice(0, i));
    const close = src.indexOf('>', i);
    if (close < 0) return { error: `Unclosed start tag at byte offset ${at}` };
    const raw = src.slice(i + 1, close);
    i = close;
    if (raw.startsWith('/')) {
      const name = raw.slice(1).trim().toLowerCase();
      const open = stack.pop();
      if (!open) return { error: `Unexpected end tag at byte offset ${at}` };
      if (name !== open.tag) return { error: `Unmatched end tag at byte offset ${at}, expected "</${open.tag}>", found "</${name}>"` };
      if (out.length > open.offset) {
        const e: Entity = { type: open.type, offset: open.offset, length: out.length - open.offset };
        if (open.url) e.url = open.url;
        if (open.language) e.language = open.language;
        if (open.type !== 'text_link' || open.url) entities.push(e);
      }
      continue;
    }
    const m = /^([a-z-]+)\s*(.*)$/is.exec(raw);
    const tag = m?.[1]?.toLowerCase() ?? '';
    const type = HTML_TAGS[tag];
    if (!type) return { error: `Unsupported start tag "${tag}" at byte offset ${at}` };
    const attrs = Object.fromEntries([...(m?.[2] ?? '').matchAll(/([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))/gi)].map((a) => [a[1]!.toLowerCase(), a[2] ?? a[3] ?? a[4] ?? '']));
    if (tag === 'span' && attrs.class !== 'tg-spoiler') return { error: `Tag "span" must have class "tg-spoiler" at byte offset ${at}` };
    if (tag === 'code' && stack.at(-1)?.type === 'pre') {
      const lang = /^language-(.+)$/.exec(attrs.class ?? '')?.[1];
      if (lang) stack.at(-1)!.language = lang;
    }
    const entry: (typeof stack)[number] = { tag, type, offset: out.length };
    if (tag === 'a') {
      const url = checkUrl(attrs.href ?? '');
      if (url) entry.url = url;
    }
    stack.push(entry);
  }
  if (stack.length > 0) return { error: `Can't find end tag corresponding to start tag "${stack.at(-1)!.tag}"` };
  return { text: out, entities: sortEntities(entities.filter((e) => !(e.type === 'code' && entities.some((p) => p.type === 'pre' && p.offset === e.offset && p.length === e.length)))) };
}
