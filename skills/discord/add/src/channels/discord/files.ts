// Fetches a file a user attached (its CDN url from the gateway's MESSAGE_CREATE) into
// memory, never more than the limit: a size Discord reports over the limit is not fetched
// at all, and a download that grows past it is cut off. The caller saves it.

import { humanSize } from '../attachments.ts';

export class TooBig extends Error {
  override name = 'TooBig';
}

export async function fetchAttachment(o: { url: string; size: number; maxBytes: number; signal: AbortSignal }): Promise<Uint8Array> {
  const over = () => new TooBig(`over the ${humanSize(o.maxBytes)} limit (HAKO_ATTACHMENT_MAX_BYTES)`);
  if (o.size > o.maxBytes) throw over();
  const url = new URL(o.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`not an http(s) url (${url.protocol})`);
  let res: Response;
  try {
    // No token: Discord's CDN urls are signed themselves (ex/is/hm), and the bot token must never leave for another host.
    res = await fetch(url, { signal: o.signal, redirect: 'error' });
  } catch (err) {
    throw new Error(`the download failed: ${err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err)}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`the download failed: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    await res.body.cancel();
    throw over();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.length;
    // Leaving the loop by a throw cancels the rest of the download.
    if (total > o.maxBytes) throw over();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
