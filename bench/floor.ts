// The design floor of figure 1 (warm overhead, POST → the reply's SSE event, with a model
// that answers at once) on this machine, reported next to figure 1 in every run. It runs the
// same processes, crossings, system calls and fsyncs as a hako warm turn, with the least code
// possible in each hop, and so answers "how fast could a warm turn of this architecture be
// here?":
//
//   probe (this process): HTTP client (POST + a kept-open SSE stream over TCP) and the
//     scripted model server (test/support/model-server.ts, the bench's model, streamed);
//   host (a node child): HTTP on TCP; SQLite in WAL mode, the accepted message committed
//     with synchronous = FULL before the batch is handed over and the rest NORMAL (like
//     src/core/store.ts), plus an audit connection (FULL, one record per model request,
//     made when its headers arrive, before it is forwarded); a proxy on a Unix socket that
//     forwards with http.request and pipes the body and the answer through; batch files
//     written + renamed into in/, replies read from out/ on fs.watch;
//   agent (node in hako-agent, with exactly the runner's docker flags and mounts): fs.watch on
//     /ipc/in, history.json read (at most 200 messages, like hako's), the request (history +
//     ~2 kB system prompt + 16 tools, ~8 kB)
//     streamed through the proxy socket (a tool call: the file read, the request again), the
//     reply renamed into /ipc/out, history rewritten.
//
// Left out on purpose versus hako: authentication, validation of every message and file,
// logging, the queue and its scheduling, disk admission, budgets and usage/text taps, batch
// and output transactions beyond one insert each, memory files, the archive, partial events,
// `done`/status files, the agent's provider client and its agent loop (its tool call is one
// file read and a second request). The turns are figure 1's (figure1Turns in
// lib/harness.ts), so the conversation grows the same way.
//
//   node bench/floor.ts [--turns N]   (N measured plain turns, default 60, and 2/3 as many
//                                      with a tool call; prints the plain turns' hops too)

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DatabaseSync } from 'node:sqlite';
import { startModelServer } from '../test/support/model-server.ts';
import { imageTag } from '../src/runtime/image.ts';
import { Api, benchModel, figure1Turns, runnerDockerArgs, TOOL_MARKER, type TurnKind } from './lib/harness.ts';
import { median, percentile } from './lib/stats.ts';

const wall = (): number => performance.timeOrigin + performance.now();
type Marks = Record<string, number>;

// ---- the host (a child process: `floor.ts --host <dir> <model url> <in> <out> <socket>`) ----

