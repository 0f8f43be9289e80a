// Profiling aid, not part of `npm run bench`: where a warm turn's time goes, hop by hop.
// Runs figure 1's warm turns against a host at HAKO_LOG_LEVEL=debug, then lines up on one
// wall clock (epoch ms, sub-millisecond) the bench's POST and event arrival, the host's hop
// marks (src/core/trace.ts: `hop` debug lines, the proxy's too) and the agent's own log lines
// (their `t`, relayed by the host as `agent` debug lines). For each kind of turn (plain, one
// tool call) it prints the median of every step between consecutive marks, with n.
//
//   node bench/profile/warm-trace.ts [--turns N]   (N plain + N tool turns, default 40)
//
// Debug logging writes a line per mark, so the totals here run a little above figure 1's.

import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { sleep, startBench, TOOL_MARKER, type Bench } from '../lib/harness.ts';
import { median } from '../lib/stats.ts';

interface Mark { readonly label: string; readonly at: number }
interface TurnTrace { readonly tool: boolean; readonly marks: Mark[] }

const wall = (perfNow: number) => performance.timeOrigin + perfNow;

/** Every mark of the host's log as { label, at, batch?, messages? }. */
function logMarks(b: Bench): { label: string; at: number; batch?: string; messages?: string[] }[] {
  const out: { label: string; at: number; batch?: string; messages?: string[] }[] = [];
  for (const e of b.h.logEvents()) {
    if (e.msg === 'hop' && typeof e.at === 'number') {
      const label = `host ${String(e.hop)}${typeof e.type === 'string' ? ` ${e.type}` : ''}`;
      out.push({ label, at: e.at, ...(typeof e.batch === 'string' ? { batch: e.batch } : {}), ...(Array.isArray(e.messages) ? { messages: e.messages as string[] } : {}) });
    } else if (e.msg === 'agent' && typeof e.line === 'string' && e.line.startsWith('{')) {
      let a: Record<string, unknown>;
      try { a = JSON.parse(e.line) as Record<string, unknown>; } catch { continue; }
      if (typeof a.t !== 'number') continue;
      const detail = typeof a.type === 'string' ? ` ${a.type}` : typeof a.step === 'number' ? ` ${a.step}` : typeof a.tool === 'string' ? ` ${a.tool}` : '';
      out.push({ label: `agent ${String(a.event)}${detail}`, at: a.t });
    }
  }
  return out.sort((x, y) => x.at - y.at);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { turns: { type: 'string', default: '40' } } });
  const n = Number(values.turns);
  const b = await startBench({ env: { HAKO_IDLE_TIMEOUT: '3600', HAKO_LOG_LEVEL: 'debug' } });
  const turns: { tool: boolean; id: string; t0: number; acked: number; event: number }[] = [];
  try {
    const stream = await b.api.events('main');
    try {
      for (let i = 0; i < 20 + 2 * n; i++) {
        const tool = i % 2 === 1;
        const from = stream.received.length;
        const t0 = performance.now();
        const id = await b.api.post('main', tool ? `${TOOL_MARKER} ${i}` : `turn ${i}`);
        const acked = performance.now();
        const { at } = await stream.waitFor((m) => m.role === 'assistant', from, 60_000);
        if (i >= 20) turns.push({ tool, id, t0: wall(t0), acked: wall(acked), event: wall(at) });
        await sleep(150);
      }
    } finally {
      stream.close();
    }
    await sleep(500); // the last agent lines reach the host's log
    const marks = logMarks(b);
    if (process.env.TRACE_DUMP) fs.writeFileSync(process.env.TRACE_DUMP, JSON.stringify({ turns, marks }));
    const traces: TurnTrace[] = turns.map((t) => ({
      tool: t.tool,
      marks: [
        { label: 'bench POST sent', at: t.t0 },
        ...marks.filter((m) => m.at > t.t0 && m.at < t.event),
        { label: 'bench 202 received', at: t.acked },
        { label: 'bench event received', at: t.event },
      ].sort((x, y) => x.at - y.at),
    }));
    for (const tool of [false, true]) report(traces.filter((t) => t.tool === tool), tool ? 'one tool call' : 'no tool');
  } finally {
    await b.close();
  }
}

/**
 * Prints, for each mark, the median time from the POST to its first occurrence in a turn
 * (marks seen in fewer than half the turns are left out), in order, with the step from the
 * mark before: the order of concurrent marks varies from turn to turn, so steps are
 * differences of medians, not medians of differences.
 */
function report(traces: TurnTrace[], title: string): void {
  const offsets = new Map<string, number[]>();
  for (const t of traces) {
    const t0 = t.marks[0]!.at;
    const seen = new Set<string>();
    for (const m of t.marks) {
      if (seen.has(m.label)) continue;
      seen.add(m.label);
      offsets.set(m.label, [...(offsets.get(m.label) ?? []), m.at - t0]);
    }
  }
  const rows = [...offsets.entries()].filter(([, xs]) => xs.length >= traces.length / 2).map(([label, xs]) => ({ label, ms: median(xs), n: xs.length })).sort((x, y) => x.ms - y.ms);
  console.log(`\n${title}: n ${traces.length}; median ms from the POST to each mark's first occurrence (step from the row before)`);
  let prev = 0;
  for (const r of rows) {
    console.log(`  ${r.ms.toFixed(2).padStart(7)}  (+${(r.ms - prev).toFixed(2).padStart(5)})  ${r.label}${r.n < traces.length ? `  [n ${r.n}]` : ''}`);
    prev = r.ms;
  }
}

await main();
