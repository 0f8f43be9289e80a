// The Telegram round trip with a warm container: from an update pushed into the Bot API
// emulator to the reply arriving back at it (getUpdates long poll → store → turn in the
// group's running container with a scripted model that answers at once → sendMessage).
// A real host, the real image, the real grammY; only Telegram and the model are local.
//
//   node bench/telegram-latency.ts [--samples 20] [--warmup 5]

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { HakoProcess } from '../test/support/hako.ts';
import { startModelServer } from '../test/support/model-server.ts';
import { TelegramEmulator } from '../test/support/telegram-emulator.ts';
import { median, percentile, round } from './lib/stats.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
/** Pause after a reply, so the turn's `done` is applied and the container is idle-warm, as in bench/warm.ts. */
const GAP_MS = 150;

const { values } = parseArgs({ options: { samples: { type: 'string', default: '20' }, warmup: { type: 'string', default: '5' } } });
const samples = Number(values.samples), warmup = Number(values.warmup);

const installed = fs.readFileSync(path.join(ROOT, 'src/channels/installed.ts'), 'utf8');
const preload: Record<string, string> = installed.includes("'./telegram/register.ts'") ? {} : { NODE_OPTIONS: `--import=${pathToFileURL(path.join(ROOT, 'src/channels/telegram/register.ts')).href}` };

const emu = await TelegramEmulator.start({ username: 'hako_bench_bot' });
const model = await startModelServer();
const h = await HakoProcess.start({
  env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-bench', TELEGRAM_API_ROOT: emu.apiRoot, TELEGRAM_BOT_TOKEN: emu.token, HAKO_LOG_LEVEL: 'info', ...preload },
});
try {
  const owner = emu.privateChat(emu.user('Owner'));
  const bind = await h.cli(['groups', 'set', 'main', '--chat', `telegram:${owner.id}`]);
  if (bind.code !== 0) throw new Error(bind.stderr);

  const roundTrip = async (text: string): Promise<number> => {
    const n = emu.sent(owner.id).length;
    const t0 = performance.now();
    emu.message({ chat: owner, text });
    await emu.waitForSends(owner.id, n + 1, 60_000);
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, GAP_MS));
    return ms;
  };

  const cold = await roundTrip('first message: starts the container');
  for (let i = 0; i < warmup; i++) await roundTrip(`warm-up ${i}`);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push(await roundTrip(`sample ${i}`));

  const result = {
    coldMs: round(cold),
    warm: { n: times.length, medianMs: round(median(times)), p90Ms: round(percentile(times, 90)), minMs: round(Math.min(...times)), maxMs: round(Math.max(...times)) },
  };
  console.log(`Telegram update → reply at the Bot API emulator, warm container (n=${times.length}): median ${result.warm.medianMs} ms, p90 ${result.warm.p90Ms} ms, min ${result.warm.minMs} ms, max ${result.warm.maxMs} ms (cold first turn: ${result.coldMs} ms)`);
  console.log(JSON.stringify(result));
} finally {
  await h.stop();
  h.cleanup();
  await model.close();
  await emu.close();
}
