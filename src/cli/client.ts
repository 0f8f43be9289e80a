// The one client for a running host's local HTTP API, used by every CLI command that
// talks to the host (chat, status, tasks).

import type { Config } from '../core/config.ts';
import { readToken } from './token.ts';

/** The host did not answer at all (not running, or another port). Its message is a whole sentence naming hako, printed without the "hako: " prefix. */
export class NotRunningError extends Error {
  override name = 'NotRunningError';
}

export interface HostClient {
  readonly base: string;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON request; throws NotRunningError when nothing answers, Error(reason) on a 4xx/5xx. */
  call(path: string, init?: { method?: string; body?: unknown }): Promise<Record<string, unknown>>;
}

export function hostClient(config: Config): HostClient {
  const token = readToken(config);
  const base = `http://127.0.0.1:${config.httpPort}`;
  const headers = { authorization: `Bearer ${token ?? ''}`, 'content-type': 'application/json' };
  return {
    base,
    headers,
    async call(path, init = {}) {
      if (!token) throw new NotRunningError(`hako has not been started with HAKO_HOME=${config.home} (it has no API token yet): start it with: npm start, or hako start`);
      let res: Response;
      try {
        res = await fetch(base + path, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) });
      } catch {
        throw new NotRunningError(`hako is not running at ${base} (start it with: npm start, or hako start; or check HAKO_HTTP_PORT)`);
      }
      const body = await res.json().catch(() => ({})) as Record<string, unknown>;
      if (!res.ok) throw new Error(String(body.error ?? res.statusText));
      return body;
    },
  };
}
