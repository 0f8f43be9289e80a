// The one way hako skill runs npm: exact versions saved, no lifecycle script of any package
// (nor of the project) ever run, no audit or funding requests. A failure carries npm's own
// last lines and what to do next.

import { spawn } from 'node:child_process';
import { SkillError } from './manifest.ts';

export type NpmEnv = Readonly<Record<string, string | undefined>>;

const QUIET = ['--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'];

/** Runs `npm <args>` in `root`; resolves when npm exits 0, rejects with its error output otherwise. */
export function npm(root: string, args: readonly string[], env: NpmEnv = process.env): Promise<void> {
  // The environment says it twice: an .npmrc or npm_config_* variable cannot turn scripts back on.
  const childEnv = { ...env, npm_config_ignore_scripts: 'true' };
  return new Promise((resolve, reject) => {
    const child = spawn('npm', [...args, ...QUIET], { cwd: root, env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-4000); });
    child.on('error', (e) => reject(new SkillError(`could not run npm (${e.message}): npm comes with Node.js; is it on PATH?`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SkillError(`npm ${args.join(' ')} failed (exit ${code}):\n${err.trim().split('\n').slice(-12).map((l) => `  ${l}`).join('\n')}`));
    });
  });
}

/** Installs `specs` (`name@version`) pinned exactly into dependencies, or devDependencies when `dev`. */
export function npmInstall(root: string, specs: readonly string[], dev: boolean, env?: NpmEnv): Promise<void> {
  return npm(root, ['install', '--save-exact', ...(dev ? ['--save-dev'] : ['--save-prod']), ...specs], env);
}

/** Uninstalls packages by name (from whichever section of package.json holds them). */
export function npmUninstall(root: string, names: readonly string[], env?: NpmEnv): Promise<void> {
  return npm(root, ['uninstall', ...names], env);
}
