// What every suite shares: a scripted model server plus a real hako host (test/support),
// a keep-alive HTTP client for the API, and a Server-Sent Events reader that stops the clock
// when the assistant message arrives — no polling.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HakoProcess } from '../../test/support/hako.ts';
import { startModelServer, type ModelServer, type RecordedRequest, type ScriptedTurn } from '../../test/support/model-server.ts';
import { Store, type Group } from '../../src/core/store.ts';
import { containerSpec, LABEL_HOME, LABEL_MANAGED, prepareGroupDirs } from '../../src/core/runner.ts';
import { loadConfig } from '../../src/core/config.ts';
import { groupPaths, type GroupPaths } from '../../src/core/paths.ts';
import { hardenedArgs } from '../../src/runtime/docker.ts';

const exec = promisify(execFile);

export interface ApiMsg { id: string; role: 'user' | 'assistant'; sender: string; text: string; ts: string }

/** Prints a progress line to stderr (stdout carries the table). */
export function progress(line: string): void {
  process.stderr.write(`  … ${line}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The marker that makes the bench model answer with one tool call before its text. */
export const TOOL_MARKER = 'please-use-a-tool';

/** Pause after a reply before the next message, so its `done` is applied and the container is idle-warm. */
export const GAP_MS = 150;

/**
 * The bench model: answers at once. A user text containing TOOL_MARKER gets one
 * `read_file MEMORY.md` call first; a tool result is answered with "done" (the echo default).
 */
export function benchModel(req: RecordedRequest): ScriptedTurn {
  const messages: any[] = Array.isArray(req.json?.messages) ? req.json.messages : [];
  const last = messages.at(-1);
  const asksForTool = last && last.role === 'user' && (typeof last.content === 'string' ? last.content : JSON.stringify(last.content)).includes(TOOL_MARKER);
  if (asksForTool) return { toolCalls: [{ name: 'read_file', args: { path: 'MEMORY.md' } }] };
  return echo(req);
}

export interface Bench {
  readonly h: HakoProcess;
  readonly model: ModelServer;
  readonly api: Api;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  /** Extra groups registered (in the database, before start) in addition to main. */
  readonly groups?: readonly string[];
  /** Told when the model server has written a piece of a streamed reply's text (see ModelServerOptions). */
  readonly onTextWritten?: (piece: string, req: RecordedRequest) => void;
}

/**
 * `docker run` arguments for a container exactly as the runner starts one — flags, mounts,
 * environment, user, limits — for group "bench" of a throwaway home under `dir`, whose
 * folders the runner's own helper prepares. Probes swap the entrypoint or watch its start.
 */
export function runnerDockerArgs(image: string, dir: string): { args: string[]; paths: GroupPaths } {
  const model = 'openai/test-model';
  const config = loadConfig({ HAKO_HOME: path.join(dir, 'home'), HAKO_CONFIG: path.join(dir, 'config'), HAKO_MODEL: model });
  prepareGroupDirs(config.home, 'bench');
  const group: Group = { name: 'bench', isMain: false, trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '' };
  return { args: hardenedArgs(containerSpec(config, image, group, model)), paths: groupPaths(config.home, 'bench') };
}

/** Registers groups straight in the database of a fresh state folder (fast for 1,000). */
export function seedState(groups: readonly string[]): { home: string; configDir: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-home-'));
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-config-'));
  const store = new Store(path.join(home, 'hako.db'));
  try {
    store.transaction(() => {
      store.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
      for (const g of groups) store.addGroup({ name: g, isMain: false, trigger: null, model: null });
    });
  } finally {
    store.close();
  }
  for (const g of ['main', ...groups]) prepareGroupDirs(home, g);
  return { home, configDir };
}

export async function startBench(opts: StartOptions = {}): Promise<Bench> {
  const model = await startModelServer({ fallback: benchModel, ...(opts.onTextWritten ? { onTextWritten: opts.onTextWritten } : {}) });
  const state = seedState(opts.groups ?? []);
  let h: HakoProcess;
  try {
    h = await HakoProcess.start({
      home: state.home,
      configDir: state.configDir,
      env: {
        HAKO_MODEL: 'openai/test-model',
        OPENAI_BASE_URL: model.openaiBaseURL,
        OPENAI_API_KEY: 'sk-bench',
        HAKO_LOG_LEVEL: 'info',
        ...opts.env,
      },
    });
  } catch (err) {
    await model.close();
    fs.rmSync(state.home, { recursive: true, force: true });
    fs.rmSync(state.configDir, { recursive: true, force: true });
    throw err;
  }
  const api = new Api(h.port, h.token);
  return {
    h, model, api,
    async close() {
      api.close();
      await h.stop();
      await removeContainers(h.home);
      h.cleanup();
      await model.close();
    },
  };
}

/** The model server's default turn, repeated here because a fallback replaces it. */
function echo(req: RecordedRequest): ScriptedTurn {
  const messages: any[] = Array.isArray(req.json?.messages) ? req.json.messages : [];
  const last = messages.at(-1);
  if (last && last.role === 'tool') return { text: 'done' };
  const user = messages.findLast((m) => m && m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return { text: `echo: ${content}` };
  const texts = Array.isArray(content) ? content.filter((b: any) => b?.type === 'text').map((b: any) => String(b.text)) : [];
  return { text: `echo: ${texts.join('\n')}` };
}

/** Removes any container a host of this state folder left (a crash in the middle of a bench). */
export async function removeContainers(home: string): Promise<void> {
  const { stdout } = await exec('docker', ['ps', '-aq', '--filter', `label=${LABEL_MANAGED}=1`, '--filter', `label=${LABEL_HOME}=${home}`]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length) await exec('docker', ['rm', '-f', ...ids]).catch(() => {});
}

/** hako containers on this engine that are not ours (other developers' tests). */
export async function foreignHakoContainers(): Promise<number> {
  const { stdout } = await exec('docker', ['ps', '-q', '--filter', `label=${LABEL_MANAGED}=1`]);
  return stdout.split('\n').filter(Boolean).length;
}

/** A minimal keep-alive JSON client for the host API. */
export class Api {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  readonly port: number;
  readonly token: string;

  constructor(port: number, token: string) {
    this.port = port;
    this.token = token;
  }

  request(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request({
        host: '127.0.0.1', port: this.port, method, path: p, agent: this.#agent,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try { parsed = JSON.parse(text); } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Posts a message that engages the agent in any group; resolves with its id. */
  async post(group: string, text: string): Promise<string> {
    const r = await this.request('POST', `/api/groups/${group}/messages`, { text, sender: 'bench', direct: true });
    if (r.status !== 202) throw new Error(`POST ${group} failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id as string;
  }

  async messages(group: string, after?: string): Promise<ApiMsg[]> {
    const r = await this.request('GET', `/api/groups/${group}/messages${after ? `?after=${after}` : ''}`);
    if (r.status !== 200) throw new Error(`GET ${group} failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.messages as ApiMsg[];
  }

  async status(): Promise<any> {
    return (await this.request('GET', '/api/status')).body;
  }

  /** Opens the group's event stream; resolves once the host has accepted the subscription. */
  events(group: string): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: this.port, method: 'GET', path: `/api/groups/${group}/events`,
        headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
      }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`events ${group}: ${res.statusCode}`));
        const s = new EventStream(req, res);
        // The host writes ": connected" once it has subscribed.
        s.connected.then(() => resolve(s), reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/**
 * One group's SSE stream, parsed into messages; waiters are resolved the moment an event lands.
 * `working` events are skipped and `partial` ones (the reply as it is written) go to `onPartial`.
 */
export class EventStream {
  readonly #req: http.ClientRequest;
  readonly received: { msg: ApiMsg; at: number }[] = [];
  readonly #waiters: { pred: (m: ApiMsg) => boolean; resolve: (v: { msg: ApiMsg; at: number }) => void; from: number }[] = [];
  readonly connected: Promise<void>;
  /** Called for every event as it lands (in addition to `received`). */
  onEvent: ((msg: ApiMsg, at: number) => void) | undefined;
  /** Called for every `partial` event as it lands, with its text so far. */
  onPartial: ((text: string, at: number) => void) | undefined;
  #buf = '';

  constructor(req: http.ClientRequest, res: http.IncomingMessage) {
    this.#req = req;
    let onConnected!: () => void;
    this.connected = new Promise((r) => { onConnected = r; });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const at = performance.now();
      this.#buf += chunk;
      let i: number;
      while ((i = this.#buf.indexOf('\n\n')) >= 0) {
        const block = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        if (block.startsWith(': connected')) onConnected();
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data) continue;
        const type = /^event: (.+)$/m.exec(block)?.[1] ?? 'message';
        if (type === 'partial') this.onPartial?.((JSON.parse(data) as { text: string }).text, at);
        if (type !== 'message') continue;
        const msg = JSON.parse(data) as ApiMsg;
        this.received.push({ msg, at });
        this.onEvent?.(msg, at);
        for (let w = 0; w < this.#waiters.length; w++) {
          const waiter = this.#waiters[w]!;
          if (this.received.length - 1 >= waiter.from && waiter.pred(msg)) {
            this.#waiters.splice(w--, 1);
            waiter.resolve({ msg, at });
          }
        }
      }
    });
    res.on('error', () => {});
  }

  /** Resolves with the first event from index `from` on that matches (already received ones count). */
  waitFor(pred: (m: ApiMsg) => boolean, from: number, timeoutMs: number): Promise<{ msg: ApiMsg; at: number }> {
    for (let i = from; i < this.received.length; i++) if (pred(this.received[i]!.msg)) return Promise.resolve(this.received[i]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const idx = this.#waiters.indexOf(waiter);
        if (idx >= 0) this.#waiters.splice(idx, 1);
        reject(new Error(`no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = { pred, from, resolve: (v: { msg: ApiMsg; at: number }) => { clearTimeout(timer); resolve(v); } };
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    this.#req.destroy();
  }
}

/** Figure 1's samples: plain turns of the warm-up, then the measured plain and tool turns (ms). */
export interface WarmSamples {
  /** Plain turns among the first `warmup` turns after the cold start. */
  readonly early: number[];
  readonly plain: number[];
  readonly tool: number[];
}

export type TurnKind = 'first' | 'warm-up' | 'plain' | 'tool';

/**
 * Figure 1's turns, for any runner of one turn (hako's or the floor's): one first turn (not
 * recorded), `warmup` turns alternating plain/tool (their plain times are `early`), then
 * `plain` + `tool` measured turns, alternating; GAP_MS after each. A tool turn's text holds
 * TOOL_MARKER. `turn` returns the turn's time in ms.
 */
export async function figure1Turns(turn: (text: string, kind: TurnKind) => Promise<number>, warmup: number, plain: number, tool: number, label = ''): Promise<WarmSamples> {
  await turn('first message: starts the container', 'first');
  await sleep(GAP_MS);
  const out: WarmSamples = { early: [], plain: [], tool: [] };
  for (let i = 0; i < warmup; i++) {
    if (i % 2 === 1) await turn(`${TOOL_MARKER} warm-up ${i}`, 'warm-up');
    else out.early.push(await turn(`warm-up ${i}`, 'warm-up'));
    await sleep(GAP_MS);
  }
  const total = plain + tool;
  for (let i = 0, p = 0, t = 0; p < plain || t < tool; i++) {
    const useTool = t < tool && (p >= plain || i % 2 === 1);
    if (useTool) out.tool.push(await turn(`${TOOL_MARKER} sample ${t++}`, 'tool'));
    else out.plain.push(await turn(`sample ${p++}`, 'plain'));
    if ((p + t) % 20 === 0) progress(`${label}warm turns ${p + t}/${total}`);
    await sleep(GAP_MS);
  }
  return out;
}

/**
 * One timed turn: the clock starts just before the POST and stops when the group's event
 * stream delivers the assistant reply; the reply is then confirmed through
 * GET /messages?after=<id> (not timed). Returns milliseconds.
 */
export async function timedTurn(api: Api, stream: EventStream, group: string, text: string, timeoutMs = 60_000): Promise<number> {
  const from = stream.received.length;
  const t0 = performance.now();
  const id = await api.post(group, text);
  const { msg, at } = await stream.waitFor((m) => m.role === 'assistant', from, timeoutMs);
  const ms = at - t0;
  const after = await api.messages(group, id);
  if (!after.some((m) => m.id === msg.id && m.role === 'assistant')) throw new Error(`reply ${msg.id} is not readable through GET /messages?after=${id}`);
  return ms;
}
