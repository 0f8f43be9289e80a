// Profiling aid, not part of `npm run bench`: how much slower the same code runs when other
// work ran on the machine just before it, as it does on every hop of a turn. Inside the agent
// image (`--cpus 1`, like an agent), it times the part of a model request the agent spends
// in Node's HTTP client (the synchronous part of a request: `http.request` and `end(body)`
// on a kept-alive Unix socket) with four kinds of pause before each request:
//
//   hot     none: the requests back to back
//   spin    20 ms of busy waiting that touches almost no memory (the CPU stays awake)
//   sleep   20 ms asleep, as a process waits for the next hop of a turn
//   trash   20 ms of work that walks 32 MB of memory, as the other processes of a turn do
//
//   node bench/profile/cold-code.ts [--requests N] [IMAGE]
//
// The figures are in bench/README.md ("Code on the path runs cold").

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ options: { requests: { type: 'string', default: '120' } }, allowPositionals: true });
const version = (JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
const image = positionals[0] ?? `hako-agent:${version}`;

// Runs inside the container: a server and a client on one Unix socket in one process, so only
// the client's side is timed (the server answers after the body is read).
const probe = `
import http from 'node:http';
const [pause, n] = [process.argv[1], Number(process.argv[2])];
const sock = '/tmp/cold-code.sock';
const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
await new Promise((r) => srv.listen(sock, r));
const agent = new http.Agent({ keepAlive: true });
const body = JSON.stringify({ messages: Array.from({ length: 200 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'message ' + i + ' '.repeat(120) })) });
const memory = new Float64Array(4e6);
const times = [];
for (let i = 0; i < n; i++) {
  if (pause === 'sleep') await new Promise((r) => setTimeout(r, 20));
  else if (pause === 'spin') { const end = performance.now() + 20; while (performance.now() < end); await new Promise((r) => setImmediate(r)); }
  else if (pause === 'trash') { const end = performance.now() + 20; for (let k = 0; performance.now() < end; k++) memory[(k * 4099) % memory.length] += 1; await new Promise((r) => setImmediate(r)); }
  else await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  await new Promise((resolve) => {
    const req = http.request({ socketPath: sock, path: '/openai/chat/completions', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => { res.resume(); res.on('end', resolve); });
    req.end(body);
    times.push(performance.now() - t0);
  });
}
const med = (xs) => [...xs.slice(20)].sort((a, b) => a - b)[Math.floor((xs.length - 20) / 2)];
console.log(JSON.stringify({ pause, ms: med(times) }));
srv.close(); agent.destroy();
`;

const n = Number(values.requests);
if (!Number.isInteger(n) || n < 40) throw new Error(`--requests must be a whole number of at least 40 (the first 20 are warm-up), not ${values.requests}`);
console.log(`${image}, --cpus 1: median ms per request after 20 warm-up requests (n=${n - 20})`);
for (const pause of ['hot', 'spin', 'sleep', 'trash', 'hot', 'spin', 'sleep', 'trash']) {
  const out = execFileSync('docker', ['run', '--rm', '--cpus', '1', '--network', 'none', '--entrypoint', 'node', image, '--input-type=module', '-e', probe, pause, String(n)], { encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { pause: string; ms: number };
  console.log(`  ${r.pause.padEnd(6)} ${r.ms.toFixed(3)} ms`);
}
