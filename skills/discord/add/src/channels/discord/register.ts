// Registers the Discord channel (one import line in src/channels/installed.ts). discord.js
// is imported only when a channel is made or checked, so a host without DISCORD_BOT_TOKEN
// loads none of it.

import { registerChannel } from '../registry.ts';
import type { ChannelDeps } from '../../core/channel.ts';
import { discordConfig } from './config.ts';
import { classify, INTENTS_REFUSED, TOKEN_REFUSED } from './errors.ts';

/** Application flags: the Message Content intent, for verified (18) and unverified bots (19). */
const MESSAGE_CONTENT = (1 << 18) | (1 << 19);

registerChannel({
  name: 'discord',
  required: ['DISCORD_BOT_TOKEN'],
  optional: ['DISCORD_API_ROOT', 'DISCORD_OWNER_IDS', 'HAKO_ATTACHMENT_MAX_BYTES'],
  secrets: ['DISCORD_BOT_TOKEN'],
  async create(deps: ChannelDeps) {
    const config = discordConfig(deps.env);
    const { DiscordChannel } = await import('./channel.ts');
    return new DiscordChannel({ config, home: deps.home, log: deps.log });
  },
  async check(deps: ChannelDeps) {
    let config;
    try {
      config = discordConfig(deps.env);
    } catch (err) {
      return (err as Error).message;
    }
    const { REST } = await import('discord.js');
    const rest = new REST({ api: config.apiRoot, timeout: 15_000, retries: 0 }).setToken(config.token);
    try {
      const me = await rest.get('/users/@me') as { username?: string; id?: string };
      const app = await rest.get('/applications/@me') as { flags?: number };
      deps.log.debug('discord: the token works', { bot: me.username, id: me.id });
      // Without the intent every message arrives empty, or the gateway refuses the bot (4014).
      return ((app.flags ?? 0) & MESSAGE_CONTENT) === 0 ? INTENTS_REFUSED : undefined;
    } catch (err) {
      const f = classify(err, config.token);
      if (f.kind === 'unauthorized') return TOKEN_REFUSED;
      if (f.kind === 'network') return `discord: cannot reach the Discord API at ${config.apiRoot} (${f.text}): check the network, or DISCORD_API_ROOT`;
      return `discord: Discord refused the token check (${f.text})`;
    } finally {
      rest.clearHashSweeper();
      rest.clearHandlerSweeper();
    }
  },
});
