// Profiling aid, not part of `npm run bench`: is one commit's warm turn faster than another's?
// On this machine a warm median moves ±15 % from minute to minute, so three rounds of each side
// can show a gain that is not there (bench/README.md, change 15). This runs many short rounds,
// alternating which side goes first, and compares the sides round by round.
//
//   node bench/profile/ab.ts [--rounds N] [--turns N] REV_A REV_B
//
// Each side is a detached git worktree under the system's temporary folder, with its own
// node_modules (`npm ci`) and its own image: its package.json version gets a suffix there,
// so both images exist at once. A round starts a host of each side (as the bench does), runs
// 20 warm-up turns, then N plain and N one-tool turns in turn, and reports their medians and
// the host's CPU per pair. The worktrees and images are removed at the end.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../lib/stats.ts';

interface Round { readonly plain: number; readonly tool: number; readonly hostCpu: number }

const HERE = import.meta.filename;
const { values, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '8' }, turns: { type: 'string', default: '30' }, side: { type: 'string' } },
  allowPositionals: true,
});
const turns = Number(values.turns);

/** One round of one side, in a process of its own (the side's harness starts the side's host). */
async function runSide(dir: string, n: number): Promise<void> {
  const h = await import(path.join(dir, 'bench', 'lib', 'harness.ts')) as typeof import('../lib/harness.ts');
  const { cpuMs } = await import(path.join(dir, 'bench', 'lib', 'proc.ts')) as typeof import('../lib/proc.ts');
  const b = await h.startBench({ env: { HAKO_IDLE_TIMEOUT: '3600' } });
  try {
    const stream = await b.api.events('main');
    try {
      await h.figure1Turns((text) => h.timedTurn(b.api, stream, 'main', text), 20, 0, 0);
      const pid = b.h.child.pid!;
      const cpu0 = cpuMs(pid);
      const plain: number[] = [];
      const tool: number[] = [];
      for (let i = 0; i < n; i++) {
        plain.push(await h.timedTurn(b.api, stream, 'main', `ab ${i}`));
        await h.sleep(h.GAP_MS);
        tool.push(await h.timedTurn(b.api, stream, 'main', `${h.TOOL_MARKER} ab ${i}`));
        await h.sleep(h.GAP_MS);
      }
      const round: Round = { plain: median(plain), tool: median(tool), hostCpu: (cpuMs(pid) - cpu0) / n };
      process.stdout.write(`${JSON.stringify(round)}\n`);
    } finally {
      stream.close();
    }
  } finally {
    await b.close();
  }
}

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** A worktree of `rev` with its own dependencies and image (tag `<version>-ab-<rev>`). */
function prepare(repo: string, rev: string): { dir: string; image: string } {
  const commit = sh('git', ['rev-parse', '--short=10', `${rev}^{commit}`], repo).trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hako-ab-${commit}-`));
  sh('git', ['worktree', 'add', '--detach', dir, commit], repo);
  const pkgFile = path.join(dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { version: string };
  pkg.version = `${pkg.version}-ab-${commit}`;
  fs.writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
  console.error(`ab: ${rev} (${commit}) in ${dir}: npm ci, image hako-agent:${pkg.version}`);
  sh('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  sh(process.execPath, ['scripts/preflight.mjs', 'test'], dir);
  return { dir, image: `hako-agent:${pkg.version}` };
}

function round(dir: string): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HERE, '--side', dir, '--turns', String(turns)], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`a round in ${dir} ended with code ${code}:\n${out}`));
      else resolve(JSON.parse(line) as Round);
    });
  });
}

async function compare(revs: string[], rounds: number): Promise<void> {
  if (revs.length !== 2) throw new Error('usage: node bench/profile/ab.ts [--rounds N] [--turns N] REV_A REV_B');
  if (!Number.isInteger(rounds) || rounds < 2) throw new Error(`--rounds must be a whole number of at least 2, not ${values.rounds}`);
  if (!Number.isInteger(turns) || turns < 5) throw new Error(`--turns must be a whole number of at least 5, not ${values.turns}`);
  const repo = sh('git', ['rev-parse', '--show-toplevel'], path.dirname(HERE)).trim();
  const sides = [prepare(repo, revs[0]!), prepare(repo, revs[1]!)];
  const results: Round[][] = [[], []];
  try {
    for (let r = 0; r < rounds; r++) {
      // Alternate which side goes first, so a drift of the machine does not favour one.
      for (const s of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const x = await round(sides[s]!.dir);
        results[s]!.push(x);
        console.error(`ab: round ${r + 1}/${rounds} ${revs[s]}: no tool ${x.plain.toFixed(2)} ms, one tool call ${x.tool.toFixed(2)} ms, host CPU ${x.hostCpu.toFixed(1)} ms per pair`);
      }
    }
  } finally {
    for (const s of sides) {
      try { sh('git', ['worktree', 'remove', '--force', s.dir], repo); } catch { fs.rmSync(s.dir, { recursive: true, force: true }); }
      try { sh('docker', ['rmi', s.image], repo); } catch { /* already gone */ }
    }
  }
  const [a, b] = results as [Round[], Round[]];
  console.log(`${rounds} rounds of ${turns} plain and ${turns} one-tool turns; medians of the rounds' medians, ms`);
  for (const key of ['plain', 'tool', 'hostCpu'] as const) {
    const diffs = a.map((x, i) => b[i]![key] - x[key]);
    const fewer = diffs.filter((d) => d < 0).length;
    const label = { plain: 'no tool', tool: 'one tool call', hostCpu: 'host CPU per pair' }[key];
    const diff = median(diffs);
    console.log(`  ${label.padEnd(18)} ${revs[0]} ${median(a.map((x) => x[key])).toFixed(2)}  ${revs[1]} ${median(b.map((x) => x[key])).toFixed(2)}  `
      + `paired difference ${diff >= 0 ? '+' : ''}${diff.toFixed(2)} (B lower in ${fewer} of ${rounds} rounds)`);
  }
}

if (values.side) {
  await runSide(values.side, turns);
} else {
  await compare(positionals, Number(values.rounds));
}
