import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerRuntime, hardenedArgs } from '../../src/runtime/docker.ts';
import type { ContainerSpec } from '../../src/core/runtime.ts';

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

test('docker runtime - refuses to run a container as root', () => {
  assert.throws(() => hardenedArgs({ ...spec, user: '0:0' }), /root/);
  assert.throws(() => hardenedArgs({ ...spec, user: 'root:root' }), /root/);
});

test('docker runtime - a missing engine is reported with what to install', async () => {
  const problem = await new DockerRuntime({ bin: 'hako-no-such-docker' }).available();
  assert.match(problem ?? '', /not installed: install Docker/);
});
