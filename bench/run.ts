// `npm run bench`: runs the benchmark suites in order against the real engine and agent
// image with a scripted model that answers at once, prints a table and writes
// bench/results.json. Missing a target is reported, not a failure: the exit code is non-zero
// only when a suite crashed.
//
//   node bench/run.ts [--quick] [--only warm,cold,throughput,footprint,scaling,stream] [--out FILE]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { imageTag } from '../src/runtime/image.ts';
import { foreignHakoContainers, startBench, timedTurn, TOOL_MARKER } from './lib/harness.ts';
import { table, type Figure, type SuiteResult } from './lib/report.ts';
import * as warm from './warm.ts';
import * as cold from './cold.ts';
import * as throughput from './throughput.ts';
import * as footprint from './footprint.ts';
import * as scaling from './scaling.ts';
import * as stream from './stream.ts';

const SUITES = ['warm', 'cold', 'throughput', 'footprint', 'scaling', 'stream'] as const;
type SuiteName = (typeof SUITES)[number];

const HELP = `Usage: node bench/run.ts [--quick] [--only ${SUITES.join(',')}] [--out FILE]

  --quick   fewer samples and shorter idle windows (a smoke run, not for the record)
  --only    run only these suites, comma-separated
  --out     where to write the results (default bench/results.json)`;

function sh(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return 'unknown'; }
}

function machine() {
  const cpu = os.cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    docker: sh('docker', ['version', '--format', '{{.Server.Version}}']),
    storageDriver: sh('docker', ['info', '--format', '{{.Driver}}']),
    cgroup: sh('docker', ['info', '--format', 'v{{.CgroupVersion}} {{.CgroupDriver}}']),
    image: `${imageTag()} ${sh('docker', ['image', 'inspect', '--format', '{{.Id}}', imageTag()]).slice(7, 19)}`,
    commit: sh('git', ['-C', path.join(import.meta.dirname, '..'), 'rev-parse', '--short', 'HEAD']),
    dirty: sh('git', ['-C', path.join(import.meta.dirname, '..'), 'status', '--porcelain', '--', 'src', 'agent', 'protocol', 'container']) !== '',
  };
}

async function warmUp(): Promise<void> {
  const b = await startBench();
  try {
    const stream = await b.api.events('main');
    try {
      await timedTurn(b.api, stream, 'main', 'warm-up');
      await timedTurn(b.api, stream, 'main', `${TOOL_MARKER} warm-up`);
    } finally {
      stream.close();
    }
  } finally {
    await b.close();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { console.log(HELP); return 0; }
  const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [...SUITES];
  const unknown = only.filter((s) => !(SUITES as readonly string[]).includes(s));
  if (unknown.length) { console.error(`unknown suite(s): ${unknown.join(', ')}\n\n${HELP}`); return 2; }
  const quick = values.quick ?? false;
  const out = values.out ?? path.join(import.meta.dirname, 'results.json');

  const info = machine();
  console.error(`hako bench${quick ? ' (quick)' : ''}: ${only.join(', ')}`);
  console.error(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.kernel}, Node ${info.node}, Docker ${info.docker}, image ${info.image}`);
  const others = await foreignHakoContainers();
  if (others > 0) console.error(`warning: ${others} other hako container(s) are running on this engine: expect noise`);

  // The figures are those of an installed hako, whose host has started before: its compile
  // cache (bin/hako.mjs) already holds the host's modules. Right after an install or an
  // update the first host start fills it, and that one process runs ~35 MB larger.
  console.error('\n▶ warm-up: one host start and two turns, so the host\'s compile cache is filled');
  await warmUp();

  const results: SuiteResult[] = [];
  let throughputMemory: throughput.ThroughputResult['memory'] | undefined;
  const started = Date.now();
  for (const name of SUITES) {
    if (!only.includes(name)) continue;
    console.error(`\n▶ ${name}`);
    const t0 = performance.now();
    const foreign = await foreignHakoContainers();
    if (foreign > 0) console.error(`warning: ${foreign} other hako container(s) running: expect noise`);
    const load0 = os.loadavg()[0]!;
    try {
      let r: { figures: Figure[]; notes: string[] };
      switch (name as SuiteName) {
        case 'warm': r = await warm.run({ quick }); break;
        case 'cold': r = await cold.run({ quick }); break;
        case 'throughput': {
          const t = await throughput.run({ quick });
          throughputMemory = t.memory;
          r = t;
          break;
        }
        case 'footprint': {
          r = await footprint.run({ quick });
          if (throughputMemory) r.figures.push(...throughput.loadMemoryFigures(throughputMemory));
          else r.notes.push('RSS under load comes from the throughput suite, which did not run');
          break;
        }
        case 'scaling': r = await scaling.run({ quick }); break;
        case 'stream': r = await stream.run({ quick }); break;
      }
      const seconds = Math.round((performance.now() - t0) / 1000);
      r.notes.push(`machine: 1-min load average (the bench included) ${load0.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end; ${foreign} other hako containers at the start`);
      results.push({ suite: name, figures: r.figures, notes: r.notes, seconds });
    } catch (err) {
      const e = err as Error;
      console.error(`✗ ${name} crashed: ${e.stack ?? e.message}`);
      results.push({ suite: name, figures: [], notes: [], seconds: Math.round((performance.now() - t0) / 1000), error: e.message });
    }
    console.error(`  ${name} took ${results.at(-1)!.seconds} s`);
  }
  // Throughput ran without the footprint suite: still show its memory rows.
  if (throughputMemory && !only.includes('footprint')) {
    results.push({ suite: 'footprint', figures: throughput.loadMemoryFigures(throughputMemory), notes: ['only the under-load rows (the footprint suite did not run)'], seconds: 0 });
  }

  const figures = results.flatMap((r) => r.figures);
  const missed = figures.filter((f) => f.target && !f.met);
  const doc = {
    date: new Date().toISOString(),
    quick,
    suites: only,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: info,
    otherHakoContainersAtStart: others,
    targets: { met: figures.filter((f) => f.target && f.met).map((f) => f.key), missed: missed.map((f) => f.key) },
    results,
  };
  fs.writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  console.log(`\n${table(results)}\n`);
  console.log(`targets: ${doc.targets.met.length} met, ${missed.length} missed${missed.length ? ` (${missed.map((f) => f.key).join(', ')})` : ''}`);
  console.log(`results written to ${path.relative(process.cwd(), out) || out}; ${doc.durationSeconds} s in all`);
  return results.some((r) => r.error) ? 1 : 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
