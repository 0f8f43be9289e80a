// Registers the Slack channel (one import line in src/channels/installed.ts): Socket Mode
// with SLACK_BOT_TOKEN + SLACK_APP_TOKEN, or the Events API over HTTP (hako's webhook
// listener, `/slack/events`) with SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET. @slack/bolt is
// imported only when a channel is made or checked, so a host without these settings loads
// none of it.

import { registerChannel } from '../registry.ts';
import type { ChannelDeps } from '../../core/channel.ts';
import { slackConfig, slackMode } from './config.ts';

registerChannel({
  name: 'slack',
  // `off` decides which settings are needed: those of the way chosen.
  required: [],
  optional: ['SLACK_API_URL', 'SLACK_OWNER_IDS', 'HAKO_ATTACHMENT_MAX_BYTES'],
  secrets: ['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET'],
  off(env) {
    const mode = slackMode(env);
    return mode.kind === 'off' ? mode.reason : undefined;
  },
  async create(deps: ChannelDeps) {
    const config = slackConfig(deps.env);
    const { createSlackChannel } = await import('./channel.ts');
    return createSlackChannel({ config, home: deps.home, assistantName: deps.assistantName, log: deps.log });
  },
  async check(deps: ChannelDeps) {
    let config;
    try {
      config = slackConfig(deps.env);
    } catch (err) {
      return (err as Error).message;
    }
    const { checkSlack } = await import('./channel.ts');
    return checkSlack(config);
  },
});
