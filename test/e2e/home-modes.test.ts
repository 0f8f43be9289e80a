// HAKO_HOME is owner-only: after a real host has run real turns (and after it restarted over
// an install that an older version left group/world-readable), nothing in it can be read,
// written or searched by group or others, except the few paths a container user who is not
// the owner must read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

/**
 * The only paths that may keep group/other bits, and why. They apply only when the host runs
 * as root: its containers then run as 1000:1000 (runner.ts containerUser), and a bind mount's
 * contents are checked against the container's uid. Never writable by others.
 */
const EXCEPTIONS: readonly [pattern: string, why: string][] = [
  ['global', 'mounted read-only at /workspace/global in every container'],
  ['global/MEMORY.md', 'the shared memory file every agent reads'],
  ['ipc/*/in', 'mounted read-only as the agent\'s inbox'],
  ['ipc/*/in/*', 'the messages the host writes there for the agent'],
  ['run/*', 'mounted read-only at /run/hako; the agent connects to proxy.sock in it (the socket itself is 0600, owned by the container user)'],
];
/** Folders a container owns: the folder itself is checked; what the agent puts inside is its own. */
const CONTAINER_OWNED = ['groups/*', 'ipc/*/out'];

const like = (rel: string, pattern: string) => {
  const a = rel.split('/');
  const b = pattern.split('/');
  return a.length === b.length && b.every((p, i) => p === '*' || p === a[i]);
};

/** Every path in `home` whose mode lets group or others in, with its mode. */
function openToOthers(home: string): string[] {
  const found: string[] = [];
  const asRoot = process.getuid?.() === 0;
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir)) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, name));
      if (st.isSymbolicLink()) continue;
      const allowed = asRoot && EXCEPTIONS.some(([p]) => like(r, p));
      const bad = allowed ? st.mode & 0o022 : st.mode & 0o077;
      if (bad) found.push(`${r} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory() && !CONTAINER_OWNED.some((p) => like(r, p))) walk(path.join(dir, name), r);
    }
  };
  if (fs.statSync(home).mode & 0o077) found.push(`HAKO_HOME ${(fs.statSync(home).mode & 0o777).toString(8)}`);
  walk(home, '');
  return found;
}

async function turn(h: HakoProcess, text: string): Promise<void> {
  const id = await h.post('main', text);
  const [reply] = await h.waitForReplies('main', id, 1);
  assert.ok(reply, 'the container read its input and answered');
}

test('home modes - after real turns, and after a restart over a world-readable older install, HAKO_HOME is owner-only but for what the containers mount', async (t) => {
  const model = await startModelServer();
  const env = { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL };
  let h = await HakoProcess.start({ env });
  t.after(async () => { await h.stop(); await model.close(); h.cleanup(); });
  await turn(h, 'first');
  assert.deepEqual(openToOthers(h.home), [], 'a fresh install, while running');
  await h.stop();

  // What an older version, run with umask 022, left behind.
  const loosen = (rel: string, mode: number) => fs.chmodSync(path.join(h.home, rel), mode);
  fs.chmodSync(h.home, 0o755);
  for (const rel of ['hako.db', 'logs/hako.log', 'http-token']) loosen(rel, 0o644);
  for (const rel of ['logs', 'ipc', 'ipc/main', 'run', 'groups']) loosen(rel, 0o755);
  fs.mkdirSync(path.join(h.home, 'backups'), { mode: 0o755 });
  fs.writeFileSync(path.join(h.home, 'backups', 'old.tar'), 'x', { mode: 0o666 });
  fs.chmodSync(path.join(h.home, 'backups', 'old.tar'), 0o666);
  // http-token open to others is refused, not quietly fixed: it may have leaked.
  loosen('http-token', 0o600);
  assert.ok(openToOthers(h.home).length >= 9, openToOthers(h.home).join('\n'));

  h = await HakoProcess.start({ env, home: h.home, configDir: h.configDir });
  await turn(h, 'second');
  assert.deepEqual(openToOthers(h.home), [], 'tightened at start; the container still reads its mounts');
  for (const f of ['hako.db', 'hako.db-wal', 'hako.db-shm']) {
    if (fs.existsSync(path.join(h.home, f))) assert.equal(fs.statSync(path.join(h.home, f)).mode & 0o777, 0o600, f);
  }
});
