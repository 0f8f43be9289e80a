// Registers the WhatsApp channel (one import line in src/channels/installed.ts): one module
// for two ways — the official Cloud API (WHATSAPP_ACCESS_TOKEN …) or WhatsApp Web via
// Baileys (WHATSAPP_WEB=on) — never both. Each way's code is imported only when its channel
// is made or checked, so a host that uses neither loads none of it.

import { registerChannel } from '../registry.ts';
import type { ChannelDeps } from '../../core/channel.ts';
import { cloudConfig, whatsappMode } from './config.ts';

registerChannel({
  name: 'whatsapp',
  // `off` decides which settings are needed: those of the way chosen.
  required: [],
  optional: [
    'WHATSAPP_PHONE_NUMBER_ID', 'WHATSAPP_GRAPH_URL', 'WHATSAPP_OWNER_NUMBERS',
    'WHATSAPP_WEB', 'WHATSAPP_WEB_PHONE', 'HAKO_ATTACHMENT_MAX_BYTES',
  ],
  secrets: ['WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN'],
  off(env) {
    const mode = whatsappMode(env);
    return mode.kind === 'off' ? mode.reason : undefined;
  },
  async create(deps: ChannelDeps) {
    const mode = whatsappMode(deps.env);
    if (mode.kind === 'web') {
      const { createWhatsAppWeb } = await import('./web/channel.ts');
      return createWhatsAppWeb(deps);
    }
    const config = cloudConfig(deps.env);
    const { CloudChannel } = await import('./cloud.ts');
    return new CloudChannel({ config, home: deps.home, log: deps.log });
  },
  async check(deps: ChannelDeps) {
    const mode = whatsappMode(deps.env);
    if (mode.kind === 'off') return `whatsapp: ${mode.reason}`;
    if (mode.kind === 'web') return undefined;
    let config;
    try {
      config = cloudConfig(deps.env);
    } catch (err) {
      return (err as Error).message;
    }
    const { checkCloud } = await import('./graph.ts');
    return checkCloud(config);
  },
});
