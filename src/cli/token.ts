// The HTTP API token: HAKO_HTTP_TOKEN if set, else HAKO_HOME/http-token, created once
// with mode 0600 and refused if another user could read it.

import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Config } from '../core/config.ts';
import { homePaths } from '../core/paths.ts';

export function readToken(config: Config): string | undefined {
  if (config.httpToken) return config.httpToken;
  const file = homePaths(config.home).httpToken;
  try {
    const st = fs.statSync(file);
    if ((st.mode & 0o077) !== 0) throw new Error(`${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${file}`);
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function ensureToken(config: Config): string {
  const existing = readToken(config);
  if (existing) return existing;
  const token = randomBytes(24).toString('base64url');
  fs.mkdirSync(config.home, { recursive: true, mode: 0o700 });
  fs.writeFileSync(homePaths(config.home).httpToken, token + '\n', { mode: 0o600, flag: 'wx' });
  return token;
}
