// Figure 1 — warm overhead: POST /api/groups/main/messages → the reply is readable through
// the API, with the group's container already running and a model that answers at once;
// and the same for a turn with one tool call (read_file), interleaved so both share the
// noise. The container's first turns after its cold start are slower while V8 warms up the
// host's and the agent's code; they are reported on their own row, and the target figures
// are taken after them. Then the floor (floor.ts): the same turns through the same
// processes, crossings and fsyncs with the least code, so each run shows what is hako's.

import { figure1Turns, progress, startBench, timedTurn, type Bench, type WarmSamples } from './lib/harness.ts';
import { measureFloor } from './floor.ts';
import { sampled, single, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';

export interface WarmOptions {
  readonly quick: boolean;
}

/** Figure 1's turns against hako's `group` on the bench's host (see figure1Turns). */
export async function warmTurns(b: Bench, group: string, warmup: number, plain: number, tool: number, label = ''): Promise<WarmSamples> {
  const stream = await b.api.events(group);
  try {
    return await figure1Turns((text) => timedTurn(b.api, stream, group, text), warmup, plain, tool, label);
  } finally {
    stream.close();
  }
}

export async function run(opts: WarmOptions): Promise<{ figures: Figure[]; notes: string[] }> {
  const warmup = opts.quick ? 10 : 20;
  const plain = opts.quick ? 15 : 60;
  const tool = opts.quick ? 10 : 40;
  progress('starting a host (main group only)');
  const b = await startBench({ env: { HAKO_IDLE_TIMEOUT: '3600' } });
  let r: WarmSamples;
  let notes: string[];
  try {
    r = await warmTurns(b, 'main', warmup, plain, tool);
    const modelRequests = b.model.requests.length;
    const expected = 1 + warmup + Math.floor(warmup / 2) + plain + 2 * tool;
    const starts = b.h.logEvents().filter((e) => e.msg === 'container started').length;
    notes = [`one container served all ${1 + warmup + plain + tool} turns (container starts: ${starts}); model requests ${modelRequests}, expected ${expected} (a tool turn makes two)`];
  } finally {
    await b.close();
  }
  progress('the floor: the same turn with the least code (bench/floor.ts)');
  const floor = await measureFloor(warmup, plain, tool);
  return {
    figures: [
      sampled('warm.plain', 'warm overhead (no tool)', 'ms', r.plain, { max: 8, text: '≤ 8 ms' }),
      sampled('warm.tool', 'warm overhead (one tool call)', 'ms', r.tool, { max: 15, text: '≤ 15 ms' }),
      sampled('warm.early', `  … its first ${warmup} turns after the cold start (no tool)`, 'ms', r.early, undefined, 'V8 still warming up host and agent code'),
      sampled('warm.floor', '  floor: the same turn, least code (no tool)', 'ms', floor.plain, undefined, 'same processes, crossings and fsyncs (bench/floor.ts)'),
      sampled('warm.floorTool', '  floor: the same turn, least code (one tool call)', 'ms', floor.tool, undefined, 'same processes, crossings and fsyncs (bench/floor.ts)'),
      single('warm.overFloor', '  warm overhead ÷ floor (medians, no tool)', '×', median(r.plain) / median(floor.plain), plain),
      single('warm.overFloorTool', '  warm overhead ÷ floor (medians, one tool call)', '×', median(r.tool) / median(floor.tool), tool),
    ],
    notes: [...notes, `floor: ${floor.note}; its hops: ${floor.hops.map((h) => `${h.label} ${h.ms.toFixed(2)}`).join(', ')}`],
  };
}
