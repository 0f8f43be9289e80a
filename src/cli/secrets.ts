// The settings of chat channels: the process environment over HAKO_CONFIG/secrets.env
// (bot tokens, mail passwords; read with the policy's reader, refused while others can read
// it). They are handed to the channel modules only and never put in process.env, so no
// child process (the docker client, a container) inherits them.

import { readSecretsFile } from '../core/policy.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** The secrets file merged under the process environment (the environment wins). */
export function channelEnv(configDir: string, env: Env = process.env): Env {
  return { ...Object.fromEntries(readSecretsFile(configDir)), ...env };
}
