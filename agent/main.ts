// The agent's entry point inside the container: validate config, start the network
// forwarder, then run the batches from ipc/in/ one at a time until `close` or SIGTERM.
// Invariants: batches run strictly one after another, in file-name order, each at most once;
// a `response` reaches its waiting request as soon as it is read, even mid-batch (inputs.ts);
// a response nobody waits for is logged and dropped.

import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TRANSCRIBE_PATH } from '../protocol/container.ts';
import { isIpcFileName } from '../protocol/ipc.ts';
import { POLL_FAST_MS, type SafetyPollOptions } from '../protocol/poll.ts';
import { readConfig } from './config.ts';
import { startForwarder } from './forwarder.ts';
import { Inbox, takeInput } from './inbox.ts';
import { Inputs } from './inputs.ts';
import { errorText, stderrLogger as log } from './log.ts';
import { Outbox } from './outbox.ts';
import { providerFor } from './providers/index.ts';
import { Requests } from './requests.ts';
import { runBatch } from './turn.ts';

/** The inbox's safety poll where inotify is known to deliver: only a net for a lost event. */
const TRUSTED_WATCH_POLL_MS = 30_000;

/**
 * The inbox's safety poll. Where the host says inotify delivers its files (runc) the poll
 * starts slow, so an idle warm agent wakes only every TRUSTED_WATCH_POLL_MS (each wake-up of
 * an idle Node costs ~3.5 ms of CPU on a small VM); where it says it does not (gVisor) the
 * poll stays fast; unsaid, the poll learns it from the first watch event.
 */
function inboxPoll(ipcEvents: boolean | null): SafetyPollOptions {
  if (ipcEvents === null) return {};
  return ipcEvents ? { startSlow: true, slowMs: TRUSTED_WATCH_POLL_MS } : { slowMs: POLL_FAST_MS };
}

/**
 * With a broken configuration the agent cannot run a model, but it answers the batches
 * already waiting with a non-retryable error (so the host can tell the user why) and exits.
 */
async function answerWithConfigError(ipcDir: string, problems: readonly string[]): Promise<void> {
  const message = `the agent is misconfigured: ${problems.join('; ')}`.slice(0, 4000);
  const inDir = join(ipcDir, 'in');
  const outbox = new Outbox(join(ipcDir, 'out'));
  const names = (await readdir(inDir).catch(() => [] as string[])).filter(isIpcFileName).sort();
  for (const name of names) {
    const input = await takeInput(join(inDir, name));
    if (!input.ok) continue;
    if (input.value.type === 'close') break;
    if (input.value.type !== 'batch') continue; // a response: nothing waits for it
    await outbox.write({ type: 'error', batch: input.value.id, message, retryable: false });
    log('output', { batch: input.value.id, type: 'error', reason: 'config' });
  }
}

async function main(): Promise<number> {
  const result = readConfig(process.env);
  if (!result.ok) {
    log('config_error', { problems: result.problems });
    await answerWithConfigError(result.ipcDir, result.problems);
    return 2;
  }
  const config = result.config;
  const inDir = join(config.ipcDir, 'in');
  const outDir = join(config.ipcDir, 'out');
  // The host creates both (in/ is mounted read-only); creating them here only helps host-side runs.
  for (const dir of [inDir, outDir]) await mkdir(dir, { recursive: true }).catch((err: unknown) => log('mkdir_failed', { dir, error: errorText(err) }));

  const forwarder = await startForwarder({
    port: config.forwarderPort,
    socketPath: config.proxySocket,
    onError: (err) => log('forwarder_error', { error: errorText(err) }),
  });
  const provider = await providerFor(`${config.model.provider}/${config.model.model}`, {
    stream: config.stream,
    socketPath: config.proxySocket, // model requests skip the forwarder
  });
  const outbox = new Outbox(outDir);
  const requests = new Requests(outbox, log);
  const inbox = new Inbox({ dir: inDir, poll: inboxPoll(config.ipcEvents), onError: (err) => log('inbox_error', { error: errorText(err) }) });
  const inputs = new Inputs({
    inbox,
    dir: inDir,
    onResponse: (r) => {
      if (requests.deliver(r)) log('response', { request: r.request, ok: r.ok });
      else log('response_unknown', { id: r.id, request: r.request, ok: r.ok }); // unknown, late, or a repeat: dropped
    },
    onRejected: (file, reason) => log('input_rejected', { file, reason }),
  });
  const shutdown = new AbortController();
  const onSignal = (signal: string): void => {
    log('signal', { signal });
    shutdown.abort();
    inputs.close();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));

  log('agent_start', {
    group: config.group, isMain: config.isMain, model: `${config.model.provider}/${config.model.model}`,
    stream: config.stream, maxSteps: config.maxSteps, forwarderPort: forwarder.port,
  });
  inbox.start();
  inputs.start();
  for (;;) {
    const input = await inputs.next();
    if (input === null) break;
    if (input.type === 'close') {
      log('close', { id: input.id });
      break;
    }
    const task = input.task ? { task: input.task.id, run: input.task.run, context: input.task.context } : {};
    log('batch_start', { batch: input.id, messages: input.messages.length, ...task });
    try {
      const transcribe = config.transcribeModel ? { url: `http://127.0.0.1:${forwarder.port}${TRANSCRIBE_PATH}`, model: config.transcribeModel } : undefined;
      await runBatch(input, { provider, outbox, requests, log, signal: shutdown.signal, settings: { ...config, ...(transcribe ? { transcribe } : {}) } });
    } catch (err) {
      // A broken precondition (unreadable history, failing out/ writes): report it, keep serving.
      log('batch_failed', { batch: input.id, error: errorText(err) });
      await outbox.write({ type: 'error', batch: input.id, message: `agent failure: ${errorText(err)}`.slice(0, 4000), retryable: false })
        .catch((e: unknown) => log('output_failed', { batch: input.id, error: errorText(e) }));
    }
  }
  inputs.close();
  requests.close();
  await forwarder.close();
  log('agent_exit', {});
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log('fatal', { error: errorText(err), stack: err instanceof Error ? err.stack : undefined });
    process.exit(1);
  },
);
