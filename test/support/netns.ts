// A test host of the project's own: a network namespace joined to this machine by a veth pair,
// with addresses from the documentation range 198.51.100.0/24 (which hako's egress treats as
// public). Lets a test run a server on "another machine" that the host proxy may reach, and
// gives this machine an interface address of its own that is not loopback. Root only.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface TestHost {
  /** The namespace's address: a remote host as far as hako can tell. */
  readonly remote: string;
  /** This machine's own address on the link. */
  readonly local: string;
  /** Runs a command inside the namespace; killed by close(). */
  spawn(command: string, args: readonly string[]): ChildProcess;
  close(): void;
}

/** Why test hosts cannot be made here, or null when they can. */
export function testHostProblem(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'the ip command (iproute2) is not installed';
  }
}

export function createTestHost(subnet = 1 + (randomBytes(1)[0]! % 250)): TestHost {
  const id = randomBytes(3).toString('hex');
  const ns = `hako-t-${id}`;
  const outside = `hk${id}a`;
  const inside = `hk${id}b`;
  // A /30 per host, so parallel test files never share an address.
  const base = subnet * 4 % 256;
  const local = `198.51.100.${base + 1}`;
  const remote = `198.51.100.${base + 2}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const children: ChildProcess[] = [];
  ip('netns', 'add', ns);
  try {
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', ns);
    ip('addr', 'add', `${local}/30`, 'dev', outside);
    ip('link', 'set', outside, 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${remote}/30`, 'dev', inside);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', inside, 'up');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    try { ip('link', 'del', outside); } catch { /* not created */ }
    ip('netns', 'del', ns);
    throw err;
  }
  return {
    remote, local,
    spawn(command, args) {
      const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      return child;
    },
    close() {
      for (const c of children) c.kill('SIGKILL');
      try { ip('link', 'del', outside); } catch { /* gone with the namespace */ }
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    },
  };
}
