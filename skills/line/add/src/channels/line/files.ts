// Downloads one message's content (image, video, audio, file) from LINE's content API
// (api-data.line.me) through the SDK's blob client, never more than `maxBytes`: a size
// LINE announced is checked before the request, the Content-Length before the body, and
// the body is cut off as soon as it passes the limit.

import type { messagingApi } from '@line/bot-sdk';

export class TooBig extends Error {
  override name = 'TooBig';
}

export async function fetchContent(o: { blob: Pick<messagingApi.MessagingApiBlobClient, 'getMessageContentWithHttpInfo'>; messageId: string; maxBytes: number; knownSize?: number }): Promise<{ data: Buffer; mime?: string }> {
  const over = () => new TooBig(`over the ${o.maxBytes} bytes limit (HAKO_ATTACHMENT_MAX_BYTES)`);
  if (o.knownSize !== undefined && o.knownSize > o.maxBytes) throw over();
  const { httpResponse, body } = await o.blob.getMessageContentWithHttpInfo(o.messageId);
  const declared = Number(httpResponse.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    body.destroy();
    throw over();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > o.maxBytes) {
      body.destroy();
      throw over();
    }
    chunks.push(chunk as Buffer);
  }
  const mime = httpResponse.headers.get('content-type') ?? undefined;
  return { data: Buffer.concat(chunks), ...(mime ? { mime } : {}) };
}
