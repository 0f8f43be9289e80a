// A real Dovecot IMAP server for the e-mail tests: started as a child process on a free
// loopback port with a configuration of its own in a temporary folder (passwd-file users,
// maildirs in that folder, plain IMAP on 127.0.0.1 only) — never the system's
// configuration, never systemd. `stop` ends it and removes the folder.
// Run as root, its internal and login processes drop to the Debian package's `dovecot` and
// `dovenull` users and the mail processes to `dovecot`'s uid (Dovecot refuses uid 0 for
// mail); run as another user, everything runs as that user.
// Messages are delivered with IMAP APPEND through imapflow (`deliver`), as a mail server
// would file them; XOAUTH2 is offered and checks the token as the user's password.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { ImapFlow } from 'imapflow';
import { freePort } from './hako.ts';

export interface DovecotUser {
  readonly user: string;
  readonly password: string;
}

const DOVECOT = ['/usr/sbin/dovecot', '/usr/local/sbin/dovecot'].find((p) => fs.existsSync(p));

/** Why Dovecot cannot run here (for `test(..., { skip })`), or undefined when it can. */
export function dovecotMissing(): string | undefined {
  return DOVECOT ? undefined : 'Dovecot is not installed (apt-get install dovecot-imapd)';
}

function idOf(kind: '-u' | '-g', user: string): number {
  return Number(execFileSync('id', [kind, user], { encoding: 'utf8' }).trim());
}

export class Dovecot {
  readonly port: number;
  readonly dir: string;
  readonly #child: ChildProcess;
  readonly #users: Map<string, string>;

  private constructor(init: { port: number; dir: string; child: ChildProcess; users: Map<string, string> }) {
    this.port = init.port;
    this.dir = init.dir;
    this.#child = init.child;
    this.#users = init.users;
  }

  /** Starts Dovecot with these users and resolves once it accepts connections. */
  static async start(opts: { users: readonly DovecotUser[] }): Promise<Dovecot> {
    if (!DOVECOT) throw new Error(dovecotMissing());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-dovecot-'));
    fs.chmodSync(dir, 0o755); // the mail processes run as another user and must reach mail/
    const root = process.getuid?.() === 0;
    const me = os.userInfo().username;
    const internal = root ? 'dovecot' : me;
    const login = root ? 'dovenull' : me;
    const uid = root ? idOf('-u', 'dovecot') : process.getuid!();
    const gid = root ? idOf('-g', 'dovecot') : process.getgid!();
    const mail = path.join(dir, 'mail');
    for (const d of ['run', 'state', 'mail']) fs.mkdirSync(path.join(dir, d), { mode: 0o755 });
    fs.chownSync(mail, uid, gid);
    const users = new Map(opts.users.map((u) => [u.user, u.password]));
    // passwd-file: user:password:uid:gid:gecos:home:shell:extra
    fs.writeFileSync(path.join(dir, 'users'), opts.users.map((u) => `${u.user}:{PLAIN}${u.password}:${uid}:${gid}::${path.join(mail, u.user)}::\n`).join(''), { mode: 0o644 });
    const port = await freePort();
    const conf = path.join(dir, 'dovecot.conf');
    fs.writeFileSync(conf, `# written by test/support/dovecot.ts
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = hako-test-${port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
# A refused login answers at once (Dovecot's anvil still slows the next logins from 127.0.0.1).
auth_failure_delay = 0
log_path = ${dir}/dovecot.log
default_internal_user = ${internal}
default_login_user = ${login}
first_valid_uid = 1
mail_location = maildir:${mail}/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = passwd-file
  args = username_format=%u ${dir}/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
`);
    const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    // A test process that ends without stop() (a failed before hook, process.exit) takes its Dovecot along.
    const orphan = () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* Dovecot may still be writing its log */ }
    };
    process.once('exit', orphan);
    child.once('exit', () => process.off('exit', orphan));
    let output = '';
    child.stdout!.on('data', (c) => { output += c; });
    child.stderr!.on('data', (c) => { output += c; });
    const exited = once(child, 'exit');
    const ready = (async () => {
      // Dovecot binds its listener a moment after it starts; a connection is the only sure sign.
      for (;;) {
        if (child.exitCode !== null) return;
        if (await canConnect(port)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await Promise.race([ready, exited]);
    if (child.exitCode !== null) {
      const log = fs.existsSync(path.join(dir, 'dovecot.log')) ? fs.readFileSync(path.join(dir, 'dovecot.log'), 'utf8') : '';
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`dovecot exited with ${child.exitCode} before it took connections:\n${output}${log}`);
    }
    return new Dovecot({ port, dir, child, users });
  }

  /** An imapflow client logged in as `user` (the test's own view of the mailbox). */
  async client(user: string): Promise<ImapFlow> {
    const pass = this.#users.get(user);
    if (pass === undefined) throw new Error(`dovecot: no user ${user}`);
    const c = new ImapFlow({ host: '127.0.0.1', port: this.port, secure: false, auth: { user, pass }, logger: false });
    c.on('error', () => { /* a test client's connection errors surface in its commands */ });
    await c.connect();
    return c;
  }

  /** Files a raw message into `user`'s INBOX (IMAP APPEND, unseen); returns its UID. */
  async deliver(user: string, raw: string | Buffer, flags: string[] = []): Promise<number> {
    const c = await this.client(user);
    try {
      const r = await c.append('INBOX', raw, flags);
      if (!r || typeof r.uid !== 'number') throw new Error('dovecot: APPEND returned no UID');
      return r.uid;
    } finally {
      await c.logout();
    }
  }

  /** The flags of every message in `user`'s INBOX by UID, and its UIDVALIDITY. */
  async inbox(user: string): Promise<{ uidValidity: bigint; messages: { uid: number; seen: boolean; messageId: string | undefined }[] }> {
    const c = await this.client(user);
    try {
      const lock = await c.getMailboxLock('INBOX');
      try {
        const mailbox = c.mailbox;
        if (!mailbox) throw new Error('dovecot: INBOX not selected');
        const messages: { uid: number; seen: boolean; messageId: string | undefined }[] = [];
        if (mailbox.exists > 0) {
          for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true })) {
            messages.push({ uid: m.uid, seen: m.flags?.has('\\Seen') ?? false, messageId: m.envelope?.messageId });
          }
        }
        return { uidValidity: mailbox.uidValidity, messages };
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  }

  /**
   * Gives `user`'s INBOX a new UIDVALIDITY (as a server does after its index is rebuilt):
   * the maildir's UID list is removed, so Dovecot numbers the same messages afresh.
   */
  async resetUidValidity(user: string): Promise<void> {
    const box = path.join(this.dir, 'mail', user);
    for (const f of ['dovecot-uidlist', 'dovecot.index', 'dovecot.index.log', 'dovecot.index.cache', 'dovecot.index.log.2']) {
      fs.rmSync(path.join(box, f), { force: true });
    }
  }

  /** Ends every IMAP connection of `user` (doveadm kick), as a server restart or a network cut would. */
  kick(user: string): void {
    execFileSync(path.join(path.dirname(DOVECOT!), '..', 'bin', 'doveadm'), ['-c', path.join(this.dir, 'dovecot.conf'), 'kick', user], { stdio: 'ignore' });
  }

  /** Dovecot's own log, for a failing test's message. */
  log(): string {
    const f = path.join(this.dir, 'dovecot.log');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  }

  /** Stops Dovecot (SIGTERM to its master, which ends every child) and removes its folder. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = once(this.#child, 'exit');
      this.#child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
