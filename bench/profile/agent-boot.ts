// Profiling aid (not part of `npm run bench`): how long the agent container takes from
// `docker run` to the agent's `agent_start` line, with the host's hardened flags and mounts,
// for one or more images — and where an agent's module loading spends its time.
//
//   node bench/profile/agent-boot.ts [--samples N] [IMAGE ...]     (default: hako-agent:<version>)
//
// Used to find why a cold turn costs more than a bare `docker run`: compare an image with a
// candidate fix (say, a compile cache baked in) against the current one, same flags, interleaved.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { imageTag } from '../../src/runtime/image.ts';
import { ipcFileName } from '../../protocol/ipc.ts';
import { containerUser } from '../../src/core/runner.ts';
import { runnerDockerArgs } from '../lib/harness.ts';
import { summarize } from '../lib/stats.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { samples: { type: 'string', default: '7' } } });
const images = positionals.length ? positionals : [imageTag()];
const samples = Number(values.samples);

function bootOnce(image: string, n: number): Promise<{ toStart: number; imports: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-boot-'));
  const { args, paths } = runnerDockerArgs(image, dir);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let result: { toStart: number; imports: string } | undefined;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      buf += c;
      if (!result && buf.includes('"agent_start"')) {
        result = { toStart: performance.now() - t0, imports: '' };
        const close = { v: 1, id: `close-${n}`, type: 'close' };
        fs.writeFileSync(path.join(paths.ipcIn, ipcFileName(close.id)), JSON.stringify(close));
      }
    });
    child.on('exit', () => {
      fs.rmSync(dir, { recursive: true, force: true });
      if (result) resolve(result); else reject(new Error(`no agent_start from ${image}:\n${buf}`));
    });
  });
}

/** Import time of the agent's main pieces inside the image (same CPU limit, uid and entry flags as a group, so the image's compile cache applies). */
function importPhases(image: string): Promise<string> {
  // Wall time and CPU time (user + system, all threads) of each phase: on a loaded machine
  // the wall time stretches, the CPU time is what the phase costs.
  const script = `
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
const t0 = performance.now(), c0 = cpu();
await import('/app/protocol/ipc.ts'); const t1 = performance.now(), c1 = cpu();
await import('/app/agent/turn.ts'); const t2 = performance.now(), c2 = cpu();
await import('/app/agent/providers/openai.ts'); const t3 = performance.now(), c3 = cpu();
await import('/app/agent/providers/anthropic.ts'); const t4 = performance.now(), c4 = cpu();
const f = (t, c) => t.toFixed(0).padStart(4) + ' ms (CPU ' + c.toFixed(0) + ')';
console.log('process start→script ' + f(t0, c0) + ' | first .ts (type stripper) ' + f(t1 - t0, c1 - c0) + ' | agent turn+tools ' + f(t2 - t1, c2 - c1) + ' | openai provider ' + f(t3 - t2, c3 - c2) + ' | anthropic provider ' + f(t4 - t3, c4 - c3));`;
  return new Promise((resolve) => {
    const { uid, gid } = containerUser();
    const c = spawn('docker', ['run', '--rm', '--read-only', '--cpus', '1', '--network', 'none', '--user', `${uid}:${gid}`, '--entrypoint', 'node', image, '--preserve-symlinks', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (x) => { out += x; });
    c.stderr.on('data', (x) => { out += x; });
    c.on('exit', () => resolve(out.trim()));
  });
}

const boot: Record<string, number[]> = {};
for (let i = 0; i < samples; i++) {
  for (const image of images) {
    const r = await bootOnce(image, i);
    (boot[image] ??= []).push(r.toStart);
    process.stderr.write(`  … ${image} #${i + 1}: ${r.toStart.toFixed(0)} ms\n`);
  }
}
for (const image of images) {
  const s = summarize(boot[image]!);
  console.log(`${image}: docker run → agent_start median ${s.median.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms (n=${s.n})`);
  console.log(`  imports: ${await importPhases(image)}`);
}
