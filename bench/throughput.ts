// Figure 3 — throughput: 100 groups × 5 messages posted at once with HAKO_MAX_CONTAINERS=4.
// Wall time from the first POST to the last reply event, messages per second, and proof
// that every message got exactly one answer: each message carries a unique marker, the
// test model echoes its whole batch, so each marker must appear in exactly one assistant
// message of its group (read back through GET /messages) and no other assistant message
// (a failure notice, a duplicate) may exist. The host's memory is sampled throughout
// (figure 4, "under load").

import { progress, startBench, type EventStream } from './lib/harness.ts';
import { MB, cpuMs, peakRssBytes, rssBytes, sampleMemory } from './lib/proc.ts';
import { single, sampled, type Figure } from './lib/report.ts';

export interface ThroughputOptions {
  readonly quick: boolean;
}

export interface ThroughputResult {
  readonly figures: Figure[];
  readonly notes: string[];
  /** For the footprint table; `withChildren` sums the host and every process below it. */
  readonly memory: { readonly idleRss: number; readonly loadRss: number[]; readonly peakRss: number; readonly withChildren: number[]; readonly maxChildren: number };
}

const marker = (g: number, m: number) => `[m:${g}:${m}]`;

export async function run(opts: ThroughputOptions): Promise<ThroughputResult> {
  const groupCount = opts.quick ? 20 : 100;
  const perGroup = 5;
  const groups = Array.from({ length: groupCount }, (_, i) => `t${String(i).padStart(3, '0')}`);
  progress(`starting a host with ${groupCount} groups, HAKO_MAX_CONTAINERS=4`);
  const b = await startBench({ groups, env: { HAKO_MAX_CONTAINERS: '4' } });
  const pid = b.h.child.pid!;
  const streams: EventStream[] = [];
  try {
    for (const g of groups) streams.push(await b.api.events(g));
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = rssBytes(pid);
    const seen = groups.map(() => new Set<number>());
    let remaining = groupCount * perGroup;
    let lastReply = 0;
    let resolveAll!: () => void;
    const allAnswered = new Promise<void>((r) => { resolveAll = r; });
    streams.forEach((s, gi) => {
      // Count each marker's first appearance in an assistant event, the moment it lands.
      s.onEvent = (msg, at) => {
        if (msg.role !== 'assistant') return;
        for (let m = 0; m < perGroup; m++) {
          if (msg.text.includes(marker(gi, m)) && !seen[gi]!.has(m)) {
            seen[gi]!.add(m);
            lastReply = Math.max(lastReply, at);
            if (--remaining === 0) resolveAll();
          }
        }
      };
    });

    const mem = sampleMemory(pid, 100, 5);
    const cpu0 = cpuMs(pid);
    const t0 = performance.now();
    const posts: Promise<string>[] = [];
    for (let m = 0; m < perGroup; m++) for (let gi = 0; gi < groupCount; gi++) posts.push(b.api.post(groups[gi]!, `message ${m} of group ${gi} ${marker(gi, m)}`));
    const ids = await Promise.all(posts);
    const accepted = performance.now() - t0;
    progress(`${ids.length} messages accepted in ${accepted.toFixed(0)} ms; waiting for the answers`);
    const ticker = setInterval(() => progress(`${groupCount * perGroup - remaining}/${groupCount * perGroup} answered after ${((performance.now() - t0) / 1000).toFixed(0)} s`), 10_000);
    const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`not all messages answered within 15 min (${remaining} left)`)), 15 * 60_000).unref());
    try {
      await Promise.race([allAnswered, timeout]);
    } finally {
      clearInterval(ticker);
    }
    const wall = lastReply - t0;
    const cpu = cpuMs(pid) - cpu0;
    const m = mem.stop();
    const peak = peakRssBytes(pid);

    // Exactly one answer per message, read back through the API after the run settled.
    await new Promise((r) => setTimeout(r, 1500));
    let exactlyOnce = 0, dupes = 0, missing = 0, stray = 0, assistants = 0;
    for (let gi = 0; gi < groupCount; gi++) {
      const all = await b.api.messages(groups[gi]!);
      const replies = all.filter((x) => x.role === 'assistant');
      assistants += replies.length;
      for (const r of replies) if (!r.text.startsWith('echo:')) stray++;
      for (let mi = 0; mi < perGroup; mi++) {
        const hits = replies.filter((r) => r.text.includes(marker(gi, mi))).length;
        if (hits === 1) exactlyOnce++; else if (hits === 0) missing++; else dupes++;
      }
    }
    const log = b.h.logEvents();
    let live = 0, maxLive = 0;
    for (const e of log) {
      if (e.msg === 'container started') live++;
      if (e.msg === 'container exited') live--;
      maxLive = Math.max(maxLive, live);
    }
    const starts = log.filter((e) => e.msg === 'container started').length;
    const turns = log.filter((e) => e.msg === 'turn ended').length;
    const total = groupCount * perGroup;
    const ok = exactlyOnce === total && stray === 0;
    return {
      figures: [
        single('throughput.wall', `${groupCount} groups × ${perGroup} messages: wall time`, 's', wall / 1000, total),
        single('throughput.rate', 'messages per second', 'msg/s', total / (wall / 1000), total, { max: Number.POSITIVE_INFINITY, min: 8, text: '≥ 8 msg/s' }),
        single('throughput.exactlyOnce', 'messages answered exactly once', 'count', exactlyOnce, total, { max: Number.POSITIVE_INFINITY, text: `= ${total}` }),
        single('throughput.hostCpu', 'host CPU time during the run', 's', cpu / 1000, 1, undefined, `${(100 * cpu / wall).toFixed(1)} % of one core`),
      ].map((f) => (f.key === 'throughput.exactlyOnce' ? { ...f, met: ok } : f)),
      notes: [
        `posting all ${total} messages took ${accepted.toFixed(0)} ms; ${turns} turns in ${starts} container starts; at most ${maxLive} containers alive (limit 4)`,
        `answers: ${exactlyOnce} exactly once, ${missing} missing, ${dupes} more than once; ${assistants} assistant messages, ${stray} not an echo (notices)`,
      ],
      memory: { idleRss, loadRss: m.host, peakRss: peak, withChildren: m.withChildren, maxChildren: m.maxChildren },
    };
  } finally {
    for (const s of streams) s.close();
    await b.close();
  }
}

/** The footprint rows that come from the throughput run. */
export function loadMemoryFigures(m: ThroughputResult['memory']): Figure[] {
  return [
    sampled('footprint.loadRss', 'host RSS under the throughput load', 'MB', m.loadRss.map((x) => x / MB), { max: 120, text: '≤ 120 MB' },
      `peak (VmHWM) ${(m.peakRss / MB).toFixed(0)} MB`),
    single('footprint.loadPeakRss', 'host peak RSS (VmHWM) during the load', 'MB', m.peakRss / MB, 1, { max: 120, text: '≤ 120 MB' }),
    sampled('footprint.loadRssWithChildren', 'host + every process it started, RSS', 'MB', m.withChildren.map((x) => x / MB), { max: 110, text: '≤ 110 MB' },
      `up to ${m.maxChildren} processes below the host`),
  ];
}
