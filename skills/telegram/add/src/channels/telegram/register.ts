// Registers the Telegram channel (one import line in src/channels/installed.ts). grammY is
// imported only when a channel is made or checked, so a host without TELEGRAM_BOT_TOKEN
// loads none of it.

import { registerChannel } from '../registry.ts';
import type { ChannelDeps } from '../../core/channel.ts';
import { telegramConfig } from './config.ts';
import { classify, TOKEN_REFUSED } from './errors.ts';
import { POLL_TIMEOUT } from './poller.ts';

/** grammY's per-request timeout: longer than a long poll, short enough to notice a dead connection. */
const REQUEST_TIMEOUT_S = POLL_TIMEOUT + 30;

registerChannel({
  name: 'telegram',
  required: ['TELEGRAM_BOT_TOKEN'],
  optional: ['TELEGRAM_API_ROOT', 'TELEGRAM_OWNER_IDS', 'HAKO_ATTACHMENT_MAX_BYTES'],
  secrets: ['TELEGRAM_BOT_TOKEN'],
  async create(deps: ChannelDeps) {
    const config = telegramConfig(deps.env);
    const [{ Api, InputFile }, { TelegramChannel }] = await Promise.all([import('grammy'), import('./channel.ts')]);
    const api = new Api(config.token, { apiRoot: config.apiRoot, timeoutSeconds: REQUEST_TIMEOUT_S });
    return new TelegramChannel({ config, api, InputFile, home: deps.home, log: deps.log });
  },
  async check(deps: ChannelDeps) {
    let config;
    try {
      config = telegramConfig(deps.env);
    } catch (err) {
      return (err as Error).message;
    }
    const { Api } = await import('grammy');
    const api = new Api(config.token, { apiRoot: config.apiRoot, timeoutSeconds: 15 });
    try {
      const me = await api.getMe();
      deps.log.debug('telegram: the token works', { bot: `@${me.username}`, readsAllGroupMessages: me.can_read_all_group_messages });
      return undefined;
    } catch (err) {
      const f = classify(err, config.token);
      if (f.kind === 'unauthorized') return TOKEN_REFUSED;
      if (f.kind === 'network') return `telegram: cannot reach the Bot API at ${config.apiRoot} (${f.text}): check the network, or TELEGRAM_API_ROOT`;
      return `telegram: Telegram refused getMe (${f.text})`;
    }
  },
});
