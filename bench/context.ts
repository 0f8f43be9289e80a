// Measures the context budget on a 1,000-turn conversation, through the real turn (runBatch)
// and the real OpenAI provider against the scripted model server (test/support/model-server.ts):
// the bytes one request sends with the old cut (history trimmed at 200 messages / 400k
// characters, no budget) and with a small budget (compaction), and how long a compaction
// takes. Run: node bench/context.ts [budget ...]   (default budgets: 8192 32768)

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HISTORY_FILE } from '../protocol/container.ts';
import { appendHistory } from '../agent/history.ts';
import { Outbox } from '../agent/outbox.ts';
import { providerFor } from '../agent/providers/index.ts';
import type { Message } from '../agent/providers/provider.ts';
import { runBatch } from '../agent/turn.ts';
import { startModelServer } from '../test/support/model-server.ts';

const TURNS = 1000;
const RUNS = 5;

/** A plausible turn: a question, one bash call with 1.5 kB of output, a 400-byte answer. */
function turn(n: number): Message[] {
  return [
    { role: 'user', text: `[2026-01-01T10:00:00.000Z] alice: turn ${n}: please file the note about customer ${n} and tell me what is open`.padEnd(200, '.') },
    { role: 'assistant', text: '', toolCalls: [{ id: `c${n}`, name: 'bash', args: { command: `cat notes/customer-${n}.md` } }] },
    { role: 'tool', toolCallId: `c${n}`, name: 'bash', text: `# customer ${n}\n`.padEnd(1500, 'x'), isError: false },
    { role: 'assistant', text: `Filed customer ${n}. Open: the quote and a follow-up call.`.padEnd(400, '.'), toolCalls: [] },
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const budgets = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const server = await startModelServer();
  const provider = await providerFor('openai/test-model', { baseURL: server.openaiBaseURL, stream: false, maxRetries: 0 });
  const conversation = Array.from({ length: TURNS }, (_, i) => turn(i + 1)).flat();
  const root = await mkdtemp(join(tmpdir(), 'hako-bench-context-'));
  let seq = 0;

  /** One turn on a group folder whose history file holds `history`; returns the turn's request body size and the compaction time. */
  async function measure(history: readonly Message[], contextTokens: number, cut: boolean) {
    const workspace = join(root, `g${++seq}`);
    const file = join(workspace, HISTORY_FILE);
    await mkdir(dirname(file), { recursive: true });
    await mkdir(join(root, 'out'), { recursive: true });
    if (cut) await appendHistory(file, [], history);
    else await writeFile(file, JSON.stringify({ v: 1, messages: history }));
    const first = server.requests.length;
    const logs: Record<string, unknown>[] = [];
    await runBatch({ v: 1, id: `b${seq}`, type: 'batch', messages: [{ id: `m${seq}`, sender: 'alice', text: 'what is still open?', ts: '2026-01-02T10:00:00.000Z' }] }, {
      provider, outbox: new Outbox(join(root, 'out')), requests: { send: async () => { throw new Error('no host'); } },
      log: (event, fields = {}) => { logs.push({ event, ...fields }); }, signal: new AbortController().signal,
      settings: { assistantName: 'hako', group: 'team', isMain: false, workspace, globalDir: join(root, 'global'), maxSteps: 4, contextTokens },
    });
    const sent = server.requests.slice(first).filter((r) => r.path.endsWith('/chat/completions'));
    const turnReq = sent.at(-1)!;
    const compacted = logs.find((l) => l.event === 'history_compacted');
    return { bytes: Buffer.byteLength(turnReq.body), summaryBytes: sent.length > 1 ? Buffer.byteLength(sent[0]!.body) : 0, ms: compacted ? Number(compacted.ms) : null, folded: compacted?.folded };
  }

  try {
    const before = await measure(conversation, 10_000_000, true);
    console.log(`${TURNS}-turn conversation (${conversation.length} messages, ${Buffer.byteLength(JSON.stringify(conversation))} bytes of history as JSON)`);
    console.log(`before (cut at 200 messages / 400k characters, no budget): ${before.bytes} bytes per request`);
    for (const budget of budgets.length ? budgets : [8192, 32_768]) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await measure(conversation, budget, false));
      const r = runs[0]!;
      console.log(`after, HAKO_CONTEXT_TOKENS=${budget}: ${r.bytes} bytes per request (the summary call: ${r.summaryBytes} bytes; ${String(r.folded)} messages folded); compaction ${median(runs.map((x) => x.ms ?? 0))} ms median of ${RUNS} against the scripted model`);
    }
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
