// Profiling aid, not part of `npm run bench`: the CPU each process spends *on a warm turn's
// path* (from the POST to the reply's event), against the CPU the machine had in that time.
// It tells whether a turn waits on work or on wake-ups: when the busy cores add up to about
// one, the path is serial and any process's CPU on it is latency.
//
// Runs figure 1's warm-up, then N plain and N one-tool turns, alternating, while
// `perf record -a` samples every CPU (needs root and perf: Debian's linux-perf), then sorts
// each sample into the turn it fell in (or the gap after it) by the process it hit: the
// host, the group's container (the processes of its cgroup), the bench (client and
// scripted model), and everything else by its name (dockerd, containerd-shim, V8's
// workers, kernel threads). Sampling costs time: at 1999 Hz turns ran about 3 ms slower here.
//
//   node bench/profile/on-path-cpu.ts [--turns N] [--hz F]   (default 60 turns each, 1999 Hz)

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { figure1Turns, GAP_MS, sleep, startBench, timedTurn, TOOL_MARKER } from '../lib/harness.ts';
import { median } from '../lib/stats.ts';
import { cgroupProcsFile } from '../../src/runtime/strays.ts';
import { containerIds } from '../footprint.ts';

const exec = promisify(execFile);

interface Window { readonly tool: boolean; readonly from: number; readonly to: number }

const { values } = parseArgs({ options: { turns: { type: 'string', default: '60' }, hz: { type: 'string', default: '1999' } } });
const turns = Number(values.turns);
const hz = Number(values.hz);
if (!Number.isInteger(turns) || turns < 10) throw new Error(`--turns must be a whole number ≥ 10, got ${values.turns}`);
if (!Number.isInteger(hz) || hz < 100 || hz > 20000) throw new Error(`--hz must be a whole number from 100 to 20000, got ${values.hz}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-on-path-'));
const data = path.join(dir, 'perf.data');
const b = await startBench({ env: { HAKO_IDLE_TIMEOUT: '3600' } });
const windows: Window[] = [];
/** The group container's processes (host pids), read while it runs. */
const containerPids = new Set<number>();
try {
  const stream = await b.api.events('main');
  await figure1Turns((text) => timedTurn(b.api, stream, 'main', text), 20, 0, 0);
  // perf's CLOCK_MONOTONIC is process.hrtime's clock, so samples and turns share one time line.
  const perf = spawn('perf', ['record', '-a', '-k', 'CLOCK_MONOTONIC', '-F', String(hz), '-o', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  let perfErr = '';
  perf.stderr.on('data', (c: Buffer) => { perfErr += c.toString(); });
  const perfExit = new Promise<void>((resolve) => perf.on('exit', () => resolve()));
  await sleep(500); // perf's start-up
  if (perf.exitCode !== null) throw new Error(`perf record exited at once (is linux-perf installed, and are we root?): ${perfErr.trim()}`);
  for (let i = 0; i < 2 * turns; i++) {
    const tool = i % 2 === 1;
    const from = Number(process.hrtime.bigint()) / 1e6;
    const ms = await timedTurn(b.api, stream, 'main', tool ? `${TOOL_MARKER} sample ${i}` : `sample ${i}`);
    windows.push({ tool, from, to: from + ms });
    await sleep(GAP_MS);
  }
  const ids = await containerIds(b.h.home);
  if (ids.length !== 1) throw new Error(`expected the one container of group main, found ${ids.length}`);
  const id = ids[0]!;
  const initPid = Number((await exec('docker', ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
  const procs = cgroupProcsFile(initPid, id);
  if (!procs) throw new Error(`cannot find the cgroup of container ${id.slice(0, 12)} (pid ${initPid})`);
  for (const pid of fs.readFileSync(procs, 'utf8').split('\n').filter(Boolean)) containerPids.add(Number(pid));
  perf.kill('SIGINT');
  await perfExit; // it exits by the signal, after writing its data
  if (!perfErr.includes('Captured and wrote')) throw new Error(`perf record failed: ${perfErr.trim()}`);
  stream.close();
} finally {
  await b.close();
}

// ---- sort the samples -------------------------------------------------------------------------

const { stdout } = await exec('perf', ['script', '-i', data, '-F', 'comm,pid,time'], { maxBuffer: 1 << 30 });
fs.rmSync(dir, { recursive: true, force: true });
const hostPid = b.h.child.pid!;
const whose = (pid: number, comm: string): string => {
  if (pid === 0) return 'idle';
  if (pid === hostPid) return 'host';
  if (pid === process.pid) return 'bench (client + model)';
  if (containerPids.has(pid)) return 'container (agent)';
  return comm.replace(/[-/:]\d+.*$/, '');
};
type Tally = Map<string, number>;
const onPath = { plain: new Map() as Tally, tool: new Map() as Tally };
const inGap: Tally = new Map();
const add = (t: Tally, k: string) => t.set(k, (t.get(k) ?? 0) + 1);
let w = 0;
for (const line of stdout.split('\n')) {
  const m = /^\s*(.+?)\s+(\d+)\s+([\d.]+):\s*$/.exec(line);
  if (!m) continue;
  const at = Number(m[3]) * 1000;
  while (w < windows.length - 1 && at >= windows[w + 1]!.from) w++;
  const win = windows[w]!;
  if (at < win.from) continue; // before the first turn
  const who = whose(Number(m[2]), m[1]!);
  if (at <= win.to) add(win.tool ? onPath.tool : onPath.plain, who);
  else if (w < windows.length - 1 || at <= win.to + GAP_MS) add(inGap, who);
}

const perTurn = (samples: number, n: number) => (samples / hz / n) * 1000;
/** One kind of turn: its tally and the times (ms) of its turns. */
const table = (title: string, t: Tally, times: readonly number[]) => {
  const n = times.length;
  const wallMs = median(times);
  console.log(`\n${title}: n ${n}, median ${wallMs.toFixed(2)} ms; CPU ms per turn (${os.cpus().length} cores: ${(os.cpus().length * wallMs).toFixed(1)} core-ms in the median turn)`);
  const rows = [...t.entries()].sort((a, b) => b[1] - a[1]).filter(([, s]) => perTurn(s, n) >= 0.05);
  for (const [k, s] of rows) console.log(`  ${perTurn(s, n).toFixed(2).padStart(6)}  ${k}`);
  const busy = [...t.entries()].filter(([k]) => k !== 'idle').reduce((a, [, s]) => a + s, 0);
  const meanMs = times.reduce((a, x) => a + x, 0) / n;
  console.log(`  busy cores on the path, on average: ${(perTurn(busy, n) / meanMs).toFixed(2)}`);
};
const timesOf = (tool: boolean) => windows.filter((x) => x.tool === tool).map((x) => x.to - x.from);
table('no tool', onPath.plain, timesOf(false));
table('one tool call', onPath.tool, timesOf(true));
console.log(`\nin the ${GAP_MS} ms after each turn (CPU ms per turn; the host applies \`done\` and releases the container there):`);
for (const [k, s] of [...inGap.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${perTurn(s, windows.length).toFixed(2).padStart(6)}  ${k}`);
