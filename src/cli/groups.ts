// `hako groups add|list|remove`: registers chats as groups. Works whether or not the host
// is running (SQLite WAL lets both open the database).

import { loadConfig, parseModel } from '../core/config.ts';
import { assertGroupName, groupPaths, homePaths } from '../core/paths.ts';
import { prepareGroupDirs } from '../core/runner.ts';
import { Store } from '../core/store.ts';
import { parse, runCommand, UsageError } from './args.ts';
import fs from 'node:fs';

export const help = `Usage:
  hako groups add <name> [--main] [--trigger WORD] [--allow NAMES] [--model PROVIDER/MODEL]
  hako groups set <name> [--trigger WORD] [--allow NAMES | --allow-all] [--model PROVIDER/MODEL]
  hako groups list
  hako groups remove <name>

Names: lowercase letters, digits, "-" and "_", starting with a letter or digit (max 64).
  --main       the owner's control chat: always engages the agent, may manage other groups
  --trigger    word that calls the agent in this group (default "@" + HAKO_ASSISTANT_NAME)
  --allow      comma-separated senders whose messages may call the agent (others are
               kept as context only); --allow-all removes the list
  --model      this group's model instead of HAKO_MODEL`;

function senders(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = raw.split(',').map((x) => x.trim()).filter(Boolean);
  if (list.length === 0 || list.some((x) => x.length > 100)) throw new UsageError('--allow takes a comma-separated list of sender names (each at most 100 characters)');
  return list;
}

function checkTrigger(trigger: string | undefined): void {
  if (trigger !== undefined && !/^\S{1,64}$/.test(trigger)) throw new UsageError('--trigger must be one word of at most 64 characters');
}

function checkModel(model: string | undefined): void {
  if (model === undefined) return;
  const problem = parseModel(model);
  if (typeof problem === 'string') throw new UsageError(`--model: ${problem}`);
}

export function openStore(home: string): Store {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  return new Store(homePaths(home).db);
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { main: { type: 'boolean' }, trigger: { type: 'string' }, model: { type: 'string' }, allow: { type: 'string' }, 'allow-all': { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const [sub, name, ...extra] = parsed.positionals;
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
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
          const group = store.addGroup({ name, isMain: !!parsed.values.main, trigger: trigger ?? null, model: model ?? null, allowedSenders: senders(parsed.values.allow) ?? null });
          prepareGroupDirs(config.home, name);
          console.log(`added group "${group.name}"${group.isMain ? ' (main)' : ''}; its folder is ${groupPaths(config.home, name).folder}`);
          return 0;
        }
        case 'set': {
          if (!name) throw new UsageError('missing group name');
          const { trigger, model } = parsed.values;
          checkTrigger(trigger);
          checkModel(model);
          if (parsed.values.allow !== undefined && parsed.values['allow-all']) throw new UsageError('use either --allow or --allow-all');
          const allow = parsed.values['allow-all'] ? null : senders(parsed.values.allow);
          if (trigger === undefined && model === undefined && allow === undefined) throw new UsageError('nothing to change: give --trigger, --allow, --allow-all or --model');
          const g = store.updateGroup(name, { ...(trigger !== undefined ? { trigger } : {}), ...(model !== undefined ? { model } : {}), ...(allow !== undefined ? { allowedSenders: allow } : {}) });
          console.log(`group "${g.name}": trigger ${g.trigger ?? '@' + config.assistantName}, senders ${g.allowedSenders ? g.allowedSenders.join(', ') : 'everyone'}, model ${g.model ?? config.model ?? '(HAKO_MODEL)'}`);
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
            const flags = [g.isMain ? 'main' : `trigger ${g.trigger ?? '@' + config.assistantName}`, g.allowedSenders ? `senders ${g.allowedSenders.join(',')}` : '', g.model ? `model ${g.model}` : ''].filter(Boolean).join(', ');
            console.log(`${g.name.padEnd(20)} ${flags.padEnd(30)} waiting ${c.pending + c.in_batch}, answered ${c.answered}, failed ${c.failed}`);
          }
          return 0;
        }
        case 'remove': {
          if (!name) throw new UsageError('missing group name');
          assertGroupName(name);
          if (!store.removeGroup(name)) throw new Error(`unknown group "${name}" (see: hako groups list)`);
          console.log(`removed group "${name}"; its folder ${groupPaths(config.home, name).folder} was kept (delete it yourself if you no longer need it)`);
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
