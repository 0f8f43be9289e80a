import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rebase } from '../../src/cli/web.ts';

test('hako web --base - the link keeps its path and one-time code and takes the phone\'s address', () => {
  assert.equal(rebase('http://127.0.0.1:7878/#code=abc_DEF-1', 'https://hako.example.com'), 'https://hako.example.com/#code=abc_DEF-1');
  assert.equal(rebase('http://127.0.0.1:7878/#code=x', 'https://machine.tailnet.ts.net:8443/'), 'https://machine.tailnet.ts.net:8443/#code=x');
});

test('hako web --base - anything but a bare http(s) origin is refused with an example', () => {
  assert.throws(() => rebase('http://127.0.0.1:7878/#code=x', 'hako.example.com'), /is not a URL: .*https:\/\/hako\.example\.com/);
  assert.throws(() => rebase('http://127.0.0.1:7878/#code=x', 'javascript:alert(1)'), /must be an https:\/\/ address/);
  assert.throws(() => rebase('http://127.0.0.1:7878/#code=x', 'https://hako.example.com/chat?x=1'), /only scheme, host and port/);
  assert.throws(() => rebase('http://127.0.0.1:7878/#code=x', 'https://user:pw@hako.example.com'), /only scheme, host and port/);
});
