// Keeps docs/API.md true to the router: every route in HttpChannel.routes has a heading
// "### METHOD /path" that states its auth, every such heading is a route, and every
// Server-Sent Events type the channel writes has an "#### event: NAME" section.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { HttpChannel } from '../../src/channels/http.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'API.md'), 'utf8');
const AUTH_WORDS = { none: 'none', session: 'session', token: 'token' } as const;

/** Each "### METHOD /path" heading with the text of its section up to the next heading. */
function documented(): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = DOC.split(/^(?=#{2,4} )/m);
  for (const part of parts) {
    const heading = /^### (\S+ \/\S*)\s*$/m.exec(part.split('\n')[0]!);
    if (!heading) continue;
    assert.ok(!sections.has(heading[1]!), `docs/API.md documents ${heading[1]} twice`);
    sections.set(heading[1]!, part);
  }
  return sections;
}

const key = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

test('api doc - every route of the HTTP channel has a section in docs/API.md', () => {
  const doc = documented();
  const missing = HttpChannel.routes.map(key).filter((k) => !doc.has(k));
  assert.deepEqual(missing, [], 'add a "### METHOD /path" section to docs/API.md for each');
});

test('api doc - every endpoint docs/API.md documents exists in the router', () => {
  const routes = new Set(HttpChannel.routes.map(key));
  const doc = [...documented().keys()];
  assert.ok(doc.length >= 10, `docs/API.md has its endpoint headings (found ${doc.length})`);
  assert.deepEqual(doc.filter((k) => !routes.has(k)), [], 'docs/API.md names endpoints the router does not have');
});

test('api doc - each endpoint\'s section states the auth the router enforces', () => {
  const doc = documented();
  for (const r of HttpChannel.routes) {
    const auth = /^Auth: (\w+)/m.exec(doc.get(key(r)) ?? '')?.[1];
    assert.equal(auth, AUTH_WORDS[r.auth], `${key(r)}: the doc says "Auth: ${auth}", the router enforces ${r.auth}`);
  }
});

test('api doc - every Server-Sent Events type the channel writes is documented, and no other', () => {
  const source = fs.readFileSync(path.join(ROOT, 'src', 'channels', 'http.ts'), 'utf8');
  const written = new Set([...source.matchAll(/event: ([a-z_-]+)\\n/g)].map((m) => m[1]!));
  const doc = new Set([...DOC.matchAll(/^#### event: ([a-z_-]+)\s*$/gm)].map((m) => m[1]!));
  assert.ok(written.has('message'), 'the channel writes message events');
  assert.deepEqual([...doc].sort(), [...written].sort());
});
