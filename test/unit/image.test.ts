// The agent image's identity: its tag, the source hash that decides when to rebuild, the
// offline/online choice, and how build output is labelled. Nothing here builds an image.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chooseOffline, IMAGE_REPO, imageTag, REPO_ROOT, sourceHash, stepPrefixer } from '../../src/runtime/image.ts';

/** A package.json and its lockfile with `deps` (the host's or a skill's; the agent has none). */
function fakePackage(deps: Record<string, string>) {
  return { name: 'fake', version: '1.2.3', type: 'module', dependencies: deps, devDependencies: { typescript: '5.0.0' } };
}

function fakeLock(deps: Record<string, string>) {
  const entries: Record<string, unknown> = { 'node_modules/typescript': { version: '5.0.0', dev: true } };
  for (const [name, version] of Object.entries(deps)) entries[`node_modules/${name}`] = { version, integrity: `sha512-${name}` };
  return { name: 'fake', version: '1.2.3', lockfileVersion: 3, requires: true, packages: { '': fakePackage(deps), ...entries } };
}

const TREE: Record<string, string> = {
  'agent/main.ts': 'console.log("agent");\n',
  'agent/tools/bash.ts': 'export {};\n',
  'protocol/ipc.ts': 'export const V = 1;\n',
  'container/Dockerfile': 'FROM node:24-bookworm-slim\n',
  'container/build-offline.sh': '#!/usr/bin/env bash\n',
  'container/app-package.json': '{ "type": "module" }\n',
  'package.json': `${JSON.stringify(fakePackage({ croner: '11.0.1' }))}\n`,
  'package-lock.json': `${JSON.stringify(fakeLock({ croner: '11.0.1' }))}\n`,
  'src/main.ts': 'host code\n',
  'test/unit/a.test.ts': 'a test\n',
};

async function fakeTree(t: TestContext, files: Record<string, string> = TREE, order?: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'hako-image-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const rel of order ?? Object.keys(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), files[rel] ?? '');
  }
  return root;
}

test('imageTag - is hako-agent:<package.json version>', async () => {
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(IMAGE_REPO, 'hako-agent');
  assert.equal(imageTag(), `hako-agent:${pkg.version}`);
  assert.match(imageTag(), /^hako-agent:\d+\.\d+\.\d+/);
});

test('sourceHash - is 16 hex digits and the same for the same tree', async (t) => {
  const a = await fakeTree(t);
  const b = await fakeTree(t, TREE, Object.keys(TREE).reverse());
  const hash = await sourceHash(a);
  assert.match(hash, /^[0-9a-f]{16}$/);
  assert.equal(await sourceHash(a), hash);
  assert.equal(await sourceHash(b), hash, 'creation order must not matter');
});

test('sourceHash - changes when a file under agent/ changes, appears or is renamed', async (t) => {
  const root = await fakeTree(t);
  const before = await sourceHash(root);
  await writeFile(join(root, 'agent/main.ts'), 'console.log("changed");\n');
  const edited = await sourceHash(root);
  assert.notEqual(edited, before);

  await writeFile(join(root, 'agent/new.ts'), '');
  const added = await sourceHash(root);
  assert.notEqual(added, edited, 'an empty new file counts');

  const renamed = await fakeTree(t, { ...TREE, 'agent/tools/shell.ts': TREE['agent/tools/bash.ts'] ?? '' });
  await rm(join(renamed, 'agent/tools/bash.ts'));
  assert.notEqual(await sourceHash(renamed), before, 'the path is part of the hash, not just the content');
});

test('sourceHash - covers protocol/ and container/, the image\'s package.json included', async (t) => {
  const root = await fakeTree(t);
  const seen = new Set([await sourceHash(root)]);
  for (const rel of ['protocol/ipc.ts', 'container/Dockerfile', 'container/build-offline.sh', 'container/app-package.json']) {
    await writeFile(join(root, rel), `changed ${rel}\n`);
    const hash = await sourceHash(root);
    assert.ok(!seen.has(hash), `a change to ${rel} must change the hash`);
    seen.add(hash);
  }
});

