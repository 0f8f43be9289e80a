// A scripted stand-in for the OpenAI Chat Completions and Anthropic Messages APIs on loopback.
// Tests queue turns; the real SDKs (or the host proxy) talk to it over HTTP in the providers' real
// wire formats, streaming included, and every request is recorded for assertions.
// Invariant: only a well-formed completion request consumes a scripted turn; model listings,
// malformed bodies, unknown paths and outage replies are recorded but leave the script untouched.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter, once } from 'node:events';

/**
 * Holds a streamed reply mid-way: the text up to character `at` is written (and flushed),
 * then nothing more until `until` settles; then the rest. A non-streamed reply ignores it.
 */
export interface StreamPause { at: number; until: Promise<unknown> }

export type ScriptedTurn =
  | { text: string; pause?: StreamPause }
  | { toolCalls: { name: string; args: Record<string, unknown>; id?: string }[]; text?: string }
  | { status: number; error: string }
  | ((req: RecordedRequest) => ScriptedTurn);

export interface RecordedRequest {
  provider: 'openai' | 'anthropic';
  method: string;
  /** The raw request target, query string included (the Anthropic beta API adds `?beta=true`). */
  path: string;
  /** Lower-cased names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: string;
  /** The parsed body, or undefined when it was empty or not JSON. */
  json: any;
  stream: boolean;
}

