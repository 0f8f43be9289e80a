// The web_fetch tool: one HTTP(S) request through the group's proxy in absolute form, so
// the host decides it (allowlist, address checks, audit) and, for https URLs, speaks TLS
// upstream itself — the only way a secret placeholder in a header is replaced by its value.
// Results are text: HTML is reduced to readable text; everything is bounded.

import { http } from '../builtins.ts';
import { fail, ok, type ToolHandler } from './types.ts';

const MAX_RESULT_CHARS = 50_000;
const MAX_BODY_BYTES = 5 * 1024 * 1024;
const TIMEOUT_MS = 60_000;

/** Readable text from HTML: no scripts, styles or tags, entities for the common cases. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|noscript)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<br\s*\/?>|<\/(p|div|li|h[1-6]|tr)>/gi, '\n')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/[ \t]+/g, ' ')
    .replace(/\s*\n\s*/g, '\n')
    .trim();
}

export const webFetchTool: ToolHandler = async (args, ctx, signal) => {
  let url: URL;
  try {
    url = new URL(String(args.url));
  } catch {
    return fail(`"${String(args.url).slice(0, 200)}" is not a URL; give a full http:// or https:// address`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('only http:// and https:// URLs can be fetched');
  const method = String(args.method ?? 'GET').toUpperCase();
  if (!/^(GET|HEAD|POST|PUT|PATCH|DELETE)$/.test(method)) return fail(`method ${method} is not supported`);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries((args.headers ?? {}) as Record<string, unknown>)) headers[k.toLowerCase()] = String(v);
  const body = args.body === undefined ? undefined : String(args.body);
  const proxy = new URL(ctx.proxy ?? process.env.HTTP_PROXY ?? 'http://127.0.0.1:3128');
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]);
  return new Promise((resolve) => {
    const req = http.request({
      host: proxy.hostname, port: Number(proxy.port || 80), method, path: url.href, signal: deadline,
      headers: { ...headers, host: url.host, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const type = String(res.headers['content-type'] ?? '');
        if (res.statusCode === 403 && /^hako refused/.test(raw)) return resolve(fail(raw.trim()));
        const text = /html/i.test(type) ? htmlToText(raw) : raw;
        const cut = text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}\n[… ${text.length - MAX_RESULT_CHARS} more characters cut]` : text;
        const head = `HTTP ${res.statusCode} ${type || '(no content type)'}${size > MAX_BODY_BYTES ? ` (only the first ${MAX_BODY_BYTES} bytes read)` : ''}`;
        resolve((res.statusCode ?? 500) < 400 ? ok(`${head}\n\n${cut}`) : fail(`${head}\n\n${cut.slice(0, 4000)}`));
      });
      res.on('error', (err) => resolve(fail(`the response broke off: ${err.message}`)));
    });
    req.on('error', (err) => resolve(fail(deadline.aborted ? `no answer within ${TIMEOUT_MS / 1000} s` : `could not fetch: ${err.message}`)));
    req.end(body);
  });
};
