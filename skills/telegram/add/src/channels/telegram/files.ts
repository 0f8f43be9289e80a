// Fetches a file a user sent (getFile, then the Bot API's file route) into memory, never
// more than the limit: a size Telegram reports over the limit is not fetched at all, and a
// download that grows past it is cut off. The caller saves it with saveAttachment.

import type { Api } from 'grammy';
import { apiSignal } from './api-signal.ts';
import { scrub } from './errors.ts';
import { size } from './inbound.ts';

export class TooBig extends Error {
  override name = 'TooBig';
}

export async function fetchFile(opts: {
  api: Api; apiRoot: string; token: string; fileId: string; knownSize?: number; maxBytes: number; signal: AbortSignal;
}): Promise<Uint8Array> {
  const over = () => new TooBig(`over the ${size(opts.maxBytes)} limit (HAKO_ATTACHMENT_MAX_BYTES)`);
  if (opts.knownSize !== undefined && opts.knownSize > opts.maxBytes) throw over();
  const file = await opts.api.getFile(opts.fileId, apiSignal(opts.signal));
  if (file.file_size !== undefined && file.file_size > opts.maxBytes) throw over();
  if (!file.file_path) throw new Error('Telegram gave no download path for it');
  const url = `${opts.apiRoot}/file/bot${opts.token}/${file.file_path.split('/').map(encodeURIComponent).join('/')}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: opts.signal, redirect: 'error' });
  } catch (err) {
    throw new Error(`the download failed: ${scrub(err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err), opts.token)}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`the download failed: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    await res.body.cancel();
    throw over();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.length;
    // Leaving the loop by a throw cancels the rest of the download.
    if (total > opts.maxBytes) throw over();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
