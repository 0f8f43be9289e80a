// Figure 6 — first streamed text: from the moment the scripted model writes the first piece of
// its reply's text to its socket to the moment an event-stream client of hako receives the
// `partial` event, on a warm container. Both ends are in this process, on one clock. The path
// is the model server → the group's proxy (which forwards the bytes to the container and reads
// the text as they pass) → host → HTTP channel → the client; the agent is not on it.

import { GAP_MS, progress, sleep, startBench, timedTurn } from './lib/harness.ts';
import { sampled, type Figure } from './lib/report.ts';

export interface StreamOptions {
  readonly quick: boolean;
}

export async function run(opts: StreamOptions): Promise<{ figures: Figure[]; notes: string[] }> {
  const warmup = opts.quick ? 5 : 10;
  const n = opts.quick ? 15 : 60;
  // One turn at a time, so the first written piece and the first partial event are of the same turn.
  let written: number | undefined;
  let shown: number | undefined;
  let armed = false;
  progress('starting a host (main group only)');
  const b = await startBench({
    env: { HAKO_IDLE_TIMEOUT: '3600' },
    onTextWritten: (piece) => { if (armed && written === undefined && piece !== '') written = performance.now(); },
  });
  try {
    const stream = await b.api.events('main');
    stream.onPartial = (text, at) => { if (armed && shown === undefined && text !== '') shown = at; };
    const samples: number[] = [];
    let partialsSeen = 0;
    try {
      await timedTurn(b.api, stream, 'main', 'first message: starts the container');
      for (let i = 0; i < warmup + n; i++) {
        await sleep(GAP_MS);
        written = undefined;
        shown = undefined;
        armed = true;
        await timedTurn(b.api, stream, 'main', `stream sample ${i}`);
        armed = false;
        if (written === undefined || shown === undefined) {
          throw new Error(`turn ${i}: the model wrote its text ${written === undefined ? 'never' : 'once'} and a partial event came ${shown === undefined ? 'never' : 'once'} before the reply; is the agent streaming (HAKO_STREAM)?`);
        }
        partialsSeen++;
        if (i >= warmup) samples.push(shown - written);
        if ((i + 1) % 20 === 0) progress(`stream turns ${i + 1}/${warmup + n}`);
      }
    } finally {
      stream.close();
    }
    return {
      figures: [sampled('stream.first', 'first streamed text visible after the model\'s first token', 'ms', samples, { max: 20, text: '≤ 20 ms' })],
      notes: [`${warmup} warm-up turns not recorded; a partial event came before the reply in all ${partialsSeen} turns`],
    };
  } finally {
    await b.close();
  }
}
