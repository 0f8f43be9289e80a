// `hako skill list|add|remove`: integrations (chat channels) are skills that the owner adds
// to this checkout of hako and takes out again (skills/README.md). The work is done by
// src/skills/; this module finds the checkout, prints, and after an add runs the doctor
// check of the channel that was added.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from '../core/config.ts';
import type { ChannelModule } from '../core/channel.ts';
import { safeText } from '../core/safe-text.ts';
import { addSkill, isGitCheckout, removeSkill, skillState, type Options } from '../skills/apply.ts';
import { assertSkillName, listSkills, type Skill } from '../skills/manifest.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { channelChecks, printChecks, type Check } from './doctor.ts';
import { channelEnv } from './secrets.ts';

export const help = `Usage:
  hako skill list                     every skill: available, added, or added and changed locally
  hako skill add <name>               add a skill to this checkout of hako
  hako skill remove <name> [--force]  take it out again

A skill (skills/<name>/, see skills/README.md) adds an integration such as a chat
channel: its files, one line in src/channels/installed.ts and its pinned dependencies;
or only files, such as instructions for the agent (agent/instructions/<name>.md).
  add      copies its files, registers it, installs its dependencies with npm (exact
           versions, no install scripts run), then checks the channel's configuration
           and says what to set; a second add changes nothing
  remove   deletes what add put there, so the tree is byte for byte as before (git status
           clean); refuses to delete files you changed since and shows the diff, unless
           --force is given`;

/** The checkout this hako runs from: skills change its source tree. */
export function repoRoot(): string {
  return path.resolve(import.meta.dirname, '..', '..');
}

function notGit(root: string): void {
  if (!isGitCheckout(root)) {
    console.error(`note: ${root} is not a git checkout (no .git): a skill changes hako's source tree, and without git you cannot see or undo those changes with "git status" / "git diff"; a clone of hako's repository is the usual way to run it`);
  }
}

export function listLines(root: string): string[] {
  const listed = listSkills(root);
  if (listed.length === 0) return [`no skills in ${path.join(root, 'skills')}`];
  const width = Math.max(...listed.map((l) => l.name.length));
  return listed.map((l) => {
    const name = l.name.padEnd(width);
    if (!('skill' in l)) return `${name}  ${'invalid'.padEnd(9)}  ${l.error.replace(/\s*\n\s*/g, ' ')}`;
    const s = skillState(root, l.skill);
    const changed = [...s.modified, ...s.changedDeps];
    let status: string, detail = '';
    if (s.status === 'available') status = 'available';
    else if (s.status === 'added') {
      status = changed.length ? 'modified' : 'added';
      if (changed.length) detail = ` — changed locally: ${changed.join(', ')}`;
    } else {
      status = 'partial';
      const missing = [...(s.registered ? [] : [`its line in src/channels/installed.ts`]), ...s.files.filter((f) => f.state === 'missing').map((f) => f.path), ...s.missingDeps];
      detail = ` — missing: ${missing.join(', ')}; run "hako skill add ${l.name}" to finish it or "hako skill remove ${l.name}"`;
    }
    return `${name}  ${status.padEnd(9)}  ${l.skill.manifest.description}${detail}`;
  });
}

/** What the owner must do after adding `skill`, from its manifest; `have` holds the settings present now. */
export function nextSteps(skill: Skill, configDir: string, have: Readonly<Record<string, string | undefined>> = {}): string[] {
  const { env, channel, tests } = skill.manifest;
  const secrets = path.join(configDir, 'secrets.env');
  const out: string[] = [];
  for (const k of env.required) {
    out.push(have[k] ? `${k} is set` : env.secrets.includes(k)
      ? `set ${k} (a secret: in ${secrets}, mode 600, or the environment of hako start; never in a file of the project)`
      : `set ${k} (in the environment of hako start, or ${secrets})`);
  }
  if (env.optional.length) out.push(`optional: ${env.optional.join(', ')}`);
  if (channel === null) out.push('restart hako (hako start): it rebuilds the agent image when the skill changed agent/');
  else out.push(`restart hako (hako start), then bind a chat to a group: hako groups add NAME --chat ${channel}:ADDRESS (or hako groups set NAME --chat …)`);
  out.push(`npm test runs its tests: ${tests.join(', ')}`);
  return out;
}

