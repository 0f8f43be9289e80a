// Figure 5 — scaling: warm overhead and host memory with 10, 100 and 1,000 registered
// groups (all but one idle). Groups are inserted straight into the database before the
// host starts. For each size: host start time, RSS once started and settled, warm turns on
// the main group (after the same warm-up as figure 1), RSS after them, and host CPU over an
// idle window (polling shows up here).

import { progress, sleep, startBench } from './lib/harness.ts';
import { MB, cpuMs, rssBytes } from './lib/proc.ts';
import { sampled, single, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';
import { warmTurns } from './warm.ts';

export interface ScalingOptions {
  readonly quick: boolean;
}

export async function run(opts: ScalingOptions): Promise<{ figures: Figure[]; notes: string[] }> {
  const sizes = [10, 100, 1000];
  const samples = opts.quick ? 10 : 30;
  const idleSeconds = opts.quick ? 5 : 15;
  const figures: Figure[] = [];
  const notes: string[] = [];
  const warm = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const size of sizes) {
    const groups = Array.from({ length: size - 1 }, (_, i) => `s${String(i).padStart(4, '0')}`);
    progress(`${size} groups: starting a host`);
    const t0 = performance.now();
    const b = await startBench({ groups, env: { HAKO_IDLE_TIMEOUT: '3600' } });
    const startMs = performance.now() - t0;
    const pid = b.h.child.pid!;
    try {
      await sleep(2000);
      const rssStart = rssBytes(pid);
      const r = await warmTurns(b, 'main', opts.quick ? 10 : 20, samples, 0, `${size} groups: `);
      await sleep(1000);
      const rssAfter = rssBytes(pid);
      progress(`${size} groups: ${idleSeconds} s idle`);
      const c0 = cpuMs(pid);
      const w0 = performance.now();
      await sleep(idleSeconds * 1000);
      const idlePct = (100 * (cpuMs(pid) - c0)) / (performance.now() - w0);
      warm.set(size, r.plain);
      rss.set(size, rssAfter);
      figures.push(
        sampled(`scaling.${size}.warm`, `${size} groups: warm overhead`, 'ms', r.plain),
        single(`scaling.${size}.rss`, `${size} groups: host RSS after the turns`, 'MB', rssAfter / MB, 1, undefined, `${(rssStart / MB).toFixed(0)} MB right after start`),
        single(`scaling.${size}.idleCpu`, `${size} groups: host CPU idle (1 warm)`, '%', idlePct, 1, { max: 1, text: '≤ 1 %' },
          'the idle target of figure 4, applied at each size'),
      );
      notes.push(`${size} groups: host ready ${(startMs / 1000).toFixed(1)} s after spawn (includes the image check); RSS ${(rssStart / MB).toFixed(0)} MB after start, ${(rssAfter / MB).toFixed(0)} MB after ${samples} turns; idle CPU ${idlePct.toFixed(2)} %`);
    } finally {
      await b.close();
    }
  }
  const first = sizes[0]!, last = sizes.at(-1)!;
  figures.push(
    single('scaling.warmGrowth', `warm overhead ${last} ÷ ${first} groups`, '×', median(warm.get(last)!) / median(warm.get(first)!), 2, { max: 2, text: '≤ 2 ×' }),
    single('scaling.rssGrowth', `host RSS ${last} ÷ ${first} groups`, '×', rss.get(last)! / rss.get(first)!, 2, { max: 2, text: '≤ 2 ×' }),
  );
  return { figures, notes };
}
