// `hako groups add|set|mounts|list|remove`: registers chats as groups and binds chat
// addresses to them. Works whether or not the host is running (SQLite WAL lets both open
// the database).

import { ConfigError, contextTokens, effectiveContextTokens, limitProblem, loadConfig, tokenBudget, type Config, type Limits } from '../core/config.ts';
import { parseModel } from '../../protocol/model.ts';
import { checkMount, loadMountPolicy, othersOf, parseMountArg, type MountRequest } from '../core/policy.ts';
import { assertGroupName, groupPaths, homePaths } from '../core/paths.ts';
import { LABEL_GROUP, LABEL_HOME, LABEL_MANAGED, prepareGroupDirs } from '../core/runner.ts';
import { hostRuntime } from '../runtime/engine-runtime.ts';
import type { GroupStore } from '../core/store-contract.ts';
import { AuditLog } from '../core/audit.ts';
import { TRIGGER_PATTERN } from '../../protocol/names.ts';
import { parseChat } from '../core/channel.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { openStore } from './store.ts';

export const help = `Usage:
  hako groups add <name> [--main] [--chat CHANNEL:ADDRESS]… [--trigger WORD] [--allow NAMES] [--model PROVIDER/MODEL] [--mount HOSTPATH[:ro|:rw]]…
                         [--tokens-per-day N|none] [--context-tokens N|default]
  hako groups set <name> [--chat CHANNEL:ADDRESS]… [--unchat CHANNEL:ADDRESS]… [--trigger WORD] [--allow NAMES | --allow-all] [--model PROVIDER/MODEL]
                         [--memory SIZE] [--cpus N] [--pids N] [--tmpfs SIZE] [--turn-timeout SECONDS]
                         [--max-output CHARS] [--max-tasks N] [--disk SIZE] [--default-limits] [--tokens-per-day N|none]
                         [--context-tokens N|default]
  hako groups mounts <name> [add HOSTPATH[:ro|:rw] | remove HOSTPATH]
  hako groups list
  hako groups remove <name>

Names: lowercase letters, digits, "-" and "_", starting with a letter or digit (max 64).
  --main       the owner's control chat: always engages the agent, may manage other groups
  --chat       binds a chat to the group, e.g. telegram:-1001234567890 or
               email:hako+sales@example.com (a chat belongs to one group; when one writes
               to hako unbound, the main group is told its address); --unchat unbinds it
  --trigger    word that calls the agent in this group (default "@" + HAKO_ASSISTANT_NAME)
  --allow      comma-separated senders whose messages may call the agent (others are
               kept as context only); chat senders are named by channel and id, e.g.
               telegram:12345 or email:amy@example.com; --allow-all removes the list
  --model      this group's model instead of HAKO_MODEL
  --memory, --cpus, --pids, --tmpfs, --turn-timeout, --max-output, --max-tasks, --disk
               this group's limits instead of the host's (HAKO_CONTAINER_*, HAKO_TURN_TIMEOUT,
               HAKO_MAX_OUTPUT_CHARS, HAKO_MAX_TASKS, HAKO_GROUP_DISK); --default-limits drops the group's own limits
  --tokens-per-day
               model tokens (input + output, as the provider reports them) the group may use per
               day (00:00 to 00:00 in HAKO_TZ); when they are used up its messages wait until the
               next day or until this is raised; "none" removes it (HAKO_TOKENS_PER_DAY, for all
               groups together, still applies). A running hako sees a change within seconds
  --context-tokens
               tokens one model request of this group may use, the answer included: set it to
               the model's context window (a local model's is often 8192 or 32768). Older turns
               are summarised to stay within it. "default" uses HAKO_CONTEXT_TOKENS or the
               model's default. Applies from the next container start
  --mount      an extra host folder at /workspace/extra/<name>, read-only unless :rw;
               allowed only by HAKO_CONFIG/mounts.json (checked now and at every start)`;

function senders(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = raw.split(',').map((x) => x.trim()).filter(Boolean);
  if (list.length === 0 || list.some((x) => x.length > 100)) throw new UsageError('--allow takes a comma-separated list of sender names (each at most 100 characters)');
  return list;
}

function chats(list: string[] | undefined, flag: string): string[] {
  for (const c of list ?? []) {
    if (!parseChat(c)) throw new UsageError(`${flag} ${JSON.stringify(c)}: a chat is CHANNEL:ADDRESS, e.g. telegram:-1001234567890 or email:hako+sales@example.com`);
  }
  return list ?? [];
}

