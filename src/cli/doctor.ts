// `hako doctor`: checks each thing hako needs and says how to fix what is wrong.
// Exit code 0 when everything needed to answer messages is in place, 1 otherwise.

import fs from 'node:fs';
import path from 'node:path';
import { effectiveContextTokens, loadConfig, looksLikeOllama, type Config } from '../core/config.ts';
import { parseModel } from '../../protocol/model.ts';
import { probeModel } from '../core/model-probe.ts';
import { homePaths } from '../core/paths.ts';
import { DockerRuntime } from '../runtime/docker.ts';
import { currentEndpoint, describeEndpoint, engineProblem } from '../runtime/engine.ts';
import { imageState, imageTag } from '../runtime/image.ts';
import { loadEgressConfig, loadMountPolicy, loadSecrets } from '../core/policy.ts';
import { parse, runCommand } from './args.ts';
import { openStore } from './store.ts';
import { safeText } from '../core/safe-text.ts';
import { channelOff, channelSecretValues, channelSettingNames, installedChannels } from '../channels/registry.ts';
import type { ChannelDeps, ChannelModule } from '../core/channel.ts';
import { createLogger, secretMasker } from '../core/log.ts';
import { channelEnv } from './secrets.ts';

export const help = `Usage: hako doctor

Checks Node.js, the container engine, the agent image, the model configuration,
the state folder, the policy files and each chat channel added as a skill (on or off,
and why), and prints how to fix each problem.`;

export type Check = { name: string; problem: string | null; warnOnly?: boolean };

async function checks(config: Config): Promise<Check[]> {
  const out: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  out.push({ name: `Node.js ${process.versions.node}`, problem: major >= 24 ? null : 'Node.js 24 or newer is required (https://nodejs.org, or: nvm install 24)' });
  const engine = await engineProblem();
  // Which engine answered matters as much as that one did: DOCKER_HOST or a context may point anywhere.
  out.push({ name: engine ? 'container engine' : `container engine at ${describeEndpoint(await currentEndpoint())}`, problem: engine });
  if (!engine) {
    const gvisor = await new DockerRuntime().runtimeProblem('runsc');
    if (config.runtime) out.push({ name: `runtime ${config.runtime} (HAKO_RUNTIME)`, problem: await new DockerRuntime().runtimeProblem(config.runtime) });
    else out.push({ name: gvisor ? 'gVisor (optional stronger boundary): not available' : 'gVisor available: set HAKO_RUNTIME=runsc to use it', problem: gvisor, warnOnly: true });
    const state = await imageState().catch((err: unknown) => `error: ${String(err)}`);
    out.push({
      name: `agent image ${imageTag()}`,
      problem: state === 'current' ? null : state === 'missing' ? 'not built yet: run "hako image build" (npm start builds it too)' : state === 'stale' ? 'older than the agent sources: run "hako image build"' : String(state),
    });
  }
  let model = config.model;
  let groupContext: number | null = null;
  const dbFile = homePaths(config.home).db;
  if (fs.existsSync(dbFile)) {
    const store = openStore(config.home);
    const main = store.mainGroup();
    model = main?.model ?? model;
    groupContext = main?.contextTokens ?? null;
    out.push({ name: `state in ${config.home}`, problem: null });
    out.push({ name: 'main group', problem: main ? null : 'no main group: run "hako groups add main --main"', warnOnly: true });
    store.close();
  } else {
    out.push({ name: `state in ${config.home}`, problem: 'not created yet: "hako start" creates it', warnOnly: true });
  }
  // Asked of the server itself: a configured model on a server that is not there is not ok.
  const probe = await probeModel(config, model);
  out.push({ name: `model ${model ?? '(none)'}${probe.kind === 'ok' ? ' (the server answers and has it)' : ''}`, problem: probe.kind === 'ok' ? null : probe.problem, ...(probe.kind === 'no-model' ? { warnOnly: true } : {}) });
  if (model) out.push(contextCheck(config, model, groupContext));
  const modules = await installedChannels();
  // A channel's settings in secrets.env are the host's own, as hako start reads them.
  out.push(...policyChecks(config, channelSettingNames(modules)));
  out.push(...await channelChecks(config, modules));
  return out;
}

/**
 * The main group's context budget, and a warning for Ollama: it silently cuts every prompt
 * at its own num_ctx (a few thousand tokens unless raised), whatever budget hako keeps to.
 */
