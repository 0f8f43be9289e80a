// Figure 2 — cold start: the same POST → readable reply, but with no container running for
// the group (HAKO_IDLE_TIMEOUT=0 stops it after every turn), measured in the same run and
// interleaved with the baseline: the same engine starting the same image with a trivial
// command, `docker run --rm --entrypoint node IMAGE -e 0`. A second reference runs that
// trivial command with hako's own hardened flags and mounts, to show what the flags cost.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageTag } from '../src/runtime/image.ts';
import { progress, runnerDockerArgs, sleep, startBench, timedTurn, type Api } from './lib/harness.ts';
import { sampled, single, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';

export interface ColdOptions {
  readonly quick: boolean;
}

/** Spawn → exit of a `docker` command, in ms. */
export function timeDocker(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('docker', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => { err += c; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`docker ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** `docker run` of `node -e 0` with the exact flags, mounts and environment the runner uses. */
function hardenedTrivialArgs(image: string, dir: string): string[] {
  const { args } = runnerDockerArgs(image, dir);
  const img = args.pop()!;
  return [...args, '--entrypoint', 'node', img, '-e', '0'];
}

/** Waits (bounded, untimed) until the group has no container and nothing runs. */
async function containerGone(api: Api, group: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await api.status();
    const g = s.groups.find((x: { name: string }) => x.name === group);
    if (g && g.container === null && s.queue.running.length === 0) return;
    if (Date.now() > deadline) throw new Error(`the container of ${group} did not stop: ${JSON.stringify(g)}`);
    await sleep(50);
  }
}

export async function run(opts: ColdOptions): Promise<{ figures: Figure[]; notes: string[] }> {
  const n = opts.quick ? 4 : 12;
  const image = imageTag();
  const bareArgs = ['run', '--rm', '--entrypoint', 'node', image, '-e', '0'];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-trivial-'));
  progress('starting a host with HAKO_IDLE_TIMEOUT=0 (a container per turn)');
  const b = await startBench({ env: { HAKO_IDLE_TIMEOUT: '0' } });
  const stream = await b.api.events('main');
  try {
    // Untimed first runs: page cache and the engine's first-use costs land here.
    await timedTurn(b.api, stream, 'main', 'cold warm-up');
    await timeDocker(bareArgs);
    await timeDocker(hardenedTrivialArgs(image, dir));
    const cold: number[] = [], bare: number[] = [], hardened: number[] = [];
    for (let i = 0; i < n; i++) {
      // Rotate the order so no probe always follows another.
      const order = [0, 1, 2].map((k) => (k + i) % 3);
      for (const which of order) {
        await containerGone(b.api, 'main');
        await sleep(300);
        if (which === 0) cold.push(await timedTurn(b.api, stream, 'main', `cold sample ${i}`));
        else if (which === 1) bare.push(await timeDocker(bareArgs));
        else hardened.push(await timeDocker(hardenedTrivialArgs(image, dir)));
      }
      progress(`cold sample ${i + 1}/${n}: hako ${cold.at(-1)!.toFixed(0)} ms, bare docker run ${bare.at(-1)!.toFixed(0)} ms`);
    }
    const ratio = median(cold) / median(bare);
    return {
      figures: [
        sampled('cold.hako', 'cold start: POST → reply', 'ms', cold),
        sampled('cold.bare', 'baseline: docker run --rm node -e 0', 'ms', bare),
        sampled('cold.hardened', 'reference: same, hako\'s flags+mounts', 'ms', hardened),
        single('cold.ratio', 'cold start ÷ baseline (medians)', '×', ratio, n, { max: 1.0, text: '≤ 1.0 ×' }),
      ],
      notes: [
        'the baseline includes the container\'s exit and removal (--rm); the hako figure ends at the reply, before its container stops',
      ],
    };
  } finally {
    stream.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
