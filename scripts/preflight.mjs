// Preflight for `npm start` and `npm test`: Node 24+, dependencies installed, then
// `hako setup` (container engine + agent image). Plain JavaScript without modern syntax so
// that an old Node can still run it and print a useful message.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

var REQUIRED_MAJOR = 24;
var root = join(dirname(fileURLToPath(import.meta.url)), '..');
var purpose = process.argv[2];

if (purpose !== 'start' && purpose !== 'test') {
  console.error('usage: node scripts/preflight.mjs start|test');
  process.exit(2);
}

var major = Number(process.versions.node.split('.')[0]);
if (!(major >= REQUIRED_MAJOR)) {
  console.error(
    [
      'hako needs Node.js ' + REQUIRED_MAJOR + ' or newer; this is Node ' + process.versions.node +
        ' (' + process.execPath + ').',
      'Get Node ' + REQUIRED_MAJOR + ' in one of these ways, then run `npm ' + purpose + '` again:',
      '  - download it from https://nodejs.org/',
      '  - with nvm: nvm install ' + REQUIRED_MAJOR + ' && nvm use ' + REQUIRED_MAJOR,
      '  - with npm, no root needed: npm install --prefix ~/.local/node' + REQUIRED_MAJOR + ' node@' +
        REQUIRED_MAJOR,
      '    then: export PATH="$HOME/.local/node' + REQUIRED_MAJOR + '/node_modules/.bin:$PATH"',
    ].join('\n'),
  );
  process.exit(1);
}

if (dependenciesOutdated()) {
  console.log('preflight: installing dependencies (npm ci)');
  var npm = npmCommand();
  var install = spawnSync(npm.command, npm.args.concat(['ci']), { cwd: root, stdio: 'inherit' });
  if (install.status !== 0) {
    console.error('preflight: `npm ci` failed' + (install.error ? ': ' + install.error.message : ''));
    process.exit(install.status || 1);
  }
}

var setup = spawnSync(process.execPath, [join(root, 'bin', 'hako.mjs'), 'setup'], {
  cwd: root,
  stdio: 'inherit',
});
if (setup.error) {
  console.error('preflight: could not run `hako setup`: ' + setup.error.message);
  process.exit(1);
}
process.exit(setup.status === null ? 1 : setup.status);

/** node_modules is missing, or package-lock.json changed after the last install. */
function dependenciesOutdated() {
  var marker = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker)) return true;
  return statSync(join(root, 'package-lock.json')).mtimeMs > statSync(marker).mtimeMs;
}

/** The npm that runs this script (npm sets npm_execpath), else `npm` from PATH. */
function npmCommand() {
  var execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) {
    return { command: process.execPath, args: [execPath] };
  }
  return { command: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}
