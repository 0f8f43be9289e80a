// The linked device's auth state on disk: Baileys' multi-file format, in a folder only the
// owner can enter (0700) with every file 0600. Baileys writes its files with the process
// umask (usually 0644), so each write it makes is followed by a chmod; the folder's mode
// keeps them private in between. Invariant: the folder is never a link (refused).

import fs from 'node:fs';
import path from 'node:path';
import type { AuthenticationState, SignalDataSet } from 'baileys';

export type UseAuthState = (folder: string) => Promise<{ state: AuthenticationState; saveCreds: () => Promise<void> }>;

/** Creates the folder 0700 (or tightens it) and every file in it to 0600; throws when it is a link or not a folder. */
export function prepareAuthDir(dir: string): void {
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`whatsapp: ${dir} is not a plain folder (a link or a file): move it away; hako keeps the WhatsApp Web login there`);
  fs.chmodSync(dir, 0o700);
  for (const name of fs.readdirSync(dir)) tighten(path.join(dir, name));
}

function tighten(file: string): void {
  try {
    const st = fs.lstatSync(file);
    if (st.isFile() && (st.mode & 0o777) !== 0o600) fs.chmodSync(file, 0o600);
  } catch {
    // Removed meanwhile (Baileys deletes used keys): nothing to tighten.
  }
}

/** Baileys' file name for a key (the same rule as its useMultiFileAuthState). */
function fileName(name: string): string {
  return name.replace(/\//g, '__').replace(/:/g, '-');
}

/** Baileys' auth state over `dir`, with every file it writes made 0600. */
export async function loadAuthState(dir: string, useAuthState: UseAuthState): Promise<{ state: AuthenticationState; saveCreds: () => Promise<void> }> {
  prepareAuthDir(dir);
  const { state, saveCreds } = await useAuthState(dir);
  const keys = state.keys;
  return {
    state: {
      creds: state.creds,
      keys: {
        get: (type, ids) => keys.get(type, ids),
        set: async (data: SignalDataSet) => {
          await keys.set(data);
          for (const category of Object.keys(data) as (keyof SignalDataSet)[]) {
            for (const id of Object.keys(data[category] ?? {})) tighten(path.join(dir, fileName(`${category}-${id}.json`)));
          }
        },
        ...(keys.clear ? { clear: () => keys.clear!() } : {}),
      },
    },
    saveCreds: async () => {
      await saveCreds();
      tighten(path.join(dir, 'creds.json'));
    },
  };
}
