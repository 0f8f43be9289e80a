// Profiling aid (not part of `npm run bench`): preloaded into a hako host, it appends the
// host's memory figures to /tmp/hako-memlog/<pid>.jsonl every 500 ms, in MiB. Other Node
// processes that inherit NODE_OPTIONS (the bench itself) are left alone.
//
//   NODE_OPTIONS="--import $PWD/bench/profile/memlog.mjs" node bench/run.ts --only throughput

import fs from 'node:fs';
import v8 from 'node:v8';

if (process.argv.some((a) => a.endsWith('hako.mjs') || a.endsWith('src/main.ts'))) {
  const dir = '/tmp/hako-memlog';
  fs.mkdirSync(dir, { recursive: true });
  const file = `${dir}/${process.pid}.jsonl`;
  const mib = (n) => Math.round(n / 2 ** 20);
  setInterval(() => {
    const m = process.memoryUsage();
    const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    const line = { t: Date.now(), rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), newSpace: mib(newSpace?.space_size ?? 0), external: mib(m.external) };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 500).unref();
}
