// Registers the LINE channel (one import line in src/channels/installed.ts). @line/bot-sdk
// is imported only when a channel is made or checked, so a host without LINE settings
// loads none of it.

import { registerChannel } from '../registry.ts';
import type { ChannelDeps } from '../../core/channel.ts';
import { lineConfig } from './config.ts';
import { classify, TOKEN_REFUSED } from './errors.ts';

registerChannel({
  name: 'line',
  required: ['LINE_CHANNEL_ACCESS_TOKEN', 'LINE_CHANNEL_SECRET'],
  optional: ['LINE_API_ROOT', 'LINE_DATA_API_ROOT', 'LINE_OWNER_IDS', 'HAKO_ATTACHMENT_MAX_BYTES'],
  secrets: ['LINE_CHANNEL_ACCESS_TOKEN', 'LINE_CHANNEL_SECRET'],
  async create(deps: ChannelDeps) {
    const config = lineConfig(deps.env);
    const [{ messagingApi, validateSignature }, { LineChannel }] = await Promise.all([import('@line/bot-sdk'), import('./channel.ts')]);
    const api = new messagingApi.MessagingApiClient({ channelAccessToken: config.token, baseURL: config.apiRoot });
    const blob = new messagingApi.MessagingApiBlobClient({ channelAccessToken: config.token, baseURL: config.dataApiRoot });
    return new LineChannel({ config, api, blob, validateSignature, home: deps.home, log: deps.log });
  },
  async check(deps: ChannelDeps) {
    let config;
    try {
      config = lineConfig(deps.env);
    } catch (err) {
      return (err as Error).message;
    }
    const { messagingApi } = await import('@line/bot-sdk');
    const api = new messagingApi.MessagingApiClient({ channelAccessToken: config.token, baseURL: config.apiRoot });
    try {
      const info = await api.getBotInfo();
      deps.log.debug('line: the channel access token works', { bot: info.displayName, basicId: info.basicId });
      return undefined;
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'unauthorized') return TOKEN_REFUSED;
      if (f.kind === 'network') return `line: cannot reach the Messaging API at ${config.apiRoot} (${f.text}): check the network, or LINE_API_ROOT`;
      return `line: LINE refused the bot info request (${f.text})`;
    }
  },
});
