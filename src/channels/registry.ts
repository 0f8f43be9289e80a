// The channel registry: chat channels added as skills register here (one import line in
// installed.ts each), and `hako start` / `hako doctor` read the list. A core install has
// no chat channel, so nothing of any platform's code or dependencies is loaded.

import type { ChannelDeps, ChannelModule } from '../core/channel.ts';

const modules = new Map<string, ChannelModule>();

/** Called once by each channel module when installed.ts imports it. */
export function registerChannel(m: ChannelModule): void {
  if (modules.has(m.name)) throw new Error(`two channel modules are named "${m.name}": check src/channels/installed.ts`);
  modules.set(m.name, m);
}

/** The installed channel modules, loaded on first use. */
export async function installedChannels(): Promise<ChannelModule[]> {
  await import('./installed.ts');
  return [...modules.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Every setting the modules read: secrets.env names the host keeps for itself (never a container's). */
export function channelSettingNames(ms: readonly ChannelModule[]): string[] {
  return ms.flatMap((m) => [...m.required, ...m.secrets, ...(m.optional ?? [])]);
}

/** The values of the modules' secrets that are set, to be masked in logs. */
export function channelSecretValues(ms: readonly ChannelModule[], env: ChannelDeps['env']): string[] {
  return ms.flatMap((m) => m.secrets.map((k) => env[k])).filter((s): s is string => !!s);
}

/** Why a module's channel is off (the settings it lacks), or undefined when it can start. */
export function channelOff(m: ChannelModule, env: ChannelDeps['env']): string | undefined {
  if (m.off) return m.off(env);
  const missing = m.required.filter((k) => !env[k]);
  return missing.length === 0 ? undefined : `${missing.join(', ')} not set`;
}