export function contextCheck(config: Config, model: string, groupTokens: number | null): Check {
  const e = effectiveContextTokens(config, groupTokens, model);
  const from = e.from === 'group' ? 'the main group\'s --context-tokens' : e.from === 'default' ? 'the default for this model; set HAKO_CONTEXT_TOKENS to the model\'s context window' : 'HAKO_CONTEXT_TOKENS';
  const name = `context budget ${e.tokens} tokens per model request (${from})`;
  const parsed = parseModel(model, 'model');
  const base = config.providers.openai.baseURL;
  if (!parsed.ok || parsed.value.provider !== 'openai' || !looksLikeOllama(base)) return { name, problem: null };
  return {
    name,
    warnOnly: true,
    problem: `${base} looks like Ollama, which cuts every prompt to its num_ctx (small unless raised) without telling hako: ` +
      `start it with OLLAMA_CONTEXT_LENGTH=${e.tokens} ollama serve, or build the model with a Modelfile line "PARAMETER num_ctx ${e.tokens}", ` +
      'and keep HAKO_CONTEXT_TOKENS (or hako groups set NAME --context-tokens N) equal to that number',
  };
}

/** What a channel module is given: the environment over HAKO_CONFIG/secrets.env, as `hako start` gives it; its log masks every module's secrets. */
export function channelDeps(config: Config, modules: readonly ChannelModule[]): ChannelDeps {
  const env = channelEnv(config.configDir);
  const secrets = channelSecretValues(modules, env);
  return { env, home: config.home, assistantName: config.assistantName, log: createLogger({ console: true, level: 'warn', secrets }) };
}

/**
 * One line per channel module added as a skill: off and which settings it lacks (a
 * warning: a channel is optional), or on and what its own check finds wrong (a failure:
 * configured but broken). What a check says is masked with the module's secrets.
 */
export async function channelChecks(config: Config, modules: readonly ChannelModule[], given?: ChannelDeps): Promise<Check[]> {
  if (modules.length === 0) return [{ name: 'chat channels: none added (see hako skill list)', problem: null }];
  let deps: ChannelDeps;
  try {
    deps = given ?? channelDeps(config, modules);
  } catch (err) {
    return [{ name: `chat channel settings (${path.join(config.configDir, 'secrets.env')})`, problem: (err as Error).message }];
  }
  const out: Check[] = [];
  const where = `in the environment or ${path.join(config.configDir, 'secrets.env')}`;
  for (const m of modules) {
    const off = channelOff(m, deps.env);
    if (off) {
      out.push({ name: `channel ${m.name}: off`, problem: `${off}: set ${m.required.filter((k) => !deps.env[k]).join(', ')} ${where}, then restart hako`, warnOnly: true });
      continue;
    }
    const mask = secretMasker(m.secrets.map((k) => deps.env[k]));
    let problem: string | null;
    try {
      problem = (await m.check?.(deps)) ?? null;
    } catch (err) {
      problem = `its check failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    out.push({ name: `channel ${m.name}: on`, problem: problem === null ? null : mask(problem) });
  }
  return out;
}

/** Prints checks as doctor does; returns how many failed (warnings do not count). */
export function printChecks(list: readonly Check[]): number {
  let failed = 0;
  for (const c of list) {
    const mark = c.problem ? (c.warnOnly ? 'warn' : 'FAIL') : ' ok ';
    if (c.problem && !c.warnOnly) failed++;
    // A channel's check may quote what a remote server said: printed escaped.
    console.log(`[${mark}] ${c.name}${c.problem ? `\n       ${safeText(c.problem)}` : ''}`);
  }
  return failed;
}

/** The policy files, read by the same loaders a container start uses. */
function policyChecks(config: Config, hostSecrets: readonly string[]): Check[] {
  const check = (name: string, fn: () => void): Check => {
    try {
      fn();
      return { name, problem: null };
    } catch (err) {
      return { name, problem: (err as Error).message };
    }
  };
  // A file that is not there is fine, but "ok" alone would suggest it was read: say what it means.
  const named = (file: string, absent: string) => {
    const full = path.join(config.configDir, file);
    return fs.existsSync(full) ? `${file} (${full})` : `${file}: none (${full} does not exist: ${absent})`;
  };
  let egress: ReturnType<typeof loadEgressConfig> | undefined;
  return [
    check(`mount policy ${named('mounts.json', 'no group can mount an extra folder')}`, () => { loadMountPolicy(config.configDir); }),
    check(`egress allowlist ${named('egress.json', 'containers reach no host but the model')}`, () => { egress = loadEgressConfig(config.configDir); }),
    check(`secrets ${named('secrets.env', 'no credentials')}`, () => { loadSecrets(config.configDir, (egress ?? loadEgressConfig(config.configDir)).secrets, hostSecrets); }),
  ];
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    if (!parse(args, {}, help)) return 0;
    const config = loadConfig();
    const failed = printChecks(await checks(config));
    console.log(failed ? `\n${failed} problem(s) to fix.` : '\nall good.');
    return failed ? 1 : 0;
  });
}