function host(dir: string, modelUrl: string, inDir: string, outDir: string, socketPath: string): void {
  const file = path.join(dir, 'floor.db');
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, role TEXT, sender TEXT, text TEXT, ts TEXT)');
  const audit = new DatabaseSync(file);
  audit.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;');
  audit.exec('CREATE TABLE audit (id INTEGER PRIMARY KEY, ts TEXT, grp TEXT, path TEXT, bytes INTEGER)');
  const insertMessage = db.prepare('INSERT INTO messages (role, sender, text, ts) VALUES (?, ?, ?, ?)');
  const insertAudit = audit.prepare('INSERT INTO audit (ts, grp, path, bytes) VALUES (?, ?, ?, ?)');
  const streams = new Set<http.ServerResponse>();
  const publish = (msg: object): void => { for (const s of streams) s.write(`data: ${JSON.stringify(msg)}\n\n`); };
  let marks: Marks = {}; // the turn under way

  http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': connected\n\n');
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    marks = { 'host got POST': wall() };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text: string; sender: string };
      const ts = new Date().toISOString();
      // Like the store: the accepted message's commit alone is fsynced (synchronous = FULL).
      db.exec('PRAGMA synchronous = FULL');
      const id = String(insertMessage.run('user', body.sender, body.text, ts).lastInsertRowid);
      db.exec('PRAGMA synchronous = NORMAL');
      marks['message committed'] = wall();
      publish({ id, role: 'user', sender: body.sender, text: body.text, ts });
      const name = `batch-${id}.json`;
      fs.writeFileSync(path.join(inDir, `.${name}.tmp`), JSON.stringify({ id: `b${id}`, messages: [{ id, sender: body.sender, text: body.text, ts }] }));
      fs.renameSync(path.join(inDir, `.${name}.tmp`), path.join(inDir, name));
      marks['batch renamed'] = wall();
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id }));
    });
  }).listen(0, '127.0.0.1', function (this: http.Server) {
    process.stdout.write(`port ${(this.address() as { port: number }).port}\n`);
  });

  fs.rmSync(socketPath, { force: true });
  // Like hako's proxy: the record is made from the request line when the headers arrive,
  // before anything connects; the body streams through unread.
  http.createServer((req, res) => {
    marks['proxy got request'] = wall();
    insertAudit.run(new Date().toISOString(), 'bench', req.url ?? '', Number(req.headers['content-length'] ?? -1));
    marks['audit committed'] = wall();
    const up = http.request(`${modelUrl}${req.url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(req.headers['content-length'] ? { 'content-length': req.headers['content-length'] } : {}) } }, (answer) => {
      marks['model headers back'] ??= wall();
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(up);
  }).listen(socketPath, () => {
    fs.chmodSync(socketPath, 0o600);
    fs.chownSync(socketPath, 1000, 1000);
  });

  fs.watch(outDir, () => {
    const woke = wall();
    for (const name of fs.readdirSync(outDir)) {
      if (name.startsWith('.')) continue;
      const reply = JSON.parse(fs.readFileSync(path.join(outDir, name), 'utf8')) as { batch: string; text: string; marks: Marks };
      const ts = new Date().toISOString();
      const id = String(insertMessage.run('assistant', 'hako', reply.text, ts).lastInsertRowid);
      publish({ id, role: 'assistant', sender: 'hako', text: reply.text, ts, marks: { ...marks, ...reply.marks, 'host woke': woke, 'reply committed': wall() } });
      fs.rmSync(path.join(outDir, name));
      fs.rmSync(path.join(inDir, `batch-${reply.batch.slice(1)}.json`), { force: true });
    }
  });
}

// ---- the agent: serialized into a .mjs and run by node inside the container ----

function agent(fs: typeof import('node:fs'), http: typeof import('node:http')): void {
  const wall = (): number => performance.timeOrigin + performance.now();
  const HISTORY = '/workspace/group/history.json';
  const SYSTEM = `You are hako, a personal assistant running in a container for the group "bench". `.repeat(24); // ~2 kB
  // hako's agent offers 16 tools (~8 kB of schemas): 16 of about the same size.
  const TOOLS = Array.from({ length: 16 }, (_, i) => ({ type: 'function', function: { name: `tool_${i}`, description: 'Reads a UTF-8 text file of the group folder and returns its text, or an error when it is missing or too large. '.repeat(3), parameters: { type: 'object', properties: { path: { type: 'string', description: 'relative to /workspace/group' } }, required: ['path'] } } }));
  const seen = new Set<string>();
  let busy = false;
  let again = false;

  const pass = (woke: number): void => {
    if (busy) { again = true; return; }
    const names = fs.readdirSync('/ipc/in').filter((n) => !n.startsWith('.'));
    for (const n of seen) if (!names.includes(n)) seen.delete(n);
    const name = names.find((n) => !seen.has(n));
    if (!name) return;
    seen.add(name);
    busy = true;
    const batch = JSON.parse(fs.readFileSync(`/ipc/in/${name}`, 'utf8')) as { id: string; messages: { sender: string; text: string; ts: string }[] };
    let history: object[] = [];
    try { history = JSON.parse(fs.readFileSync(HISTORY, 'utf8')); } catch { /* the first turn */ }
    const user = { role: 'user', content: batch.messages.map((m) => `[${m.ts}] ${m.sender}: ${m.text}`).join('\n') };
    const turn: object[] = [user];
    const marks: Record<string, number> = { 'agent woke': woke };
    const done = (text: string): void => {
      marks['agent got the whole answer'] ??= wall();
      marks['reply writing'] ??= wall(); // the file carries the marks, so the last is taken before it is written
      fs.writeFileSync(`/ipc/out/.reply-${batch.id}.tmp`, JSON.stringify({ batch: batch.id, text, marks }));
      fs.renameSync(`/ipc/out/.reply-${batch.id}.tmp`, `/ipc/out/reply-${batch.id}.json`);
      // Kept to the last 200 messages, cut before a user message, as hako's agent keeps it.
      let kept = [...history, ...turn, { role: 'assistant', content: text }] as { role?: string }[];
      if (kept.length > 200) {
        let from = kept.length - 200;
        while (from < kept.length && kept[from]!.role !== 'user') from++;
        kept = kept.slice(from);
      }
      fs.writeFileSync(`${HISTORY}.tmp`, JSON.stringify(kept));
      fs.renameSync(`${HISTORY}.tmp`, HISTORY);
      busy = false;
      if (again) { again = false; pass(wall()); }
    };
    // One model request; a tool call (read a file of the group folder) is answered and asked again.
    const ask = (): void => {
      const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'system', content: SYSTEM }, ...history, ...turn], tools: TOOLS, stream: true, stream_options: { include_usage: true } });
      const req = http.request({ socketPath: '/run/hako/proxy.sock', path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let sse = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { sse += c; });
        res.on('end', () => {
          let text = '';
          const calls: { id: string; name: string; args: string }[] = [];
          for (const line of sse.split('\n')) {
            if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
            type Delta = { content?: string; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
            const delta = (JSON.parse(line.slice(6)) as { choices: { delta: Delta }[] }).choices[0]?.delta;
            text += delta?.content ?? '';
            for (const c of delta?.tool_calls ?? []) {
              const call = calls[c.index] ??= { id: '', name: '', args: '' };
              call.id ||= c.id ?? '';
              call.name ||= c.function?.name ?? '';
              call.args += c.function?.arguments ?? '';
            }
          }
          if (calls.length === 0) return done(text);
          marks['agent got the whole answer'] ??= wall();
          turn.push({ role: 'assistant', content: text || null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } })) });
          for (const c of calls) {
            let result: string;
            try { result = fs.readFileSync(`/workspace/group/${(JSON.parse(c.args) as { path: string }).path}`, 'utf8'); } catch (err) { result = `error: ${(err as Error).message}`; }
            turn.push({ role: 'tool', tool_call_id: c.id, content: result });
          }
          ask();
        });
      });
      req.end(body);
      marks['model request sent'] ??= wall();
    };
    ask();
  };
  fs.watch('/ipc/in', () => pass(wall()));
  process.stdout.write('ready\n');
}

// ---- the probe ----

const ORDER = ['POST sent', 'host got POST', 'message committed', 'batch renamed', 'agent woke', 'model request sent', 'proxy got request', 'audit committed', 'model headers back', 'agent got the whole answer', 'reply writing', 'host woke', 'reply committed', 'event received'];

export interface FloorResult {
  /** POST → reply event of each measured plain turn, ms. */
  readonly plain: number[];
  /** The same for the turns with one tool call (two model requests). */
  readonly tool: number[];
  /** Median ms from the POST to each mark, in order. */
  readonly hops: { readonly label: string; readonly ms: number; readonly n: number }[];
  readonly note: string;
}

/** Runs figure 1's turns (figure1Turns) against the floor; returns their times and the measured plain turns' hops. */
export async function measureFloor(warmup: number, plain: number, tool: number): Promise<FloorResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-floor-'));
  const model = await startModelServer({ fallback: benchModel });
  const image = imageTag();
  const { args, paths } = runnerDockerArgs(image, dir);
  const name = args[args.indexOf('--name') + 1]!;
  const script = path.join(dir, 'agent.mjs');
  fs.writeFileSync(script, `import fs from 'node:fs';\nimport http from 'node:http';\n(${agent.toString()})(fs, http);\n`, { mode: 0o644 });
  let hostProc: ChildProcess | undefined;
  const cleanup = (): void => {
    try { execFileSync('docker', ['rm', '-f', name], { stdio: 'ignore' }); } catch { /* gone */ }
    hostProc?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => { cleanup(); process.exit(signal === 'SIGINT' ? 130 : 143); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    hostProc = spawn(process.execPath, [import.meta.filename, '--host', dir, model.url, paths.ipcIn, paths.ipcOut, paths.proxySocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = Number(await firstLine(hostProc, /^port (\d+)$/));
    const imageAt = args.indexOf(image);
    const container = spawn('docker', [...args.slice(0, imageAt), '-v', `${script}:/floor/agent.mjs:ro`, '--entrypoint', 'node', image, '/floor/agent.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await firstLine(container, /^(ready)$/);
    const client = new Api(port, 'unused');
    const stream = await client.events('main');
    const hopsOf: Marks[] = []; // the marks of each measured plain turn
    const turn = async (text: string, kind: TurnKind): Promise<number> => {
      const from = stream.received.length;
      const t0 = performance.now();
      await client.post('main', text);
      const { msg, at } = await stream.waitFor((m) => m.role === 'assistant', from, 30_000);
      const expected = text.includes(TOOL_MARKER) ? msg.text === 'done' : msg.text.startsWith('echo: [') && msg.text.endsWith(`: ${text}`);
      if (!expected) throw new Error(`unexpected reply ${JSON.stringify(msg.text)} to ${JSON.stringify(text)}`);
      if (kind === 'plain') hopsOf.push({ ...(msg as unknown as { marks: Marks }).marks, 'POST sent': performance.timeOrigin + t0, 'event received': performance.timeOrigin + at });
      return at - t0;
    };
    const r = await figure1Turns(turn, warmup, plain, tool, 'floor: ');
    stream.close();
    client.close();
    const history = (JSON.parse(fs.readFileSync(path.join(paths.folder, 'history.json'), 'utf8')) as unknown[]).length;
    const hops = ORDER.map((label) => ({ label, at: hopsOf.filter((m) => m[label] !== undefined).map((m) => m[label]! - m['POST sent']!) }))
      .filter((h) => h.at.length > 0).map((h) => ({ label: h.label, ms: median(h.at), n: h.at.length })).sort((x, y) => x.ms - y.ms);
    return { plain: r.plain, tool: r.tool, hops, note: `model requests ${model.requests.length}, history ${history} messages, request ${model.requests[0]!.body.length} → ${model.requests.at(-1)!.body.length} bytes` };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
    await model.close();
  }
}

/** Resolves with the first capture of the first stdout line of `child` that matches; rejects if it exits first. */
function firstLine(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const exited = (code: number | null): void => reject(new Error(`${child.spawnfile} exited (${String(code)}) before it was ready`));
    child.once('exit', exited);
    lines.on('line', (line) => {
      const m = re.exec(line);
      if (!m) return;
      child.off('exit', exited);
      resolve(m[1]!);
    });
  });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ options: { turns: { type: 'string', default: '60' }, host: { type: 'boolean', default: false } }, allowPositionals: true });
  if (values.host) {
    const [dir, modelUrl, inDir, outDir, socketPath] = positionals as [string, string, string, string, string];
    host(dir, modelUrl, inDir, outDir, socketPath);
  } else {
    const turns = Number(values.turns);
    if (!Number.isInteger(turns) || turns < 1) throw new Error(`--turns must be a whole number ≥ 1, got ${values.turns}`);
    const r = await measureFloor(20, turns, Math.round((turns * 40) / 60));
    const line = (ms: number[]) => `median ${median(ms).toFixed(2)} ms, p95 ${percentile(ms, 95).toFixed(2)} ms, n ${ms.length}`;
    console.log(`floor of figure 1: no tool ${line(r.plain)}; one tool call ${line(r.tool)} (${r.note})`);
    console.log('median ms from the POST to each mark, in order of the medians (step from the row before)');
    let prev = 0;
    for (const h of r.hops) {
      console.log(`  ${h.ms.toFixed(2).padStart(7)}  (+${(h.ms - prev).toFixed(2).padStart(5)})  ${h.label}${h.n < r.plain.length ? `  [n ${h.n}]` : ''}`);
      prev = h.ms;
    }
  }
}
