// Figure 4 — footprint: the host process's resident memory when idle, and its CPU time
// while idle for 60 s with 10 warm groups (10 containers kept warm, nothing to do, from
// 30 s after the last turn). Idle
// should cost next to nothing: no busy polling. It also reports what the rest of hako costs
// meanwhile: any process the host started, and the warm agent containers themselves (their
// cgroup CPU time), per container against a target: an idle agent waits on inotify and
// wakes only for its slow safety poll. RSS under load comes from the throughput run
// (throughput.ts).

import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { progress, sleep, startBench } from './lib/harness.ts';
import { MB, cpuMs, descendantPids, rssBytes } from './lib/proc.ts';
import { sampled, single, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';
import { LABEL_HOME } from '../src/core/runner.ts';

const exec = promisify(execFile);

/** How long after the last turn the idle window starts (see the settle step in run). */
const SETTLE_SECONDS = 30;

export interface FootprintOptions {
  readonly quick: boolean;
}

/** Full ids of the running containers of this state folder. */
export async function containerIds(home: string): Promise<string[]> {
  const { stdout } = await exec('docker', ['ps', '-q', '--no-trunc', '--filter', `label=${LABEL_HOME}=${home}`]);
  return stdout.split('\n').filter(Boolean);
}

/** CPU time (ms) of each running container of this state folder, from cgroup v1 or v2. */
export async function containerCpuMs(home: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const id of await containerIds(home)) {
    const v1 = [`/sys/fs/cgroup/cpu,cpuacct/docker/${id}/cpuacct.usage`, `/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`];
    const v2 = [`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, `/sys/fs/cgroup/docker/${id}/cpu.stat`];
    for (const f of v1) if (fs.existsSync(f)) { out.set(id, Number(fs.readFileSync(f, 'utf8')) / 1e6); break; }
    if (out.has(id)) continue;
    for (const f of v2) {
      if (!fs.existsSync(f)) continue;
      const m = /usage_usec (\d+)/.exec(fs.readFileSync(f, 'utf8'));
      if (m) { out.set(id, Number(m[1]) / 1000); break; }
    }
  }
  return out;
}

export async function run(opts: FootprintOptions): Promise<{ figures: Figure[]; notes: string[] }> {
  const idleSeconds = opts.quick ? 15 : 60;
  const groups = Array.from({ length: 10 }, (_, i) => `f${i}`);
  progress('starting a host with 10 groups (HAKO_MAX_CONTAINERS=10)');
  const b = await startBench({ groups, env: { HAKO_MAX_CONTAINERS: '10', HAKO_IDLE_TIMEOUT: '3600' } });
  const pid = b.h.child.pid!;
  try {
    await sleep(3000);
    const idleRss = rssBytes(pid);
    progress('warming 10 containers');
    for (const g of groups) {
      const s = await b.api.events(g);
      const from = s.received.length;
      await b.api.post(g, `hello ${g}`);
      await s.waitFor((m) => m.role === 'assistant', from, 120_000);
      s.close();
    }
    // Let every turn settle (done applied, containers warm), then measure a quiet window.
    for (let i = 0; ; i++) {
      const st = await b.api.status();
      const warm = st.groups.filter((g: { container: { state: string } | null }) => g.container?.state === 'warm').length;
      if (warm === 10 && st.queue.running.length === 0) break;
      if (i > 600) throw new Error(`containers did not settle warm: ${JSON.stringify(st.groups)}`);
      await sleep(100);
    }
    // The first half minute after a turn is not idle yet: V8's memory reducer runs a full GC
    // or two in each agent (~50 ms of CPU) to give the turn's memory back. Measured apart.
    progress(`letting the 10 containers settle for ${SETTLE_SECONDS} s after their turns`);
    const settle0 = await containerCpuMs(b.h.home);
    const settleT0 = performance.now();
    await sleep(SETTLE_SECONDS * 1000);
    const settleWall = performance.now() - settleT0;
    const settle1 = await containerCpuMs(b.h.home);
    const settleCpu = [...settle1].map(([id, v]) => v - (settle0.get(id) ?? v));
    progress(`measuring ${idleSeconds} s of idle with 10 warm containers`);
    const kids = descendantPids(pid);
    const cpu0 = cpuMs(pid);
    const kidCpu0 = kids.reduce((s, k) => s + safeCpu(k), 0);
    const ctr0 = await containerCpuMs(b.h.home);
    const t0 = performance.now();
    await sleep(idleSeconds * 1000);
    const wall = performance.now() - t0;
    const cpu = cpuMs(pid) - cpu0;
    const kidCpu = kids.reduce((s, k) => s + safeCpu(k), 0) - kidCpu0;
    const ctr1 = await containerCpuMs(b.h.home);
    // Per container, so the figure does not depend on how many are warm.
    const perContainer = [...ctr1].map(([id, v]) => v - (ctr0.get(id) ?? v));
    const ctrCpu = perContainer.reduce((a, x) => a + x, 0);
    const warmRss = rssBytes(pid);
    const pct = (x: number) => (100 * x) / wall;
    return {
      figures: [
        single('footprint.idleRss', 'host RSS idle (after start, no containers)', 'MB', idleRss / MB, 1),
        single('footprint.warmIdleRss', 'host RSS idle with 10 warm groups', 'MB', warmRss / MB, 1),
        single('footprint.idleCpu', `host CPU idle ${idleSeconds} s, 10 warm groups`, '%', pct(cpu), 1, { max: 1, text: '≤ 1 %' },
          `${cpu.toFixed(0)} ms CPU in ${(wall / 1000).toFixed(0)} s`),
        single('footprint.idleCpuChildren', '  … the processes it started', '%', pct(kidCpu), kids.length),
        single('footprint.idleCpuContainers', `  … the ${ctr1.size} warm containers together`, '%', pct(ctrCpu), ctr1.size),
        sampled('footprint.idleCpuPerContainer', 'idle CPU of one warm container', '%', perContainer.map(pct), { max: 0.03, text: '≤ 0.03 %' }),
        sampled('footprint.settleCpuPerContainer', `  … the same in the ${SETTLE_SECONDS} s before (after its turn)`, '%', settleCpu.map((x) => (100 * x) / settleWall), undefined,
          `median ${median(settleCpu).toFixed(0)} ms of CPU per container`),
      ],
      notes: [
        `idle window ${(wall / 1000).toFixed(1)} s: host ${cpu.toFixed(0)} ms CPU, ${kids.length} processes below it ${kidCpu.toFixed(0)} ms, ${ctr1.size} containers ${ctrCpu.toFixed(0)} ms (percent of one core)`,
      ],
    };
  } finally {
    await b.close();
  }
}

function safeCpu(pid: number): number {
  try { return cpuMs(pid); } catch { return 0; }
}
