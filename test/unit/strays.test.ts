import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProc, strayPids, type ProcInfo } from '../../src/runtime/strays.ts';

const proc = (pid: number, ppid: number, nsPid: number, start: number, zombie = false): ProcInfo => ({ pid, ppid, nsPid, start, zombie });

test('strays - every process but the container\'s init and its oldest child is a stray, whoever its parent is', () => {
  const procs = [
    proc(100, 50, 1, 10), // docker-init
    proc(107, 100, 7, 12), // the agent
    proc(130, 107, 30, 90), // a command the turn left running
    proc(140, 100, 40, 95), // a setsid'd daemon, re-parented to init
    proc(150, 140, 50, 99, true), // already dead
  ];
  assert.deepEqual(strayPids(procs), [130, 140]);
  assert.deepEqual(strayPids(procs.slice(0, 2)), [], 'a clean container has none');
});

test('strays - a process started after the agent cannot pass for it; without an init the answer is unknown', () => {
  assert.deepEqual(strayPids([proc(100, 50, 1, 10), proc(140, 100, 40, 95), proc(107, 100, 7, 12)]), [140]);
  assert.equal(strayPids([proc(107, 100, 7, 12)]), null);
});

test('strays - /proc is parsed past a command name with spaces and parentheses; a host process is refused', () => {
  const stat = '4242 (evil) (1) S 4200 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0';
  assert.deepEqual(parseProc(4242, stat, 'Name:\tx\nNSpid:\t4242\t12\n'), { pid: 4242, ppid: 4200, nsPid: 12, start: 777, zombie: false });
  assert.equal(parseProc(4242, stat, 'Name:\tx\nNSpid:\t4242\n'), undefined, 'not inside a pid namespace: never a container process');
  assert.equal(parseProc(4242, stat.replace(' S ', ' Z '), 'NSpid:\t4242\t12\n')!.zombie, true);
});
