// What hako does when no container engine answers: install and start Docker where it may
// (root on Debian), otherwise say exactly what to do for the platform.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planEngine } from '../../src/runtime/engine.ts';
import type { EngineFacts, EnginePlan } from '../../src/runtime/engine.ts';

const debianRoot: EngineFacts = {
  platform: 'linux',
  root: true,
  debian: true,
  wsl: false,
  systemd: false,
  dockerCli: false,
  dockerd: false,
  infoError: 'spawn docker ENOENT',
};

function failMessage(plan: EnginePlan): string {
  assert.equal(plan.kind, 'fail');
  return plan.kind === 'fail' ? plan.message : '';
}

test('planEngine - root on Debian without Docker installs docker.io', () => {
  assert.deepEqual(planEngine(debianRoot, { install: true }), { kind: 'install' });
  assert.deepEqual(planEngine({ ...debianRoot, dockerCli: true }, { install: true }), { kind: 'install' });
});

test('planEngine - root on Debian with Docker installed starts it through systemd or a detached dockerd', () => {
  const installed = { ...debianRoot, dockerCli: true, dockerd: true, infoError: 'Cannot connect to the Docker daemon' };
  assert.deepEqual(planEngine(installed, { install: true }), { kind: 'start', via: 'dockerd' });
  assert.deepEqual(planEngine({ ...installed, systemd: true }, { install: true }), { kind: 'start', via: 'systemctl' });
});

test('planEngine - without install permission, root on Debian is told to run hako setup', () => {
  assert.match(failMessage(planEngine(debianRoot, { install: false })), /hako setup/);
});

test('planEngine - root on another Linux is told to install Docker Engine and start it', () => {
  const message = failMessage(planEngine({ ...debianRoot, debian: false }, { install: true }));
  assert.match(message, /docs\.docker\.com\/engine\/install/);
  assert.match(message, /systemctl start docker/);
});

test('planEngine - macOS names Docker Desktop, OrbStack and colima', () => {
  const mac = { ...debianRoot, platform: 'darwin' as const, root: false, debian: false };
  const message = failMessage(planEngine(mac, { install: true }));
  for (const engine of ['Docker Desktop', 'OrbStack', 'colima']) assert.ok(message.includes(engine), engine);
  assert.match(failMessage(planEngine({ ...mac, dockerCli: true }, { install: true })), /colima start/);
});

test('planEngine - a Linux user without root is told to ask for the daemon and the docker group', () => {
  const user = { ...debianRoot, root: false, dockerCli: true, dockerd: true, infoError: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' };
  const notRunning = failMessage(planEngine(user, { install: true }));
  assert.match(notRunning, /sudo systemctl start docker/);
  assert.match(notRunning, /usermod -aG docker/);

  const denied = failMessage(planEngine({ ...user, infoError: 'permission denied while trying to connect to the Docker daemon socket' }, { install: true }));
  assert.match(denied, /docker group/);
  assert.doesNotMatch(denied, /systemctl start/);

  const missing = failMessage(planEngine({ ...user, dockerCli: false, dockerd: false }, { install: true }));
  assert.match(missing, /apt-get install docker\.io/);
});

test('planEngine - WSL users also hear about Docker Desktop WSL integration', () => {
  const wsl = { ...debianRoot, root: false, wsl: true, dockerCli: true, dockerd: false, infoError: 'Cannot connect' };
  assert.match(failMessage(planEngine(wsl, { install: true })), /WSL integration/);
});
