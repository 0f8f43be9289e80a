// `hako groups add|list|remove`: registers chats as groups. Works whether or not the host
// is running (SQLite WAL lets both open the database).

import { loadConfig } from '../core/config.ts';
import { assertGroupName, groupPaths, homePaths } from '../core/paths.ts';
import { prepareGroupDirs } from '../core/runner.ts';
import { Store } from '../core/store.ts';
import { parse, runCommand, UsageError } from './args.ts';
import fs from 'node:fs';

export const help = `Usage:
  hako groups add <name> [--main] [--trigger WORD] [--model PROVIDER/MODEL]
  hako groups list
  hako groups remove <name>

Names: lowercase letters, digits, "-" and "_", starting with a letter or digit (max 64).
  --main      the owner's control chat: always engages the agent, may manage other groups
  --trigger   word that calls the agent in this group (default "@" + HAKO_ASSISTANT_NAME)
  --model     this group's model instead of HAKO_MODEL`;

export function openStore(home: string): Store {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  return new Store(homePaths(home).db);
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { main: { type: 'boolean' }, trigger: { type: 'string' }, model: { type: 'string' } }, help);
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
          const trigger = parsed.values.trigger;
          if (trigger !== undefined && !/^\S{1,64}$/.test(trigger)) throw new UsageError('--trigger must be one word of at most 64 characters');
          const group = store.addGroup({ name, isMain: !!parsed.values.main, trigger: trigger ?? null, model: parsed.values.model ?? null });
          prepareGroupDirs(config.home, name);
          console.log(`added group "${group.name}"${group.isMain ? ' (main)' : ''}; its folder is ${groupPaths(config.home, name).folder}`);
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
            const flags = [g.isMain ? 'main' : `trigger ${g.trigger ?? '@' + config.assistantName}`, g.model ? `model ${g.model}` : ''].filter(Boolean).join(', ');
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
