// `hako status`: what the running host is doing — groups, containers, queue, next task
// runs, recent failures. Without a running host it says so and shows what the database knows.

import { loadConfig } from '../core/config.ts';
import { parse, runCommand } from './args.ts';
import { hostClient, NotRunningError } from './client.ts';
import { openStore } from './groups.ts';

export const help = `Usage: hako status [--json]

Shows the running hako: each group's container (busy, warm, starting, stopping),
waiting and failed messages, the queue, the next scheduled task runs and recent
failures. --json prints the same as JSON.`;

interface Status {
  startedAt: string;
  model: string | null;
  modelDown: string[];
  maxContainers: number;
  queue: { running: string[]; waiting: string[] };
  groups: { name: string; main: boolean; container: { state: string; name?: string; idleSeconds?: number } | null; waiting: number; answered: number; failed: number }[];
  nextRuns: { id: string; group: string; nextRun: string; prompt: string }[];
  recentFailures: { group: string; at: string; error: string; task: string | null }[];
}

function print(s: Status): void {
  const live = s.groups.filter((g) => g.container).length;
  console.log(`hako running since ${s.startedAt}; model ${s.model ?? '(none)'}${s.modelDown.length ? ` — UNREACHABLE: ${s.modelDown.join(', ')}` : ''}`);
  console.log(`containers ${live}/${s.maxContainers}; queue: running [${s.queue.running.join(', ')}], waiting [${s.queue.waiting.join(', ')}]\n`);
  console.log('GROUP                CONTAINER              WAITING  ANSWERED  FAILED');
  for (const g of s.groups) {
    const c = g.container ? `${g.container.state}${g.container.idleSeconds !== undefined ? ` ${g.container.idleSeconds}s` : ''}` : '-';
    console.log(`${(g.name + (g.main ? ' (main)' : '')).padEnd(20)} ${c.padEnd(22)} ${String(g.waiting).padStart(7)}  ${String(g.answered).padStart(8)}  ${String(g.failed).padStart(6)}`);
  }
  console.log('\nnext task runs:');
  if (s.nextRuns.length === 0) console.log('  none');
  for (const t of s.nextRuns) console.log(`  ${t.nextRun}  ${t.id}  ${t.group}: ${t.prompt}`);
  console.log('\nrecent failures:');
  if (s.recentFailures.length === 0) console.log('  none');
  for (const f of s.recentFailures) console.log(`  ${f.at}  ${f.group}${f.task ? ` (${f.task})` : ''}: ${f.error.slice(0, 160)}`);
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { json: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const config = loadConfig();
    try {
      const s = await hostClient(config).call('/api/status') as unknown as Status;
      if (parsed.values.json) console.log(JSON.stringify(s, null, 2));
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
      const next = store.nextDue();
      console.log(`next task run: ${next === null ? 'none' : new Date(next).toISOString()}`);
    } finally {
      store.close();
    }
    return 1;
  });
}
