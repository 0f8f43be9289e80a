// Runs a real hako host (`node bin/hako.mjs start`) as a child process with its own
// HAKO_HOME, HAKO_CONFIG and port, and talks to it through its HTTP API like a client.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface ApiMessage { id: string; role: 'user' | 'assistant'; sender: string; text: string; ts: string }

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface HakoOptions {
  /** Model and provider variables (HAKO_MODEL, OPENAI_BASE_URL, …). */
  readonly env: Record<string, string>;
  /** Reuse the state of an earlier run (restart tests). */
  readonly home?: string;
  readonly configDir?: string;
}

export class HakoProcess {
  readonly home: string;
  readonly configDir: string;
  readonly port: number;
  readonly token: string;
  readonly child: ChildProcess;
  output = '';

  private constructor(init: { home: string; configDir: string; port: number; token: string; child: ChildProcess }) {
    this.home = init.home;
    this.configDir = init.configDir;
    this.port = init.port;
    this.token = init.token;
    this.child = init.child;
  }

  static async start(opts: HakoOptions): Promise<HakoProcess> {
    const home = opts.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-home-'));
    const configDir = opts.configDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !/^(HAKO_|ANTHROPIC_|OPENAI_)/.test(k)) env[k] = v;
    }
    // The scripted model is an OpenAI-compatible server on loopback, whose default context
    // budget is a local model's 8192 tokens: tests of other things would compact (and spend
    // scripted answers on summaries). They get a large budget unless they set one.
    Object.assign(env, { HAKO_HOME: home, HAKO_CONFIG: configDir, HAKO_HTTP_PORT: String(port), HAKO_LOG_LEVEL: 'debug', HAKO_CONTEXT_TOKENS: '200000' }, opts.env);
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'hako.mjs'), 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const h = new HakoProcess({ home, configDir, port, token: '', child });
    const collect = (c: Buffer) => { h.output += c.toString(); };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hako did not start within 180 s:\n${h.output}`)), 180_000);
      const check = () => {
        if (h.output.includes('hako is running')) { clearTimeout(timer); child.stdout!.off('data', check); resolve(); }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`hako exited with ${code} before it was ready:\n${h.output}`)); });
    });
    (h as { token: string }).token = opts.env.HAKO_HTTP_TOKEN ?? fs.readFileSync(path.join(home, 'http-token'), 'utf8').trim();
    return h;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async api(p: string, init: RequestInit & { token?: string | null } = {}): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) };
    const token = init.token === undefined ? this.token : init.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(this.base + p, { ...init, headers });
    const text = await res.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body };
  }

  async post(group: string, text: string, sender = 'tester'): Promise<string> {
    const r = await this.api(`/api/groups/${group}/messages`, { method: 'POST', body: JSON.stringify({ text, sender }) });
    if (r.status !== 202) throw new Error(`POST failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id as string;
  }

  async messages(group: string, after?: string): Promise<ApiMessage[]> {
    const r = await this.api(`/api/groups/${group}/messages${after ? `?after=${after}` : ''}`);
    if (r.status !== 200) throw new Error(`GET failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.messages as ApiMessage[];
  }

  /** Waits until `count` assistant messages follow message `after` (event-driven via SSE, with a deadline). */
  async waitForReplies(group: string, after: string, count = 1, timeoutMs = 120_000): Promise<ApiMessage[]> {
    const ctrl = new AbortController();
    const deadline = setTimeout(() => ctrl.abort(), timeoutMs);
    try {
      const res = await fetch(`${this.base}/api/groups/${group}/events`, { headers: { authorization: `Bearer ${this.token}` }, signal: ctrl.signal });
      const replies = async () => (await this.messages(group, after)).filter((m) => m.role === 'assistant');
      let found = await replies();
      if (found.length >= count) return found;
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        if (!chunk.includes('"role":"assistant"')) continue;
        found = await replies();
        if (found.length >= count) return found;
      }
      throw new Error('event stream ended');
    } catch (err) {
      if (ctrl.signal.aborted) throw new Error(`no ${count} replies in ${group} within ${timeoutMs} ms; host output:\n${this.output.slice(-4000)}`);
      throw err;
    } finally {
      clearTimeout(deadline);
      ctrl.abort();
    }
  }

  /** Runs a `hako` subcommand against the same state. */
  async cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli(args, { HAKO_HOME: this.home, HAKO_CONFIG: this.configDir, HAKO_HTTP_PORT: String(this.port), ...extraEnv });
  }

  /** The host's structured log (HAKO_HOME/logs/hako.log), parsed. */
  logEvents(): { ts: string; level: string; msg: string; [k: string]: unknown }[] {
    const file = path.join(this.home, 'logs', 'hako.log');
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  /** Waits (bounded) until the host has logged an event matching `pred`; returns it. */
  async waitForLog(pred: (e: { msg: string; [k: string]: unknown }) => boolean, timeoutMs = 30_000): Promise<{ msg: string; [k: string]: unknown }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logEvents().find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching log event within ${timeoutMs} ms; host output:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolves when the host process has ended, with how it ended. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve({ code: this.child.exitCode, signal: this.child.signalCode });
    return new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
  }

  /** Waits until the host reports nothing waiting or running (the status has no event, so a bounded poll). */
  async settled(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = (await this.api('/api/status')).body;
      const busy = s.queue.running.length + s.queue.waiting.length + s.groups.reduce((n: number, g: { waiting: number }) => n + g.waiting, 0);
      if (busy === 0) return;
      if (Date.now() > deadline) throw new Error(`host did not settle: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Graceful stop (SIGTERM), resolving with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill(signal);
    return exited;
  }

  /** Removes the state folders (call after stop). */
  cleanup(): void {
    fs.rmSync(this.home, { recursive: true, force: true });
    fs.rmSync(this.configDir, { recursive: true, force: true });
  }
}

export async function runCli(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(HAKO_|ANTHROPIC_|OPENAI_)/.test(k)) full[k] = v;
  Object.assign(full, env);
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'hako.mjs'), ...args], { env: full, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (c) => { stdout += c; });
  child.stderr.on('data', (c) => { stderr += c; });
  child.stdin.end(input ?? '');
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  return { code, stdout, stderr };
}
