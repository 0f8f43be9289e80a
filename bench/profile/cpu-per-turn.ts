// CPU time per warm turn of each process on figure 1's path — the host, the group's
// container (its cgroup) and the bench process (client and scripted model) — next to the
// turn's median wall time, to tell work from waiting. Each count spans the turns and the
// 150 ms gaps after them (the host applies the turn's `done` and releases the container
// there), so it is what a turn costs, not only what lies on its path.
//
//   node bench/profile/cpu-per-turn.ts [--turns N]
//
// NODE_OPTIONS in the environment reaches the host (e.g. --cpu-prof --cpu-prof-dir=DIR).

import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { sleep, startBench, timedTurn, TOOL_MARKER } from '../lib/harness.ts';
import { containerCpuMs } from '../footprint.ts';
import { GAP_MS } from '../warm.ts';

/** utime + stime of a process, in ms (Linux clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function containerMs(home: string): Promise<number> {
  const all = [...(await containerCpuMs(home)).values()];
  if (all.length !== 1) throw new Error(`expected the one container of group main, found ${all.length}`);
  return all[0]!;
}

const { values } = parseArgs({ options: { turns: { type: 'string', default: '100' } } });
const turns = Number(values.turns);
if (!Number.isInteger(turns) || turns < 10) throw new Error(`--turns must be a whole number ≥ 10, got ${values.turns}`);

const b = await startBench({ env: { HAKO_IDLE_TIMEOUT: '3600', ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}) } });
try {
  const stream = await b.api.events('main');
  await timedTurn(b.api, stream, 'main', 'first message: starts the container');
  for (let i = 0; i < 20; i++) {
    await timedTurn(b.api, stream, 'main', i % 2 ? `${TOOL_MARKER} warm-up ${i}` : `warm-up ${i}`);
    await sleep(GAP_MS);
  }
  const pid = b.h.child.pid!;
  for (const tool of [false, true]) {
    const host0 = processCpuMs(pid);
    const box0 = await containerMs(b.h.home);
    const bench0 = process.cpuUsage();
    const times: number[] = [];
    for (let i = 0; i < turns; i++) {
      times.push(await timedTurn(b.api, stream, 'main', tool ? `${TOOL_MARKER} sample ${i}` : `sample ${i}`));
      await sleep(GAP_MS);
    }
    const bench = process.cpuUsage(bench0);
    const per = (ms: number) => `${(ms / turns).toFixed(2)} ms`;
    times.sort((x, y) => x - y);
    console.log(`${tool ? 'one tool call' : 'no tool'} (n ${turns}): median ${times[times.length >> 1]!.toFixed(2)} ms; CPU per turn: host ${per(processCpuMs(pid) - host0)}, container ${per(await containerMs(b.h.home) - box0)}, bench ${per((bench.user + bench.system) / 1000)}`);
  }
  stream.close();
} finally {
  await b.close();
}
