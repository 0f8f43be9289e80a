// `hako status`: what the running host is doing — groups, containers, queue, next task
// runs, recent failures. Without a running host it says so and shows what the database knows.

import { loadConfig } from '../core/config.ts';
import { formatBytes } from '../core/disk.ts';
import { safeJson, safeLine } from '../core/safe-text.ts';
import { dayIn } from '../core/usage.ts';
import { parse, runCommand } from './args.ts';
import { hostClient, NotRunningError } from './client.ts';
import { openStore } from './store.ts';

export const help = `Usage: hako status [--json]

Shows the running hako: each group's container (busy, warm, starting, stopping),
waiting and failed messages, the queue, the model tokens used today against the daily
budgets (HAKO_TOKENS_PER_DAY, hako groups set NAME --tokens-per-day), the next scheduled
task runs and recent failures. --json prints the same as JSON.`;

interface Status {
  startedAt: string;
  model: string | null;
  modelDown: string[];
  modelProblem?: string | null;
  maxContainers: number;
  queue: { running: string[]; waiting: string[] };
  groups: { name: string; main: boolean; container: { state: string; name?: string; idleSeconds?: number } | null; waiting: number; answered: number; failed: number; tokens?: { used: number; budget: number | null; waitsForBudget: boolean } }[];
  tokens?: { day: string; tz: string; used: number; budget: number | null };
  nextRuns: { id: string; group: string; nextRun: string; prompt: string }[];
  recentFailures: { group: string; at: string; error: string; task: string | null }[];
  disk?: { free: number | null; reserve: number | null; low: string | null; groups: Record<string, { bytes: number; over: string | null }> };
  channels?: { name: string; problem: string | null }[];
}

/** Task prompts and errors come from agents: every line is printed escaped. */
function print(s: Status): void {
  const line = (text: string) => console.log(safeLine(text));
  const live = s.groups.filter((g) => g.container).length;
  line(`hako running since ${s.startedAt}; model ${s.model ?? '(none)'}${s.modelDown.length ? ` — UNREACHABLE: ${s.modelDown.join(', ')}` : ''}`);
  // Messages wait while the model cannot be used: said first, not left to "waiting 1".
  if (s.modelProblem) line(`MODEL NOT READY: ${s.modelProblem}`);
  if (s.modelDown.length) line(`MODEL UNREACHABLE: messages wait and are answered when the ${s.modelDown.join(', ')} server answers again (see: hako doctor)`);
  line(`containers ${live}/${s.maxContainers}; queue: running [${s.queue.running.join(', ')}], waiting [${s.queue.waiting.join(', ')}]`);
  if (s.disk?.free != null && s.disk.reserve != null) {
    const over = Object.entries(s.disk.groups).filter(([, g]) => g.over).map(([name]) => name);
    line(`disk: ${formatBytes(s.disk.free)} free, reserve ${formatBytes(s.disk.reserve)}${s.disk.low ? ` — LOW: ${s.disk.low}` : ''}${over.length ? `; over their limit: ${over.join(', ')}` : ''}`);
  }
  if (s.channels) line(`channels: ${s.channels.map((c) => c.problem ? `${c.name} — PROBLEM: ${c.problem}` : `${c.name} ok`).join('; ')}`);
  line('');
  line('GROUP                CONTAINER              WAITING  ANSWERED  FAILED');
  for (const g of s.groups) {
    const c = g.container ? `${g.container.state}${g.container.idleSeconds !== undefined ? ` ${g.container.idleSeconds}s` : ''}` : '-';
    line(`${(g.name + (g.main ? ' (main)' : '')).padEnd(20)} ${c.padEnd(22)} ${String(g.waiting).padStart(7)}  ${String(g.answered).padStart(8)}  ${String(g.failed).padStart(6)}`);
  }
  if (s.tokens) printTokens(s.tokens, s.groups, line);
  line('');
  line('next task runs:');
  if (s.nextRuns.length === 0) line('  none');
  for (const t of s.nextRuns) line(`  ${t.nextRun}  ${t.id}  ${t.group}: ${t.prompt}`);
  line('');
  line('recent failures:');
  if (s.recentFailures.length === 0) line('  none');
  for (const f of s.recentFailures) line(`  ${f.at}  ${f.group}${f.task ? ` (${f.task})` : ''}: ${f.error.slice(0, 160)}`);
}

function printTokens(t: NonNullable<Status['tokens']>, groups: Status['groups'], line: (text: string) => void): void {
  const of = (used: number, budget: number | null) => budget === null ? `${used}` : `${used} of ${budget}${used >= budget ? ' — USED UP' : ''}`;
  line('');
  line(`tokens today (${t.day}, ${t.tz}): ${of(t.used, t.budget)}${t.budget === null ? ' (no daily budget: HAKO_TOKENS_PER_DAY)' : ' (HAKO_TOKENS_PER_DAY)'}`);
  for (const g of groups) {
    if (!g.tokens) continue;
    line(`  ${g.name.padEnd(20)} ${of(g.tokens.used, g.tokens.budget)}${g.tokens.waitsForBudget ? ' — messages wait for the budget' : ''}`);
  }
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { json: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const config = loadConfig();
    try {
      const s = await hostClient(config).call('/api/status') as unknown as Status;
      if (parsed.values.json) console.log(safeJson(JSON.stringify(s, null, 2)));
      else print(s);
      return 0;
    } catch (err) {
      if (!(err instanceof NotRunningError)) throw err;
      console.log(`${err.message}\n`);
    }
    const store = openStore(config.home);
    try {
      for (const g of store.listGroups()) {
        const c = store.counts(g.name);
        console.log(`${g.name.padEnd(20)} waiting ${c.pending + c.in_batch}, answered ${c.answered}, failed ${c.failed}`);
      }
      const day = dayIn(config.tz, Date.now());
      const used = store.usageOn(day);
      console.log(`tokens today (${day}, ${config.tz}): ${used.reduce((n, u) => n + u.input + u.output, 0)}${config.tokensPerDay === null ? '' : ` of ${config.tokensPerDay} (HAKO_TOKENS_PER_DAY)`}`);
      const next = store.nextDue();
      console.log(`next task run: ${next === null ? 'none' : new Date(next).toISOString()}`);
    } finally {
      store.close();
    }
    return 1;
  });
}