export interface ModelServer {
  url: string;
  openaiBaseURL: string;
  anthropicBaseURL: string;
  requests: RecordedRequest[];
  script(...turns: ScriptedTurn[]): void;
  setDown(down: boolean): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

type Provider = RecordedRequest['provider'];
type StaticTurn = Exclude<ScriptedTurn, (req: RecordedRequest) => ScriptedTurn>;
type ToolCall = { id: string; name: string; args: Record<string, unknown> };
/** One successful model turn, provider-neutral; the writers below only translate it. */
type Completion = { id: string; model: string; text: string; calls: ToolCall[]; usage: { input: number; output: number } };
/** How a stream writes its text: the pause, if any, and who is told of each written piece. */
type TextWriting = { pause: StreamPause | undefined; written: (piece: string) => void };

const MODEL_ID = 'test-model';

export interface ModelServerOptions {
  port?: number;
  fallback?: (req: RecordedRequest) => ScriptedTurn;
  /** Told right after each piece of a streamed reply's text is written to the socket (the bench's clock). */
  onTextWritten?: (piece: string, req: RecordedRequest) => void;
}

export async function startModelServer(opts: ModelServerOptions = {}): Promise<ModelServer> {
  const requests: RecordedRequest[] = [];
  const queue: ScriptedTurn[] = [];
  const arrivals = new EventEmitter();
  let down = false;
  // Deterministic ids keep recorded conversations stable across runs, which makes tests diffable.
  let seq = 0;
  const nextId = (prefix: string): string => `${prefix}${String(++seq).padStart(4, '0')}`;

  function nextTurn(req: RecordedRequest): StaticTurn {
    let turn: ScriptedTurn = queue.shift() ?? opts.fallback ?? echo;
    while (typeof turn === 'function') turn = turn(req);
    return turn;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const headers = flattenHeaders(req);
    const target = req.url ?? '/';
    const pathname = new URL(target, 'http://loopback').pathname;
    let json: unknown;
    let malformed = false;
    if (body !== '') {
      try {
        json = JSON.parse(body);
      } catch {
        malformed = true;
      }
    }
    const recorded: RecordedRequest = {
      provider: providerOf(pathname, headers),
      method: req.method ?? 'GET',
      path: target,
      headers,
      body,
      json,
      stream: isRecord(json) && json['stream'] === true,
    };
    requests.push(recorded);
    arrivals.emit('request');

    const p = recorded.provider;
    if (down) return sendError(res, p, 503, 'model server is down (setDown(true) simulates an outage)');
    if (malformed) return sendError(res, p, 400, `request body is not valid JSON: ${body.slice(0, 80)}`);
    const route = `${recorded.method} ${pathname}`;
    if (route === 'GET /v1/models') return sendJson(res, 200, modelList(p));
    if (route !== 'POST /v1/chat/completions' && route !== 'POST /v1/messages') {
      return sendError(res, p, 404, `no route for ${route}; served: POST /v1/chat/completions, POST /v1/messages, GET /v1/models`);
    }
    if (!isRecord(json)) return sendError(res, p, 400, 'request body must be a JSON object');

    let turn: StaticTurn;
    try {
      turn = nextTurn(recorded);
    } catch (err) {
      // A throwing function turn is a bug in the test; surface it to the client instead of crashing the server.
      return sendError(res, p, 500, `scripted turn threw: ${err instanceof Error ? err.message : String(err)}`);
    }
    if ('status' in turn) return sendError(res, p, turn.status, turn.error);
    const [idPrefix, callPrefix] = p === 'openai' ? ['chatcmpl-', 'call_'] : ['msg_', 'toolu_'];
    const calls = 'toolCalls' in turn ? turn.toolCalls.map((c) => ({ ...c, id: c.id ?? nextId(callPrefix) })) : [];
    const text = turn.text ?? '';
    const c: Completion = {
      id: nextId(idPrefix),
      model: typeof json['model'] === 'string' ? json['model'] : MODEL_ID,
      text,
      calls,
      usage: { input: estimateTokens(body), output: estimateTokens(text + JSON.stringify(calls)) },
    };
    const writing: TextWriting = { pause: 'pause' in turn ? turn.pause : undefined, written: (piece) => opts.onTextWritten?.(piece, recorded) };
    if (p === 'anthropic') return recorded.stream ? streamAnthropic(res, c, writing) : sendJson(res, 200, anthropicMessage(c));
    const options = json['stream_options'];
    const includeUsage = isRecord(options) && options['include_usage'] === true;
    return recorded.stream ? streamOpenAI(res, c, includeUsage, writing) : sendJson(res, 200, openaiCompletion(c));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(err), type: 'server_error', code: null } });
      else res.destroy(err instanceof Error ? err : undefined);
    });
  });
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    requests,
    script(...turns) {
      for (const turn of turns) validateTurn(turn);
      queue.push(...turns);
    },
    setDown(value) {
      down = value;
    },
    waitForRequests(n, timeoutMs = 5000) {
      if (requests.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const onRequest = (): void => {
          if (requests.length < n) return;
          clearTimeout(timer);
          arrivals.off('request', onRequest);
          resolve();
        };
        const timer = setTimeout(() => {
          arrivals.off('request', onRequest);
          reject(new Error(`model server: expected ${n} requests within ${timeoutMs}ms, got ${requests.length}`));
        }, timeoutMs);
        arrivals.on('request', onRequest);
      });
    },
    async close() {
      const closed = once(server, 'close');
      server.close();
      // SDK fetch clients keep idle sockets alive; without this, close() waits for their timeout.
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The default turn: repeat the last user text so a test can see what reached the model. */
function echo(req: RecordedRequest): ScriptedTurn {
  const messages: unknown[] = Array.isArray(req.json?.messages) ? req.json.messages : [];
  const last = messages.at(-1);
  // Answering tool results with text ends an agent loop, the same way for both providers.
  if (isRecord(last) && last['role'] === 'tool') return { text: 'done' };
  const user = messages.findLast((m) => isRecord(m) && m['role'] === 'user');
  const content = isRecord(user) ? user['content'] : undefined;
  if (typeof content === 'string') return { text: `echo: ${content}` };
  const blocks = Array.isArray(content) ? content.filter(isRecord) : [];
  const texts = blocks.filter((b) => b['type'] === 'text').map((b) => String(b['text']));
  if (texts.length === 0 && blocks.some((b) => b['type'] === 'tool_result')) return { text: 'done' };
  return { text: `echo: ${texts.join('\n')}` };
}

function validateTurn(turn: ScriptedTurn): void {
  if (typeof turn === 'function') return;
  const ok =
    ('status' in turn && Number.isInteger(turn.status) && turn.status >= 400 && typeof turn.error === 'string') ||
    ('toolCalls' in turn && Array.isArray(turn.toolCalls)) ||
    ('text' in turn && typeof turn.text === 'string' && validPause(turn.text, 'pause' in turn ? turn.pause : undefined));
  if (!ok) {
    throw new TypeError(
      `model server: a scripted turn must be { text, pause? }, { toolCalls, text? }, { status >= 400, error } or a function (pause: { at: 0…text length, until: a promise }); got ${JSON.stringify(turn)}`,
    );
  }
}

function validPause(text: string, p: StreamPause | undefined): boolean {
  if (p === undefined) return true;
  return Number.isInteger(p.at) && p.at >= 0 && p.at <= text.length && typeof p.until?.then === 'function';
}

/**
 * Writes a reply's text as `send` chunks: all at once without a pause (the default, so existing
 * scripts stream exactly as before), else the text before the pause, a wait, then the rest.
 */
async function writeText(text: string, writing: TextWriting, send: (piece: string) => void): Promise<void> {
  const put = (part: string) => {
    for (const piece of pieces(part)) {
      send(piece);
      writing.written(piece);
    }
  };
  const pause = writing.pause;
  if (!pause) return put(text);
  put(text.slice(0, pause.at));
  await pause.until;
  put(text.slice(pause.at));
}

// --- OpenAI Chat Completions -------------------------------------------------------------

const openaiUsage = (c: Completion) => ({
  prompt_tokens: c.usage.input,
  completion_tokens: c.usage.output,
  total_tokens: c.usage.input + c.usage.output,
});

function openaiCompletion(c: Completion) {
  const toolCalls = c.calls.map((call) => ({
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: JSON.stringify(call.args) },
  }));
  // The real API sends null content alongside tool calls when the model said nothing.
  const content = c.text === '' && toolCalls.length > 0 ? null : c.text;
  const message = { role: 'assistant', content, refusal: null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) };
  return {
    id: c.id,
    object: 'chat.completion',
    created: nowSeconds(),
    model: c.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: toolCalls.length > 0 ? 'tool_calls' : 'stop' }],
    usage: openaiUsage(c),
  };
}

