// A real terminal for tests: one tmux server of our own (its socket in a folder of its own),
// one window per `hako` command, whose screen, title and clipboard a test can read.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HAKO = path.resolve(import.meta.dirname, '..', '..', 'bin', 'hako.mjs');
export const TERMINAL_COLUMNS = 100;

/** One tmux server of our own (its socket in a folder of its own), one window per command. */
export class Terminal {
  readonly #dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-tmux-'));
  readonly #env: Record<string, string>;
  #started = false;

  constructor(env: Record<string, string>) {
    this.#env = env;
  }

  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', path.join(this.#dir, 'socket'), '-f', '/dev/null', ...args], { encoding: 'utf8', env: this.#env });
  }

  /**
   * Runs `hako <args>` in a new window named `name`; the window stays after it exits. With
   * `reportExit`, the shell prints `[exit N]` when it ends (tmux's own dead-pane line does
   * not always say the status).
   */
  run(name: string, args: string[], opts: { reportExit?: boolean } = {}): void {
    const quoted = [process.execPath, HAKO, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const command = opts.reportExit ? `${quoted}; echo "[exit $?]"` : `exec ${quoted}`;
    if (this.#started) {
      this.tmux('new-window', '-d', '-t', 'hako', '-n', name, command);
      return;
    }
    // Options are set before any hako output: OSC 52 then becomes a tmux buffer, visible to the test.
    this.tmux('new-session', '-d', '-s', 'hako', '-n', name, '-x', String(TERMINAL_COLUMNS), '-y', '50', command,
      ';', 'set', '-g', 'set-clipboard', 'on', ';', 'set', '-g', 'remain-on-exit', 'on', ';', 'set', '-g', 'history-limit', '5000');
    this.#started = true;
  }

  /** The window's rows as shown, scrollback included; `-e` keeps colours as escape sequences. */
  screen(name: string): string {
    return this.tmux('capture-pane', '-p', '-e', '-S', '-', '-t', `hako:${name}`);
  }

  /** The same with rows that the terminal wrapped joined again, for looking for a text. */
  text(name: string): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-', '-t', `hako:${name}`);
  }

  show(name: string, format: string): string {
    return this.tmux('display-message', '-p', '-t', `hako:${name}`, format).trim();
  }

  /** Waits (bounded) until the window shows what `pred` looks for. */
  async waitFor(name: string, pred: (screen: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen(name);
      if (pred(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`window "${name}" did not show ${what} within ${timeoutMs} ms:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    if (this.#started) this.tmux('kill-server');
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