function checkTrigger(trigger: string | undefined): void {
  if (trigger !== undefined && !TRIGGER_PATTERN.test(trigger)) throw new UsageError('--trigger must be one word of at most 64 characters');
}

function checkModel(model: string | undefined): void {
  if (model === undefined) return;
  const parsed = parseModel(model, '--model');
  if (!parsed.ok) throw new UsageError(parsed.reason);
}

/** The group's limits after the given flags, or undefined when no limit flag was given. */
function limitsFrom(v: Record<string, unknown>, current: Partial<Limits>): Partial<Limits> | undefined {
  const given: [keyof Limits, unknown][] = [
    ['memory', v.memory], ['cpus', v.cpus], ['tmpfs', v.tmpfs],
    ['pids', v.pids === undefined ? undefined : Number(v.pids)],
    ['turnTimeoutSeconds', v['turn-timeout'] === undefined ? undefined : Number(v['turn-timeout'])],
    ['maxOutputChars', v['max-output'] === undefined ? undefined : Number(v['max-output'])],
    ['maxTasks', v['max-tasks'] === undefined ? undefined : Number(v['max-tasks'])],
    ['disk', v.disk],
  ];
  const set = given.filter(([, value]) => value !== undefined);
  if (set.length === 0 && !v['default-limits']) return undefined;
  const next: Record<string, unknown> = v['default-limits'] ? {} : { ...current };
  for (const [key, value] of set) {
    const problem = limitProblem(key, value);
    if (problem) throw new UsageError(problem);
    next[key] = value;
  }
  return next as Partial<Limits>;
}

/**
 * A budget flag (--tokens-per-day, --context-tokens) read by the configuration's own parser:
 * undefined when not given, null for its "none"/"default"; a bad value is a usage error.
 */
