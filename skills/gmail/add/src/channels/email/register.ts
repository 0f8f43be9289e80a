// Registers the e-mail channel (the gmail skill): on when HAKO_EMAIL_IMAP, HAKO_EMAIL_SMTP and
// HAKO_EMAIL_USER are set, with HAKO_EMAIL_PASSWORD or HAKO_EMAIL_OAUTH_TOKEN from the
// environment or HAKO_CONFIG/secrets.env (masked in every log line). Importing this file
// loads nothing but the settings' parser; imapflow, nodemailer and mailparser are loaded
// when the channel is made.

import type { ChannelDeps } from '../../core/channel.ts';
import { registerChannel } from '../registry.ts';
import { parseEmailConfig } from './config.ts';

registerChannel({
  name: 'email',
  required: ['HAKO_EMAIL_IMAP', 'HAKO_EMAIL_SMTP', 'HAKO_EMAIL_USER'],
  optional: ['HAKO_EMAIL_OWNER', 'HAKO_EMAIL_ADDRESS', 'HAKO_EMAIL_MAILBOX', 'HAKO_EMAIL_POLL_SECONDS', 'HAKO_EMAIL_AUTHSERV_ID', 'HAKO_EMAIL_MAX_MESSAGE_BYTES', 'HAKO_ATTACHMENT_MAX_BYTES'],
  secrets: ['HAKO_EMAIL_PASSWORD', 'HAKO_EMAIL_OAUTH_TOKEN'],
  async create(deps: ChannelDeps) {
    const config = parseEmailConfig(deps.env);
    const { EmailChannel } = await import('./channel.ts');
    return new EmailChannel({ config, deps });
  },
  async check(deps: ChannelDeps) {
    let config;
    try {
      config = parseEmailConfig(deps.env);
    } catch (err) {
      return (err as Error).message;
    }
    const [{ checkEmail }, { MailSender }] = await Promise.all([import('./channel.ts'), import('./sender.ts')]);
    const sender = new MailSender({ config, assistantName: deps.assistantName });
    try {
      return await checkEmail(config, sender);
    } finally {
      sender.close();
    }
  },
});
