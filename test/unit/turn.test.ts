// The turn lifecycle's decisions, as pure functions and through the Turns registry: how a turn
// ends (once), which messages it may still write, and whether a failed batch is retried.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { charge, endState, exitEnd, retryDelay, Turns, type TurnEnd, type TurnsOptions } from '../../src/core/turn.ts';
import { failOutcome } from '../../src/core/store-contract.ts';
import { silentLogger } from '../../src/core/log.ts';

test('turn - the first end wins; a later done, error, timeout or exit changes nothing', () => {
  const timeout: TurnEnd = { kind: 'error', message: 'the turn took longer than 5 s', retryable: true };
  const ending = endState({ kind: 'running', written: 10 }, timeout);
  assert.deepEqual(ending, { kind: 'ending', end: timeout });
  assert.deepEqual(endState(ending, { kind: 'done' }), ending);
  assert.deepEqual(endState({ kind: 'waiting' }, { kind: 'done' }), { kind: 'ending', end: { kind: 'done' } });
});

test('turn - only a running turn may write, and every message counts toward its limit', () => {
  assert.equal(charge({ kind: 'waiting' }, 1, 100).verdict, 'closed');
  assert.equal(charge({ kind: 'ending', end: { kind: 'done' } }, 1, 100).verdict, 'closed');
  const first = charge({ kind: 'running', written: 0 }, 60, 100);
  assert.deepEqual(first, { verdict: 'ok', state: { kind: 'running', written: 60 } });
  const second = charge(first.state, 41, 100);
  assert.equal(second.verdict, 'over');
  assert.deepEqual(second.state, first.state, 'a refused message is not counted');
  assert.equal(charge(first.state, 40, 100).verdict, 'ok', 'exactly the limit is allowed');
});

test('turn - retries back off exponentially up to the maximum', () => {
  const cfg = { retryBaseMs: 100, retryMaxMs: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, cfg)), [100, 200, 400, 800, 1000, 1000]);
});

test('turn - a container that exits mid-turn ends it as a retryable error naming the code and its last lines', () => {
  const end = exitEnd({ code: 137, tail: 'a\n\nb\nc\nd\n' });
  assert.deepEqual(end, { kind: 'error', message: 'the agent container exited with code 137: b | c | d', retryable: true });
  assert.deepEqual(exitEnd({ code: 1, tail: '' }), { kind: 'error', message: 'the agent container exited with code 1', retryable: true });
});

/** Turns with a recording store: what a turn's settlement does, without a container. */
function turns(overrides: { attempts?: number; runningBatches?: { id: string; group: string }[] } = {}) {
  const calls: string[] = [];
  const told: string[] = [];
  const later: [string, number][] = [];
  const opts = {
    store: {
      finishBatch: (id: string) => { calls.push(`finish ${id}`); },
      failBatch: (id: string, error: string, o: { retryable: boolean; maxAttempts: number; keepWaiting?: boolean; counts?: boolean }) => {
        calls.push(`fail ${id} ${error} retryable=${o.retryable} keep=${o.keepWaiting === true}${o.counts === false ? ' (not a try)' : ''}`);
        return failOutcome(overrides.attempts ?? 1, o);
      },
      runningBatches: () => overrides.runningBatches ?? [],
      getGroup: () => undefined,
    },
    config: { maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 1000, limits: { maxOutputChars: 50 } },
    log: silentLogger,
    tell: (g: string, text: string) => { told.push(`${g}: ${text}`); },
    modelDown: () => false,
    queue: { enqueue: () => {}, enqueueLater: (g: string, ms: number) => { later.push([g, ms]); } },
  } as unknown as TurnsOptions;
  return { t: new Turns(opts), calls, told, later };
}

test('turns - a turn ends once: the first of done, timeout and exit settles it', async () => {
  const { t } = turns();
  const ended = t.begin('team', 'b1', { maxOutputChars: 50 });
  t.handOver('team');
  assert.equal(t.end('team', { kind: 'error', message: 'timeout', retryable: true }), true);
  assert.equal(t.end('team', { kind: 'done' }, 'b1'), false, 'a late done is ignored');
  assert.deepEqual(await ended, { kind: 'error', message: 'timeout', retryable: true });
  assert.equal(t.charge('team', 'b1', 1).verdict, 'closed', 'an ended turn cannot speak');
  t.close('team');
  assert.deepEqual([...t.groups()], []);
});

test('turns - a done for another batch does not end the group\'s turn', () => {
  const { t } = turns();
  void t.begin('team', 'b1', { maxOutputChars: 50 });
  t.handOver('team');
  assert.equal(t.end('team', { kind: 'done' }, 'old-batch'), false);
  assert.equal(t.running('team'), true);
  assert.equal(t.charge('team', 'old-batch', 1).verdict, 'closed', 'nor may an ended batch speak');
  assert.equal(t.charge('team', 'b1', 50).verdict, 'ok');
  assert.equal(t.charge('team', 'b1', 1).verdict, 'over');
});

test('turns - settling: done finishes; an error is retried with backoff, or given up and the group told', () => {
  const a = turns({ attempts: 2 });
  a.t.settle('team', 'b1', { kind: 'done' }, undefined);
  a.t.settle('team', 'b2', { kind: 'error', message: 'boom', retryable: true }, undefined);
  assert.deepEqual(a.calls, ['finish b1', 'fail b2 boom retryable=true keep=false']);
  assert.deepEqual(a.later, [['team', 200]]);
  assert.deepEqual(a.told, []);
  const b = turns({ attempts: 3 });
  b.t.settle('team', 'b3', { kind: 'error', message: 'boom', retryable: true }, undefined);
  assert.deepEqual(b.told, ['team: Sorry, I could not answer: boom']);
  assert.deepEqual(b.later, []);
});

test('turns - a stopped turn is failed (kept waiting only when asked, and then not counted as a try) and the group is told', () => {
  const { t, calls, told } = turns();
  t.settle('team', 'b1', { kind: 'stopped', message: 'it wrote too much' }, undefined);
  t.settle('team', 'b2', { kind: 'stopped', message: 'the disk is nearly full', keep: true }, undefined);
  assert.deepEqual(calls, ['fail b1 it wrote too much retryable=false keep=false', 'fail b2 the disk is nearly full retryable=true keep=true (not a try)']);
  assert.deepEqual(told, ['team: I stopped this turn: it wrote too much.', 'team: I stopped this turn: the disk is nearly full.']);
});

test('turns - after a restart, two batches left running in one group are settled each by its own outputs', async () => {
  const { t, calls } = turns({ runningBatches: [{ id: 'old', group: 'a' }, { id: 'new', group: 'a' }] });
  await t.recover(async () => { t.end('a', { kind: 'done' }, 'new'); });
  assert.deepEqual(calls, ['fail old the host stopped during this turn retryable=true keep=false', 'finish new']);
  assert.deepEqual([...t.groups()], [], 'no turn is left open');
});

test('turns - after a restart, a left turn that wrote done is finished, one that wrote nothing is retried as interrupted', async () => {
  const { t, calls } = turns({ runningBatches: [{ id: 'b1', group: 'a' }, { id: 'b2', group: 'b' }] });
  await t.recover(async () => {
    assert.equal(t.running('a'), true, 'their outputs apply while the drain runs');
    t.end('a', { kind: 'done' }, 'b1');
  });
  assert.deepEqual(calls, ['finish b1', 'fail b2 the host stopped during this turn retryable=true keep=false']);
  assert.deepEqual([...t.groups()], [], 'no turn is left open');
});
