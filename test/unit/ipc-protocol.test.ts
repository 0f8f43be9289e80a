import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipcFileName, isIpcFileName, parseAgentOutput, parseHostInput, MAX_TEXT_CHARS } from '../../protocol/ipc.ts';

test('ipc file names - sort in creation order and pass the name rule', () => {
  const names = Array.from({ length: 50 }, (_, i) => ipcFileName(`id${i}`, 1_700_000_000_000 + Math.floor(i / 10)));
  assert.deepEqual([...names].sort(), names);
  for (const n of names) assert.ok(isIpcFileName(n), n);
  for (const bad of ['.tmp-x.json', '../x.json', 'x.json', '000000000000001-000000-a b.json']) assert.equal(isIpcFileName(bad), false, bad);
});

test('agent outputs - each known type with the right fields is accepted', () => {
  const ok = [
    { v: 1, id: 'a1', type: 'reply', batch: 'b1', text: 'hi' },
    { v: 1, id: 'a2', type: 'send_message', text: 'progress', batch: 'b1' },
    { v: 1, id: 'a3', type: 'send_message', text: 'to other', group: 'sales' },
    { v: 1, id: 'a4', type: 'done', batch: 'b1' },
    { v: 1, id: 'a5', type: 'error', batch: 'b1', message: 'model down', retryable: true },
    { v: 1, id: 'a6', type: 'group.register', name: 'sales', trigger: '@bot' },
  ];
  for (const o of ok) assert.deepEqual(parseAgentOutput(o), { ok: true, value: o });
});

test('agent outputs - unknown types, extra fields, wrong versions and oversized text are rejected with a reason', () => {
  const cases: [unknown, RegExp][] = [
    [null, /not a JSON object/],
    [[], /not a JSON object/],
    [{ v: 2, id: 'a', type: 'reply', batch: 'b', text: 'x' }, /version/],
    [{ v: 1, id: 'a', type: 'group.delete', name: 'x' }, /unknown type/],
    [{ v: 1, id: 'a', type: 'group.register', name: 'x', main: true }, /unexpected field "main"/],
    [{ v: 1, id: 'a', type: 'reply', batch: 'b', text: 'x', group: 'main' }, /unexpected field "group"/],
    [{ v: 1, id: '../../x', type: 'done', batch: 'b' }, /field "id"/],
    [{ v: 1, id: 'a', type: 'reply', batch: 'b', text: 'x'.repeat(MAX_TEXT_CHARS + 1) }, /longer than/],
    [{ v: 1, id: 'a', type: 'reply', batch: 'b', text: 42 }, /must be a string/],
    [{ v: 1, id: 'a', type: 'error', batch: 'b', message: 'x', retryable: 'yes' }, /boolean/],
    [{ v: 1, id: 'a', type: 'done' }, /field "batch"/],
  ];
  for (const [input, reason] of cases) {
    const r = parseAgentOutput(input);
    assert.equal(r.ok, false, JSON.stringify(input)?.slice(0, 80));
    if (!r.ok) assert.match(r.reason, reason);
  }
});

test('host inputs - a batch needs at least one well-formed message', () => {
  const batch = { v: 1, id: 'b1', type: 'batch', messages: [{ id: 'm1', sender: 'alice', text: 'hi', ts: '2026-01-01T00:00:00.000Z' }] };
  assert.equal(parseHostInput(batch).ok, true);
  assert.equal(parseHostInput({ v: 1, id: 'c', type: 'close' }).ok, true);
  assert.equal(parseHostInput({ ...batch, messages: [] }).ok, false);
  assert.equal(parseHostInput({ ...batch, messages: [{ id: 'm1', text: 'hi' }] }).ok, false);
  assert.equal(parseHostInput({ v: 1, id: 'c', type: 'reply' }).ok, false);
});
