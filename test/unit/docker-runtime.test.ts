import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerRuntime, hardenedArgs, mountMismatch } from '../../src/runtime/docker.ts';
import type { ContainerSpec, Mount } from '../../src/core/runtime.ts';

const spec: ContainerSpec = {
  name: 'hako-main-1', image: 'hako-agent:0.1.0', labels: { 'dev.hako.managed': '1' },
  mounts: [{ host: '/h/groups/main', container: '/workspace/group', readonly: false }, { host: '/h/run/main', container: '/run/hako', readonly: true }],
  env: { HAKO_MODEL: 'openai/x' }, user: '1000:1000', limits: { memory: '1g', cpus: '1', pids: 256, tmpfs: '64m' },
};

test('docker runtime - every container gets the hardened flags', () => {
  const args = hardenedArgs(spec).join(' ');
  for (const flag of ['--rm', '--init', '--network none', '--read-only', '--cap-drop ALL', '--security-opt no-new-privileges', '--pids-limit 256', '--memory 1g', '--cpus 1', '--user 1000:1000']) {
    assert.ok(args.includes(flag), flag);
  }
  assert.match(args, /--mount type=bind,source=\/h\/run\/main,target=\/run\/hako,readonly/);
  assert.doesNotMatch(args, /docker\.sock/);
});

test('docker runtime - attack 30: the engine keeps no log of a container (the host reads the attached stream)', () => {
  const args = hardenedArgs(spec);
  const i = args.indexOf('--log-driver');
  assert.ok(i > 0 && i < args.indexOf(spec.image), 'before the image');
  assert.equal(args[i + 1], 'none');
  assert.equal(args.filter((a) => a === '--log-driver').length, 1);
});

test('docker runtime - attack 29: a mount is accepted only when the container holds the very folder that was checked', (t) => {
  // A stand-in for /proc/<pid>/root: a tree with the mount target, and folders to compare.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-mountcheck-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'root');
  const target = path.join(root, 'workspace', 'extra', 'notes');
  fs.mkdirSync(target, { recursive: true });
  fs.mkdirSync(path.join(base, 'canary'));
  const id = (p: string) => { const st = fs.lstatSync(p, { bigint: true }); return `${st.dev}:${st.ino}`; };
  const mount = (identity: string | undefined): Mount => ({ host: '/srv/notes', container: '/workspace/extra/notes', readonly: true, ...(identity ? { identity } : {}) });
  assert.equal(mountMismatch(root, [mount(id(target))]), null);
  assert.equal(mountMismatch(root, [mount(undefined)]), null, 'mounts without an identity (hako\'s own folders) are not compared');
  assert.match(mountMismatch(root, [mount(id(path.join(base, 'canary')))]) ?? '', /the folder mounted at \/workspace\/extra\/notes is not the folder that was checked \(\/srv\/notes\)/);
  // A link where the mount should be is compared as the link itself, never followed.
  fs.rmSync(target, { recursive: true });
  fs.symlinkSync(path.join(base, 'canary'), target);
  assert.match(mountMismatch(root, [mount(id(path.join(base, 'canary')))]) ?? '', /is not the folder that was checked/);
  fs.rmSync(target);
  assert.match(mountMismatch(root, [mount(id(root))]) ?? '', /could not look at \/workspace\/extra\/notes in the started container \(ENOENT\).*Docker Desktop/);
});

test('docker runtime - refuses to run a container as root', () => {
  assert.throws(() => hardenedArgs({ ...spec, user: '0:0' }), /root/);
  assert.throws(() => hardenedArgs({ ...spec, user: 'root:root' }), /root/);
});

test('docker runtime - a missing engine is reported with what to install', async () => {
  const problem = await new DockerRuntime({ bin: 'hako-no-such-docker' }).available();
  assert.match(problem ?? '', /not installed: install Docker/);
});
