import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBody, sizeBytes } from '../../src/runtime/engine-runtime.ts';
import { engineAddress, engineMessage, FrameReader } from '../../src/runtime/engine-api.ts';
import type { ContainerSpec } from '../../src/core/runtime.ts';

const spec: ContainerSpec = {
  name: 'hako-main-1', image: 'hako-agent:0.1.0', labels: { 'dev.hako.managed': '1' },
  mounts: [{ host: '/h/groups/main', container: '/workspace/group', readonly: false }, { host: '/h/run/main', container: '/run/hako', readonly: true }],
  env: { HAKO_MODEL: 'openai/x' }, user: '1000:1000', limits: { memory: '1g', cpus: '0.5', pids: 256, tmpfs: '64m' },
};

type Host = Record<string, unknown>;

test('engine runtime - every container is created with the hardened settings of `docker run` with hardenedArgs', () => {
  const body = createBody(spec);
  const h = body.HostConfig as Host;
  assert.equal(h.AutoRemove, true);
  assert.equal(h.Init, true);
  assert.equal(h.NetworkMode, 'none');
  assert.equal(body.NetworkDisabled, true, 'no network sandbox: a namespace of its own with only a loopback');
  assert.equal(h.ReadonlyRootfs, true);
  assert.deepEqual(h.CapDrop, ['ALL']);
  assert.deepEqual(h.SecurityOpt, ['no-new-privileges']);
  assert.equal(h.PidsLimit, 256);
  assert.equal(h.Memory, 1024 ** 3);
  assert.equal(h.MemorySwap, 1024 ** 3, 'no swap beyond the memory limit');
  assert.equal(h.NanoCpus, 500_000_000);
  assert.deepEqual(h.Tmpfs, { '/tmp': 'rw,nosuid,nodev,size=64m' });
  assert.deepEqual(h.Mounts, [
    { Type: 'bind', Source: '/h/groups/main', Target: '/workspace/group', ReadOnly: false },
    { Type: 'bind', Source: '/h/run/main', Target: '/run/hako', ReadOnly: true },
  ]);
  assert.equal(body.User, '1000:1000');
  assert.deepEqual(body.Env, ['HAKO_MODEL=openai/x']);
  assert.equal(body.Tty, false);
  assert.equal(body.OpenStdin, false);
  assert.doesNotMatch(JSON.stringify(body), /docker\.sock/);
  assert.equal(h.Runtime, undefined, 'the engine default unless the spec names one');
  assert.equal((createBody({ ...spec, ociRuntime: 'runsc' }).HostConfig as Host).Runtime, 'runsc');
});

test('engine runtime - attack 30: the engine keeps no log of a container (the host reads the attached stream)', () => {
  assert.deepEqual((createBody(spec).HostConfig as Host).LogConfig, { Type: 'none', Config: {} });
});

test('engine runtime - refuses to create a container that runs as root', () => {
  assert.throws(() => createBody({ ...spec, user: '0:0' }), /root/);
  assert.throws(() => createBody({ ...spec, user: 'root:root' }), /root/);
});

test('engine runtime - sizes are read as the docker CLI reads them', () => {
  assert.equal(sizeBytes('512m'), 512 * 1024 ** 2);
  assert.equal(sizeBytes('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(sizeBytes('64K'), 64 * 1024);
  assert.throws(() => sizeBytes('lots'), /not a size like 512m/);
});

test('engine api - the attach stream is taken apart into its frames, however the bytes arrive', () => {
  const frame = (stream: number, text: string) => {
    const data = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(data.length, 4);
    return Buffer.concat([head, data]);
  };
  const bytes = Buffer.concat([frame(1, 'out line\n'), frame(2, 'err: caf\u00e9\n'), frame(1, '')]);
  for (const size of [1, 3, 7, 8, 9, bytes.length]) {
    const got: [number, string][] = [];
    const r = new FrameReader((s, d) => got.push([s, d.toString('utf8')]));
    for (let i = 0; i < bytes.length; i += size) r.push(bytes.subarray(i, i + size));
    assert.deepEqual(got, [[1, 'out line\n'], [2, 'err: caf\u00e9\n'], [1, '']], `chunks of ${size}`);
  }
});

test('engine api - DOCKER_HOST is read as the CLI reads it; what only the CLI can reach is said so', () => {
  assert.deepEqual(engineAddress('unix:///var/run/docker.sock'), { socketPath: '/var/run/docker.sock' });
  assert.deepEqual(engineAddress('unix:///run/user/1000/podman/podman.sock'), { socketPath: '/run/user/1000/podman/podman.sock' });
  assert.deepEqual(engineAddress('tcp://10.0.0.2:2375'), { host: '10.0.0.2', port: 2375 });
  assert.deepEqual(engineAddress('tcp://[::1]:2375'), { host: '::1', port: 2375 });
  assert.match(String(engineAddress('tcp://10.0.0.2:2376', { DOCKER_TLS_VERIFY: '1' })), /TLS.*docker CLI/);
  assert.match(String(engineAddress('ssh://me@box')), /docker CLI/);
});

test('engine api - an engine error is told by its own message', () => {
  assert.equal(engineMessage({ message: 'No such image: x:1' }), 'No such image: x:1');
  assert.equal(engineMessage('page not found\n'), 'page not found');
  assert.equal(engineMessage(''), 'no message');
});

test('engine runtime - HAKO_ENGINE picks the CLI when asked, and an unknown value is refused with the choices', async () => {
  const { hostRuntime } = await import('../../src/runtime/engine-runtime.ts');
  const { DockerRuntime } = await import('../../src/runtime/docker.ts');
  assert.ok((await hostRuntime({ HAKO_ENGINE: 'cli' })) instanceof DockerRuntime);
  await assert.rejects(hostRuntime({ HAKO_ENGINE: 'podman' }), /HAKO_ENGINE="podman" is invalid: use api .* or cli/);
});
