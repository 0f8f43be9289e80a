import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupNameProblem } from '../../protocol/names.ts';
import { childPath, groupPaths, PathError } from '../../src/core/paths.ts';

test('group names - lowercase letters, digits, "-" and "_" are accepted', () => {
  for (const name of ['main', 'sales-team', 'a', '0day', 'x_y', 'a'.repeat(64)]) assert.equal(groupNameProblem(name), null, name);
});

test('group names - traversal, separators, upper case, empty and over-long names are refused', () => {
  for (const name of ['', '..', '../etc', 'a/b', 'Sales', '-lead', '_x', 'a b', 'a\0b', 'a'.repeat(65), '.hidden', 'ü']) {
    assert.ok(groupNameProblem(name), `expected a problem for ${JSON.stringify(name)}`);
  }
  assert.ok(groupNameProblem(undefined));
  assert.ok(groupNameProblem(42));
});

test('childPath - stays inside its parent', () => {
  assert.equal(childPath('/srv/hako/groups', 'sales'), '/srv/hako/groups/sales');
  for (const bad of ['..', '../x', '/etc', 'a/../../b', '', 'x\0y']) assert.throws(() => childPath('/srv/hako/groups', bad), PathError, bad);
});

test('groupPaths - every path of a group lies under HAKO_HOME and names the group', () => {
  const p = groupPaths('/h', 'sales');
  for (const v of Object.values(p)) assert.ok(v.startsWith('/h/') && v.includes('/sales'), v);
  assert.equal(p.proxySocket, '/h/run/sales/proxy.sock');
  assert.throws(() => groupPaths('/h', '../main'), PathError);
});