test('sourceHash - a chat skill\'s package added to package.json and the lockfile does not make the image stale', async (t) => {
  const root = await fakeTree(t);
  const before = await sourceHash(root);
  await writeFile(join(root, 'package.json'), JSON.stringify(fakePackage({ croner: '11.0.1', grammy: '1.46.0' }), null, 2));
  await writeFile(join(root, 'package-lock.json'), JSON.stringify(fakeLock({ croner: '11.0.1', grammy: '1.46.0' }), null, 2));
  assert.equal(await sourceHash(root), before);
});

test('sourceHash - ignores host code, tests and node_modules', async (t) => {
  const root = await fakeTree(t);
  const before = await sourceHash(root);
  await writeFile(join(root, 'src/main.ts'), 'other host code\n');
  await writeFile(join(root, 'test/unit/a.test.ts'), 'other test\n');
  await mkdir(join(root, 'agent/node_modules/x'), { recursive: true });
  await writeFile(join(root, 'agent/node_modules/x/index.js'), 'x\n');
  assert.equal(await sourceHash(root), before);
});

test('sourceHash - a symlink counts by its target and is not followed', async (t) => {
  const root = await fakeTree(t);
  await symlink('/etc/passwd', join(root, 'agent/link'));
  const first = await sourceHash(root);
  await rm(join(root, 'agent/link'));
  await symlink('/etc/hostname', join(root, 'agent/link'));
  assert.notEqual(await sourceHash(root), first);
});

test('sourceHash - of the repository is stable between two calls', async () => {
  assert.equal(await sourceHash(), await sourceHash(REPO_ROOT));
});

test('chooseOffline - HAKO_IMAGE_OFFLINE=1 forces offline and =0 forces the Dockerfile, without probing', async (t) => {
  const saved = process.env.HAKO_IMAGE_OFFLINE;
  t.after(() => {
    if (saved === undefined) delete process.env.HAKO_IMAGE_OFFLINE;
    else process.env.HAKO_IMAGE_OFFLINE = saved;
  });
  t.mock.method(globalThis, 'fetch', () => assert.fail('must not probe the registry'));
  process.env.HAKO_IMAGE_OFFLINE = '1';
  assert.equal(await chooseOffline(), true);
  process.env.HAKO_IMAGE_OFFLINE = '0';
  assert.equal(await chooseOffline(), false);
});

test('chooseOffline - any HTTP answer means online, a network error means offline', async (t) => {
  const saved = process.env.HAKO_IMAGE_OFFLINE;
  t.after(() => {
    if (saved === undefined) delete process.env.HAKO_IMAGE_OFFLINE;
    else process.env.HAKO_IMAGE_OFFLINE = saved;
  });
  delete process.env.HAKO_IMAGE_OFFLINE;
  const fetchMock = t.mock.method(globalThis, 'fetch', async () => new Response('unauthorized', { status: 401 }));
  assert.equal(await chooseOffline(), false);
  fetchMock.mock.mockImplementation(async () => {
    throw new TypeError('fetch failed');
  });
  assert.equal(await chooseOffline(), true);
});

test('stepPrefixer - labels output lines with the step they belong to', () => {
  const prefix = stepPrefixer();
  assert.equal(prefix('Sending build context'), '[image]   Sending build context');
  assert.equal(prefix('[2/5] node v24'), '[2/5] node v24');
  assert.equal(prefix('npm 11'), '[2/5]   npm 11');
  assert.equal(prefix('Step 3/14 : WORKDIR /app'), 'Step 3/14 : WORKDIR /app');
  assert.equal(prefix(' ---> Running in abc'), '[3/14]    ---> Running in abc');
  assert.equal(prefix('#7 [stage 4/6] RUN npm ci'), '#7 [stage 4/6] RUN npm ci');
  assert.equal(prefix('\x1b[91mnpm error\x1b[0m'), '[4/6]   npm error', 'colour codes are dropped');
});
