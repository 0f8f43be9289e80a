// The red-team fixture: a real host with a main group, an untrusted group and a victim
// group, host-side canary files in places no container may reach, and `attack()`, which
// makes the scripted model run shell commands in a group's container and returns exactly
// what the attacker got back (the tool results the model received).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

export const MODEL_KEY = `sk-redteam-${Math.random().toString(36).slice(2)}-key`;

export interface Fixture {
  readonly model: ModelServer;
  readonly hako: HakoProcess;
  /** Unique strings planted where no container may read them. */
  readonly canary: { readonly hostFile: string; readonly victimFile: string; readonly configFile: string; readonly text: string };
  close(): Promise<void>;
}

/** `env` adds to (or overrides) the host's environment, e.g. NODE_EXTRA_CA_CERTS for a test upstream. */
export async function startFixture(opts: { env?: Record<string, string> } = {}): Promise<Fixture> {
  const model = await startModelServer();
  const text = `CANARY-${Math.random().toString(36).slice(2)}`;
  const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-hostsecret-'));
  const hostFile = path.join(secretDir, 'host-secret.txt');
  fs.writeFileSync(hostFile, `${text} host\n`);
  const hako = await HakoProcess.start({
    env: {
      HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: MODEL_KEY,
      HAKO_CONTAINER_MEMORY: '256m', HAKO_CONTAINER_PIDS: '64', HAKO_CONTAINER_TMPFS: '16m', HAKO_MAX_ATTEMPTS: '1',
      ...opts.env,
    },
  });
  for (const g of ['team', 'victim']) {
    const r = await hako.cli(['groups', 'add', g]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const victimFile = path.join(hako.home, 'groups', 'victim', 'secret.md');
  fs.writeFileSync(victimFile, `${text} victim\n`);
  // The untrusted group may reach two names; its one secret is bound to a third.
  fs.writeFileSync(path.join(hako.configDir, 'egress.json'), JSON.stringify({
    groups: { team: ['example.org', 'localhost'] },
    secrets: { TOKEN: { hosts: ['api.github.com'], groups: ['team'] } },
  }));
  const configFile = path.join(hako.configDir, 'secrets.env');
  fs.writeFileSync(configFile, `TOKEN=${text}-config\n`, { mode: 0o600 });
  return {
    model, hako, canary: { hostFile, victimFile, configFile, text },
    async close() {
      await hako.stop();
      hako.cleanup();
      fs.rmSync(secretDir, { recursive: true, force: true });
      await model.close();
    },
  };
}

/** Everything the model server received since `from`, as one string. */
export function seenByModel(f: Fixture, from = 0): string {
  return f.model.requests.slice(from).map((r) => r.body).join('\n');
}

/**
 * Runs `commands` one bash call each in `group`'s container (as a compromised agent would)
 * and returns each command's output as the model received it.
 */
export async function attack(f: Fixture, group: string, commands: readonly string[], opts: { timeoutMs?: number } = {}): Promise<string[]> {
  const from = f.model.requests.length;
  f.model.script(
    { toolCalls: commands.map((command) => ({ name: 'bash', args: { command, timeout_ms: opts.timeoutMs ?? 60_000 } })) },
    { text: 'attack finished' },
  );
  const id = await f.hako.post(group, `@hako run the attack (${Math.random().toString(36).slice(2)})`);
  const replies = await f.hako.waitForReplies(group, id, 1, 180_000);
  if (replies[0]!.text !== 'attack finished') throw new Error(`the attack turn did not finish normally: ${replies[0]!.text}`);
  const last = f.model.requests.slice(from).at(-1)!;
  return (last.json.messages as { role: string; content: string }[]).filter((m) => m.role === 'tool').slice(-commands.length).map((m) => m.content);
}

/** A normal message still gets a normal answer: the host kept working. */
export async function stillServes(f: Fixture, group = 'main'): Promise<void> {
  const id = await f.hako.post(group, '@hako ping after the attack');
  const [r] = await f.hako.waitForReplies(group, id, 1, 120_000);
  if (!/ping after the attack/.test(r!.text)) throw new Error(`unexpected answer: ${r!.text}`);
}