async function streamOpenAI(res: ServerResponse, c: Completion, includeUsage: boolean, writing: TextWriting): Promise<void> {
  const created = nowSeconds();
  const write = (fields: object): void =>
    writeSSE(res, undefined, { id: c.id, object: 'chat.completion.chunk', created, model: c.model, ...fields });
  const chunk = (delta: object, finish: string | null = null): void =>
    write({ choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  startSSE(res);
  chunk({ role: 'assistant', content: '' });
  await writeText(c.text, writing, (piece) => chunk({ content: piece }));
  c.calls.forEach((call, index) => {
    // Only the first delta of a call carries its identity; later ones append to `arguments` by index.
    chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] });
    for (const piece of pieces(JSON.stringify(call.args))) chunk({ tool_calls: [{ index, function: { arguments: piece } }] });
  });
  chunk({}, c.calls.length > 0 ? 'tool_calls' : 'stop');
  // The real API reports usage in one extra chunk with no choices, and only when asked to.
  if (includeUsage) write({ choices: [], usage: openaiUsage(c) });
  res.end('data: [DONE]\n\n');
}

// --- Anthropic Messages ------------------------------------------------------------------

type AnthropicBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: object };

function anthropicMessage(c: Completion) {
  const content: AnthropicBlock[] = [];
  if (c.text !== '' || c.calls.length === 0) content.push({ type: 'text', text: c.text });
  for (const call of c.calls) content.push({ type: 'tool_use', id: call.id, name: call.name, input: call.args });
  return {
    id: c.id,
    type: 'message',
    role: 'assistant',
    model: c.model,
    content,
    stop_reason: c.calls.length > 0 ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: c.usage.input, output_tokens: c.usage.output },
  };
}

async function streamAnthropic(res: ServerResponse, c: Completion, writing: TextWriting): Promise<void> {
  const full = anthropicMessage(c);
  const send = (type: string, data: object): void => writeSSE(res, type, { type, ...data });
  startSSE(res);
  send('message_start', {
    message: { ...full, content: [], stop_reason: null, usage: { input_tokens: c.usage.input, output_tokens: 1 } },
  });
  for (const [index, block] of full.content.entries()) {
    const start = block.type === 'text' ? { ...block, text: '' } : { ...block, input: {} };
    send('content_block_start', { index, content_block: start });
    if (index === 0) send('ping', {});
    if (block.type === 'text') await writeText(block.text, writing, (text) => send('content_block_delta', { index, delta: { type: 'text_delta', text } }));
    else for (const partial_json of pieces(JSON.stringify(block.input))) send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } });
    send('content_block_stop', { index });
  }
  send('message_delta', { delta: { stop_reason: full.stop_reason, stop_sequence: null }, usage: { output_tokens: c.usage.output } });
  send('message_stop', {});
  res.end();
}

// --- HTTP plumbing -----------------------------------------------------------------------

function providerOf(pathname: string, headers: Record<string, string>): Provider {
  if (pathname === '/v1/messages') return 'anthropic';
  if (pathname === '/v1/chat/completions') return 'openai';
  // Shared or unknown paths (model listing, typos): the Anthropic SDK always sends these headers.
  return 'anthropic-version' in headers || 'x-api-key' in headers ? 'anthropic' : 'openai';
}

function modelList(p: Provider) {
  if (p === 'openai') {
    return { object: 'list', data: [{ id: MODEL_ID, object: 'model', created: 0, owned_by: 'hako-test' }] };
  }
  const model = { type: 'model', id: MODEL_ID, display_name: 'Test Model', created_at: '2025-01-01T00:00:00Z' };
  return { data: [model], has_more: false, first_id: MODEL_ID, last_id: MODEL_ID };
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

function sendError(res: ServerResponse, p: Provider, status: number, message: string): void {
  if (p === 'anthropic') {
    const type = ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
    return sendJson(res, status, { type: 'error', error: { type, message } });
  }
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  sendJson(res, status, { error: { message, type, param: null, code: status === 429 ? 'rate_limit_exceeded' : null } });
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function startSSE(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

function writeSSE(res: ServerResponse, event: string | undefined, data: unknown): void {
  res.write(`${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`);
}

/** Splits by code point into up to `n` pieces, so clients must reassemble like they do in production. */
function pieces(s: string, n = 3): string[] {
  const chars = Array.from(s);
  const size = Math.max(1, Math.ceil(chars.length / n));
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headersDistinct)) {
    if (value !== undefined) out[name] = value.join(', ');
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const estimateTokens = (s: string): number => Math.max(1, Math.ceil(s.length / 4));
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
