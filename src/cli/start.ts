// `hako start`: checks the engine and image, then runs the host until SIGINT/SIGTERM.

import { loadConfig } from '../core/config.ts';
import { Host } from '../core/host.ts';
import { createLogger, logMaxBytes, secretMasker } from '../core/log.ts';
import { homePaths } from '../core/paths.ts';
import { prepareGroupDirs } from '../core/runner.ts';
import { HttpChannel } from '../channels/http.ts';
import { attachmentLimits } from '../channels/attachments.ts';
import { WebhookListener, webhookChannels } from '../channels/webhook.ts';
import { channelOff, channelSecretValues, channelSettingNames, installedChannels } from '../channels/registry.ts';
import type { Channel, ChannelDeps } from '../core/channel.ts';
import type { Logger } from '../core/log.ts';
import { channelEnv } from './secrets.ts';
import { hostRuntime } from '../runtime/engine-runtime.ts';
import { ensureImage, imageTag } from '../runtime/image.ts';
import { parse, runCommand } from './args.ts';
import { ensureToken } from './token.ts';
import { hostUmask, tightenHome } from './home-modes.ts';

export const help = `Usage: hako start [--no-image-check]

Runs the assistant: the host process, the HTTP API and web chat on 127.0.0.1
(HAKO_HTTP_PORT, default 7878), and every chat channel added as a skill whose settings
are present (in the environment or HAKO_CONFIG/secrets.env; see hako skill list).
Channels that take webhooks (Slack's Events API, WhatsApp Cloud, LINE) are served on a
listener of their own: 127.0.0.1 (HAKO_WEBHOOK_BIND), port 7879 (HAKO_WEBHOOK_PORT).
On first start it creates the main group.
Stop it with Ctrl+C (SIGINT) or SIGTERM; running turns get a few seconds to finish.

  --no-image-check   do not check or build the agent image before starting`;

/** How long running turns may take to finish after SIGINT/SIGTERM. */
const GRACE_MS = 10_000;
/** How long a stopped host may wait for handles it does not own before it exits anyway. */
const EXIT_AFTER_STOP_MS = 2000;

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Makes the channel of every installed module whose settings are present, and says in one line which are on and why the others are off. */
async function chatChannels(deps: ChannelDeps, modules: Awaited<ReturnType<typeof installedChannels>>, log: Logger): Promise<Channel[]> {
  const on: Channel[] = [];
  const off: string[] = [];
  for (const m of modules) {
    const why = channelOff(m, deps.env);
    if (why) off.push(`${m.name} (${why})`);
    else on.push(await m.create(deps));
  }
  const line = modules.length === 0 ? 'chat channels: none added (see: hako skill list)'
    : `chat channels: ${on.length ? `on: ${on.map((c) => c.name).join(', ')}` : 'none on'}${off.length ? `; off: ${off.join(', ')} (set them in the environment or HAKO_CONFIG/secrets.env)` : ''}`;
  log.info(line);
  console.log(line);
  return on;
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { 'no-image-check': { type: 'boolean' } }, help);
    if (!parsed) return 0;
    // Before anything is created in HAKO_HOME: what the host makes is owner-only by default.
    process.umask(hostUmask());
    const config = loadConfig();
    const env = channelEnv(config.configDir);
    const modules = await installedChannels();
    const secrets = [config.providers.anthropic.apiKey, config.providers.openai.apiKey, ...channelSecretValues(modules, env)].filter((s): s is string => !!s);
    const log = createLogger({ dir: homePaths(config.home).logs, secrets, level: config.logLevel, maxBytes: logMaxBytes(process.env.HAKO_LOG_MAX_BYTES) });
    const runtime = await hostRuntime();
    const problem = await runtime.available();
    if (problem) throw new Error(problem);
    if (config.runtime) {
      const missing = await runtime.runtimeProblem(config.runtime);
      if (missing) throw new Error(`HAKO_RUNTIME=${config.runtime}: ${missing}`);
    }
    if (!parsed.values['no-image-check']) await ensureImage({ log: (line) => log.info(line) });
    const token = ensureToken(config);
    const http = new HttpChannel({ port: config.httpPort, host: config.httpBind, exposure: config.httpExposure, token, log, allowedHosts: config.httpHosts, home: config.home, attachments: attachmentLimits(env) });
    const chats = await chatChannels({ env, home: config.home, assistantName: config.assistantName, log }, modules, log);
    // Only when a channel takes webhooks, and last: its channels are running before a request can reach them.
    const webhooks = webhookChannels(chats).length ? [new WebhookListener({ port: config.webhookPort, bind: config.webhookBind, channels: chats, log })] : [];
    const host = new Host({ config, runtime, image: imageTag(), log, channels: [http, ...chats, ...webhooks], redact: secretMasker(secrets), hostSecrets: channelSettingNames(modules) });
    if (host.store.listGroups().length === 0) {
      host.store.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
      prepareGroupDirs(config.home, 'main');
      log.info('created the main group (your private control chat)');
    }
    // After the token check (a token others could read is refused, not quietly fixed) and
    // the database's creation; also tightens what an install made before left readable.
    tightenHome(config.home);
    await host.start();
    return new Promise<number>((resolve) => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info('shutting down', { signal });
        // Said on the console too: a Ctrl+C that waits silently looks like a hang.
        const running = host.queue.active.size;
        console.log(`\n${signal}: stopping${running ? `: waiting for ${plural(running, 'running turn')} (at most ${GRACE_MS / 1000} s)…` : '…'}`);
        host.stop({ graceMs: GRACE_MS }).then(({ interrupted, containers }) => {
          const cut = interrupted ? `; ${plural(interrupted, 'turn')} cut short (retried at the next start)` : '';
          if ('close' in runtime) runtime.close();
          console.log(`stopped ${plural(containers, 'container')}${cut}; bye`);
          resolve(0);
          // Everything of hako's own has stopped. A chat library's leftover timer or socket (discord.js
          // reconnects while Discord is unreachable even after it was destroyed) must not keep a stopped
          // hako alive: unref'd, this fires only if something else holds the process.
          setTimeout(() => process.exit(), EXIT_AFTER_STOP_MS).unref();
        }, (err: unknown) => {
          log.error('shutdown failed', { error: String(err) });
          console.error(`hako: shutdown failed: ${String(err)} (containers left behind are removed at the next start)`);
          resolve(1);
        });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      // Printed only once the handlers are in: a test or a user may press Ctrl+C the moment it shows.
      // The link carries a one-time code, never the API token: browsers keep URLs on disk.
      console.log(`\nhako is running.\n  web chat:  ${http.signInLink().url}\n             (works once, within 10 minutes; "hako web" prints a new link)\n  terminal:  hako chat main   (or: npm run hako -- chat main)\n  stop:      Ctrl+C\n`);
    });
  });
}
