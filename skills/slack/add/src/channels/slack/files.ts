// Downloads a file someone shared in Slack: its url_private_download, fetched with the bot
// token as a Bearer header — only from Slack's own file host (or the origin of
// SLACK_API_URL), so an event can never make hako send the token elsewhere — and never
// more than the limit (checked against the announced size first, then while reading).
// Slack answers a download it will not serve with its sign-in page: anything but a 200
// is a failure, and redirects are not followed.

export class TooBig extends Error {
  override name = 'TooBig';
}

export interface FetchFileOptions {
  readonly url: string;
  readonly token: string;
  /** Where files may come from: https://files.slack.com, or the emulator's origin. */
  readonly origins: readonly string[];
  readonly maxBytes: number;
  readonly knownSize?: number;
  readonly signal: AbortSignal;
}

export async function fetchFile(o: FetchFileOptions): Promise<Uint8Array> {
  const tooBig = () => new TooBig(`over the ${o.maxBytes} bytes limit (HAKO_ATTACHMENT_MAX_BYTES)`);
  if (o.knownSize !== undefined && o.knownSize > o.maxBytes) throw tooBig();
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new Error('the file has no valid download URL');
  }
  if (!o.origins.includes(url.origin)) throw new Error(`the file is on ${url.origin}, not on Slack's file host: not fetched`);
  const res = await fetch(url, { headers: { authorization: `Bearer ${o.token}` }, redirect: 'manual', signal: AbortSignal.any([o.signal, AbortSignal.timeout(120_000)]) });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    throw new Error(`Slack did not serve the file (HTTP ${res.status}${res.status === 302 ? ': the bot token may lack the files:read scope' : ''})`);
  }
  const announced = Number(res.headers.get('content-length'));
  if (Number.isFinite(announced) && announced > o.maxBytes) {
    await res.body.cancel();
    throw tooBig();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.length;
    if (total > o.maxBytes) throw tooBig();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