/** The doctor checks of the channel the skill registered (all installed channels when it registered none by its name). */
async function checkChannel(root: string, skill: Skill, config: Config): Promise<Check[]> {
  if (skill.manifest.channel === null) return [];
  let modules: ChannelModule[];
  try {
    const registry = await import(pathToFileURL(path.join(root, 'src', 'channels', 'registry.ts')).href) as typeof import('../channels/registry.ts');
    modules = await registry.installedChannels();
  } catch (err) {
    return [{ name: `channel ${skill.manifest.channel}`, problem: `src/channels/installed.ts could not be loaded: ${(err as Error).message}` }];
  }
  const own = modules.filter((m) => m.name === skill.manifest.channel);
  if (own.length === 0) {
    return [{ name: `channel ${skill.manifest.channel}`, problem: `skill "${skill.name}" registered no channel module named "${skill.manifest.channel}" (installed: ${modules.map((m) => m.name).join(', ') || 'none'}): its manifest's "channel" must name the module its register line loads` }];
  }
  return channelChecks(config, own);
}

/** Runs a subcommand against the checkout at `root` (tests give a scratch one). */
export async function skillCommand(root: string, args: string[], opts: Options = {}): Promise<number> {
  const parsed = parse(args, { force: { type: 'boolean' } }, help);
  if (!parsed) return 0;
  const [sub, name, extra] = parsed.positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  if (sub === 'list') {
    if (name !== undefined) throw new UsageError(`unexpected argument "${name}"`);
    notGit(root);
    for (const line of listLines(root)) console.log(safeText(line));
    return 0;
  }
  if (sub !== 'add' && sub !== 'remove') throw new UsageError(sub === undefined ? 'which subcommand: list, add or remove?' : `unknown subcommand "${sub}"`);
  if (name === undefined) throw new UsageError(`hako skill ${sub} needs the skill's name (hako skill list shows them)`);
  if (parsed.values.force && sub !== 'remove') throw new UsageError('--force is for remove only');
  assertSkillName(name);
  notGit(root);

  if (sub === 'add') {
    const r = await addSkill(root, name, opts);
    if (r.done.length === 0) console.log(`skill ${name} is already added; nothing changed.`);
    else console.log(`skill ${name} added:\n${r.done.map((d) => `  ${d}`).join('\n')}`);
    if (r.kept.length) console.log(`kept your local changes (the skill's copies are in skills/${name}/add/):\n${r.kept.map((k) => `  ${k}`).join('\n')}`);
    let config: Config | undefined;
    try {
      config = loadConfig();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.log(`[FAIL] the configuration: ${err.message}`);
    }
    let have: Readonly<Record<string, string | undefined>> = process.env;
    if (config) {
      printChecks(await checkChannel(root, r.skill, config));
      try {
        have = channelEnv(config.configDir);
      } catch {
        // An unreadable secrets.env: the check above said so and how to fix it.
      }
    }
    const configDir = config?.configDir ?? '~/.config/hako';
    console.log(`next steps (skills/${name}/SKILL.md has the details):\n${nextSteps(r.skill, configDir, have).map((s) => `  - ${s}`).join('\n')}`);
    return 0;
  }

  const r = await removeSkill(root, name, { ...opts, force: !!parsed.values.force });
  if (r.kind === 'not-added') {
    console.log(`skill ${name} is not added; nothing changed.`);
    return 0;
  }
  if (r.kind === 'refused') {
    console.log(safeText(r.diff.trimEnd()));
    console.error(`hako: not removing skill ${name}: you changed what it added (diff above, from the skill's copy to yours):\n${r.modified.map((m) => `  ${m}`).join('\n')}\nKeep your changes somewhere else (or in the skill: skills/${name}/add/), or run "hako skill remove ${name} --force" to delete them too.`);
    return 1;
  }
  console.log(`skill ${name} removed:\n${r.done.map((d) => `  ${d}`).join('\n')}`);
  const { env, channel } = r.skill.manifest;
  if (channel !== null) console.log(`left as they are: chats bound to ${channel}:… (hako groups set NAME --unchat ${channel}:ADDRESS)${env.secrets.length ? ` and ${env.secrets.join(', ')} in secrets.env or the environment, no longer needed` : ''}.`);
  return 0;
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, () => skillCommand(repoRoot(), args));
}
