// E-mail addresses and routing: which chat a message is received under (bound addresses,
// plus-addressing, the mailbox's own address = main), and which address a reply comes from.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromAddressFor, normalizeAddress, routeMessage, splitTag } from '../../src/channels/email/address.ts';

test('email address - addresses are compared lower-case, without brackets; junk is not an address', () => {
  assert.equal(normalizeAddress(' <Hako+Sales@Example.COM> '), 'hako+sales@example.com');
  for (const bad of ['', 'hako', 'hako@', '@example.com', 'a b@example.com', 'hako@exa mple.com', 'a@b@c.com', '"x"@example.com', 'hako@-example.com']) {
    assert.equal(normalizeAddress(bad), undefined, bad);
  }
});

test('email address - plus-addressing: the tag and the mailbox it reaches', () => {
  assert.deepEqual(splitTag('hako+sales@example.com'), { base: 'hako@example.com', tag: 'sales' });
  assert.deepEqual(splitTag('hako+a+b@example.com'), { base: 'hako@example.com', tag: 'a+b' });
  assert.deepEqual(splitTag('hako@example.com'), { base: 'hako@example.com', tag: undefined });
  assert.deepEqual(splitTag('+x@example.com'), { base: '+x@example.com', tag: undefined });
});

const own = 'hako@example.com';
const bindings: Record<string, string> = { 'email:hako+sales@example.com': 'sales', 'email:team@example.org': 'team' };
const groupFor = (chat: string) => bindings[chat];

test('email routing - a message to a bound plus-address goes to its group, whatever else it is addressed to', () => {
  assert.deepEqual(routeMessage({ recipients: ['Hako@example.com', 'HAKO+SALES@example.com'], own, trusted: true, groupFor }),
    { chat: 'email:hako+sales@example.com', mainIfUnbound: false, title: 'sales' });
});

test('email routing - the envelope (Delivered-To) is looked at first, so a Bcc to a bound address reaches its group', () => {
  assert.equal(routeMessage({ recipients: ['team@example.org', 'someone@else.org'], own, trusted: false, groupFor }).chat, 'email:team@example.org');
});

test('email routing - the mailbox own address with no binding goes to main', () => {
  assert.deepEqual(routeMessage({ recipients: ['friend@x.org', 'hako@example.com'], own, trusted: false, groupFor }),
    { chat: 'email:hako@example.com', mainIfUnbound: true, title: undefined });
});

test('email routing - an unbound plus-address from the owner is its own chat (the owner is told how to bind it); from a stranger it is only stored in main', () => {
  assert.deepEqual(routeMessage({ recipients: ['hako+travel@example.com'], own, trusted: true, groupFor }),
    { chat: 'email:hako+travel@example.com', mainIfUnbound: false, title: 'travel' });
  assert.deepEqual(routeMessage({ recipients: ['hako+travel@example.com'], own, trusted: false, groupFor }),
    { chat: 'email:hako+travel@example.com', mainIfUnbound: true, title: 'travel' });
});

test('email routing - mail that names no address of the mailbox (a list, an alias) goes to main', () => {
  assert.deepEqual(routeMessage({ recipients: ['list@lists.example.net'], own, trusted: false, groupFor }),
    { chat: 'email:hako@example.com', mainIfUnbound: true, title: undefined });
  assert.deepEqual(routeMessage({ recipients: [], own, trusted: false, groupFor }).chat, 'email:hako@example.com');
});

test('email address - a reply comes from the bound address when it is the mailbox or a plus-address of it, else from the mailbox', () => {
  assert.equal(fromAddressFor('hako+sales@example.com', own), 'hako+sales@example.com');
  assert.equal(fromAddressFor('HAKO@example.com', own), 'hako@example.com');
  assert.equal(fromAddressFor('team@example.org', own), own);
  assert.equal(fromAddressFor('hakox@example.com', own), own);
});