function budgetFlag(raw: string | undefined, parse: (raw: string, name: string) => number | null, name: string): number | null | undefined {
  if (raw === undefined) return undefined;
  try {
    return parse(raw, name);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** The group's context budget and where it comes from, for the add/set summary. */
function contextText(config: Config, g: { contextTokens: number | null; model: string | null }): string {
  const model = g.model ?? config.model;
  if (g.contextTokens === null && !model) return 'context budget: HAKO_CONTEXT_TOKENS or the model\'s default';
  const e = effectiveContextTokens(config, g.contextTokens, model ?? '');
  return `context budget: ${e.tokens} tokens per request (${e.from === 'group' ? 'the group\'s own' : e.from === 'default' ? `default for ${model}` : e.from})`;
}

const budgetText = (n: number | null) => n === null ? 'no own token budget' : `token budget ${n} per day`;

/** Checks each mount against the policy and the other groups' mounts now, so a refusal is seen at registration. */
function checkedMounts(config: Config, store: Pick<GroupStore, 'listGroups'>, group: string, isMain: boolean, requests: readonly MountRequest[]): MountRequest[] {
  const policy = loadMountPolicy(config.configDir);
  const others = othersOf(store.listGroups(), group);
  for (const req of requests) {
    const c = checkMount(policy, req, { group, isMain, home: config.home, configDir: config.configDir, others });
    if (!c.ok) throw new Error(c.reason);
  }
  return [...requests];
}

/** Records an owner's policy change in the audit log (same database, own connection). */
function audit(home: string, group: string, data: Record<string, unknown>): void {
  const log = new AuditLog(homePaths(home).db);
  try {
    log.append('policy.change', group, { by: 'owner', ...data });
  } finally {
    log.close();
  }
}

/**
 * Removes the containers a running host keeps warm for a removed group (found by label,
 * so it works from this separate process); says what it did. Never throws: the group is
 * already removed, and a host reaps what is left at its next start.
 */
async function removeContainers(home: string, group: string): Promise<string> {
  const runtime = await hostRuntime();
  try {
    const names = await runtime.list({ [LABEL_MANAGED]: '1', [LABEL_HOME]: home, [LABEL_GROUP]: group });
    if (names.length === 0) return 'it had no running container';
    await runtime.remove(names);
    const left = await runtime.list({ [LABEL_MANAGED]: '1', [LABEL_HOME]: home, [LABEL_GROUP]: group });
    if (left.length) return `could not remove its container ${left.join(', ')}: remove it with "${runtime.name} rm -f ${left.join(' ')}"`;
    return `stopped and removed its container ${names.join(', ')}`;
  } catch (err) {
    return `could not look for its containers (${String(err).split('\n')[0]}); a running host stops it when idle, and the next start removes it`;
  }
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, {
      main: { type: 'boolean' }, trigger: { type: 'string' }, model: { type: 'string' }, allow: { type: 'string' }, 'allow-all': { type: 'boolean' },
      mount: { type: 'string', multiple: true }, chat: { type: 'string', multiple: true }, unchat: { type: 'string', multiple: true },
      memory: { type: 'string' }, cpus: { type: 'string' }, pids: { type: 'string' }, tmpfs: { type: 'string' },
      'turn-timeout': { type: 'string' }, 'max-output': { type: 'string' }, 'max-tasks': { type: 'string' }, disk: { type: 'string' }, 'default-limits': { type: 'boolean' },
      'tokens-per-day': { type: 'string' }, 'context-tokens': { type: 'string' },
    }, help);
    if (!parsed) return 0;
    const [sub, name, ...extra] = parsed.positionals;
    if (extra.length && sub !== 'mounts') throw new UsageError(`unexpected argument "${extra[0]}"`);
    const config = loadConfig();
    const store = openStore(config.home);
    try {
      switch (sub) {
        case 'add': {
          if (!name) throw new UsageError('missing group name');
          assertGroupName(name);
          const { trigger, model } = parsed.values;
          checkTrigger(trigger);
          checkModel(model);
          const mounts = checkedMounts(config, store, name, !!parsed.values.main, (parsed.values.mount ?? []).map(parseMountArg));
          const bind = chats(parsed.values.chat, '--chat');
          const tokensPerDay = budgetFlag(parsed.values['tokens-per-day'], tokenBudget, '--tokens-per-day') ?? null;
          const ctx = budgetFlag(parsed.values['context-tokens'], contextTokens, '--context-tokens') ?? null;
          const group = store.addGroup({ name, isMain: !!parsed.values.main, trigger: trigger ?? null, model: model ?? null, allowedSenders: senders(parsed.values.allow) ?? null, mounts, chats: bind, tokensPerDay, contextTokens: ctx });
          prepareGroupDirs(config.home, name);
          audit(config.home, name, { action: 'group.add', main: group.isMain, trigger: group.trigger, model: group.model, allowedSenders: group.allowedSenders, mounts: group.mounts, chats: group.chats, tokensPerDay: group.tokensPerDay, contextTokens: group.contextTokens });
          console.log(`added group "${group.name}"${group.isMain ? ' (main)' : ''}; its folder is ${groupPaths(config.home, name).folder}`);
          if (group.tokensPerDay !== null) console.log(budgetText(group.tokensPerDay));
          if (group.contextTokens !== null) console.log(contextText(config, group));
          if (group.chats.length) console.log(`chats: ${group.chats.join(', ')}`);
          return 0;
        }
        case 'set': {
          if (!name) throw new UsageError('missing group name');
          const { trigger, model } = parsed.values;
          checkTrigger(trigger);
          checkModel(model);
          if (parsed.values.allow !== undefined && parsed.values['allow-all']) throw new UsageError('use either --allow or --allow-all');
          const allow = parsed.values['allow-all'] ? null : senders(parsed.values.allow);
          const limits = limitsFrom(parsed.values, store.getGroup(name)?.limits ?? {});
          const bind = chats(parsed.values.chat, '--chat');
          const unbind = chats(parsed.values.unchat, '--unchat');
          const tokensPerDay = budgetFlag(parsed.values['tokens-per-day'], tokenBudget, '--tokens-per-day');
          const ctx = budgetFlag(parsed.values['context-tokens'], contextTokens, '--context-tokens');
          if (trigger === undefined && model === undefined && allow === undefined && limits === undefined && tokensPerDay === undefined && ctx === undefined && !bind.length && !unbind.length) {
            throw new UsageError('nothing to change: give --chat, --unchat, --trigger, --allow, --allow-all, --model, --tokens-per-day, --context-tokens or a limit');
          }
          const g = store.updateGroup(name, {
            ...(trigger !== undefined ? { trigger } : {}), ...(model !== undefined ? { model } : {}), ...(allow !== undefined ? { allowedSenders: allow } : {}),
            ...(limits !== undefined ? { limits } : {}), ...(tokensPerDay !== undefined ? { tokensPerDay } : {}),
            ...(ctx !== undefined ? { contextTokens: ctx } : {}), bind, unbind,
          });
          audit(config.home, name, { action: 'group.set', trigger: g.trigger, model: g.model, allowedSenders: g.allowedSenders, limits: g.limits, tokensPerDay: g.tokensPerDay, contextTokens: g.contextTokens, chats: g.chats });
          const eff = { ...config.limits, ...g.limits };
          console.log(`group "${g.name}": trigger ${g.trigger ?? '@' + config.assistantName}, senders ${g.allowedSenders ? g.allowedSenders.join(', ') : 'everyone'}, model ${g.model ?? config.model ?? '(HAKO_MODEL)'}`);
          console.log(`chats: ${g.chats.length ? g.chats.join(', ') : 'none (local chats only)'}`);
          console.log(`limits: memory ${eff.memory}, cpus ${eff.cpus}, pids ${eff.pids}, tmpfs ${eff.tmpfs}, turn ${eff.turnTimeoutSeconds} s, output ${eff.maxOutputChars} chars (from the next container start), tasks ${eff.maxTasks}, disk ${eff.disk}`);
          console.log(`${budgetText(g.tokensPerDay)}${config.tokensPerDay === null ? '' : `; all groups together: ${config.tokensPerDay} (HAKO_TOKENS_PER_DAY)`}`);
          console.log(contextText(config, g));
          return 0;
        }
        case 'mounts': {
          if (!name) throw new UsageError('missing group name');
          const g = store.getGroup(name);
          if (!g) throw new Error(`unknown group "${name}" (see: hako groups list)`);
          const [action, arg, more] = extra;
          if (more) throw new UsageError(`unexpected argument "${more}"`);
          if (action === 'add' || action === 'remove') {
            if (!arg) throw new UsageError(`missing HOSTPATH for "mounts ${action}"`);
            const req = parseMountArg(arg);
            const rest = g.mounts.filter((m) => m.hostPath !== req.hostPath);
            if (action === 'remove' && rest.length === g.mounts.length) throw new Error(`group "${name}" has no mount ${req.hostPath}`);
            const mounts = action === 'add' ? [...rest, ...checkedMounts(config, store, name, g.isMain, [req])] : rest;
            store.updateGroup(name, { mounts });
            audit(config.home, name, { action: `mount.${action}`, hostPath: req.hostPath, readWrite: req.readWrite });
            console.log(`group "${name}" ${action === 'add' ? 'now mounts' : 'no longer mounts'} ${req.hostPath}; it applies from the next container start`);
          } else if (action !== undefined) {
            throw new UsageError(`unknown mounts action "${action}" (use add or remove)`);
          }
          for (const m of store.getGroup(name)!.mounts) console.log(`${m.hostPath}${m.readWrite ? ' (read-write)' : ' (read-only)'}`);
          return 0;
        }
        case 'list': {
          const groups = store.listGroups();
          if (groups.length === 0) {
            console.log('no groups yet: add one with "hako groups add main --main"');
            return 0;
          }
          for (const g of groups) {
            const c = store.counts(g.name);
            const flags = [g.isMain ? 'main' : `trigger ${g.trigger ?? '@' + config.assistantName}`, g.allowedSenders ? `senders ${g.allowedSenders.join(',')}` : '', g.model ? `model ${g.model}` : '', g.tokensPerDay !== null ? `${g.tokensPerDay} tokens/day` : '', g.contextTokens !== null ? `context ${g.contextTokens} tokens` : ''].filter(Boolean).join(', ');
            console.log(`${g.name.padEnd(20)} ${flags.padEnd(30)} waiting ${c.pending + c.in_batch}, answered ${c.answered}, failed ${c.failed}`);
            if (g.chats.length) console.log(`${''.padEnd(20)} chats: ${g.chats.join(', ')}`);
          }
          return 0;
        }
        case 'remove': {
          if (!name) throw new UsageError('missing group name');
          assertGroupName(name);
          if (!store.removeGroup(name)) throw new Error(`unknown group "${name}" (see: hako groups list)`);
          audit(config.home, name, { action: 'group.remove' });
          console.log(`removed group "${name}"; its folder ${groupPaths(config.home, name).folder} was kept (delete it yourself if you no longer need it)`);
          console.log(await removeContainers(config.home, name));
          return 0;
        }
        default:
          throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'missing subcommand');
      }
    } finally {
      store.close();
    }
  });
}
