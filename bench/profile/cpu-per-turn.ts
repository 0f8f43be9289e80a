// CPU time per warm turn of each process on figure 1's path — the host, the group's
// container (its cgroup) and the bench process (client and scripted model) — next to the
// turn's median wall time, to tell work from waiting. Each count spans the turns and the
// 150 ms gaps after them (the host applies the turn's `done` and releases the container
// there), so it is what a turn costs, not only what lies on its path.
//
//   node bench/profile/cpu-per-turn.ts [--turns N]
//
// NODE_OPTIONS in the environment reaches the host (e.g. --cpu-prof --cpu-prof-dir=DIR).

import { parseArgs } from 'node:util';
import { figure1Turns, GAP_MS, sleep, startBench, timedTurn, TOOL_MARKER } from '../lib/harness.ts';
import { cpuMs } from '../lib/proc.ts';
import { median } from '../lib/stats.ts';
import { containerCpuMs } from '../footprint.ts';

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
  await figure1Turns((text) => timedTurn(b.api, stream, 'main', text), 20, 0, 0); // the first turn and figure 1's warm-up
  const pid = b.h.child.pid!;
  for (const tool of [false, true]) {
    const host0 = cpuMs(pid);
    const box0 = await containerMs(b.h.home);
    const bench0 = process.cpuUsage();
    const times: number[] = [];
    for (let i = 0; i < turns; i++) {
      times.push(await timedTurn(b.api, stream, 'main', tool ? `${TOOL_MARKER} sample ${i}` : `sample ${i}`));
      await sleep(GAP_MS);
    }
    const bench = process.cpuUsage(bench0);
    const per = (ms: number) => `${(ms / turns).toFixed(2)} ms`;
    console.log(`${tool ? 'one tool call' : 'no tool'} (n ${turns}): median ${median(times).toFixed(2)} ms; CPU per turn: host ${per(cpuMs(pid) - host0)}, container ${per(await containerMs(b.h.home) - box0)}, bench ${per((bench.user + bench.system) / 1000)}`);
  }
  stream.close();
} finally {
  await b.close();
}
