// How a reply keeps its thread: the ref the core keeps with a message (at most 4 KB), the
// Re: subject once, In-Reply-To and References, and Message-IDs that stay the same when a
// message is sent again after a crash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRef, encodeRef, isOwnMessageId, MAX_REF_CHARS, outgoingMessageId, parseReferences, replyHeaders, replySubject } from '../../src/channels/email/reply.ts';

test('email reply - Re: is added once: never to a subject that already has one', () => {
  assert.equal(replySubject('Q3 pipeline'), 'Re: Q3 pipeline');
  assert.equal(replySubject('Re: Q3 pipeline'), 'Re: Q3 pipeline');
  assert.equal(replySubject('RE: Q3'), 'RE: Q3');
  assert.equal(replySubject('Re[2]: Q3'), 'Re[2]: Q3');
  assert.equal(replySubject('Fwd: invoice'), 'Re: Fwd: invoice');
  assert.equal(replySubject(''), 'Re: (no subject)');
  assert.equal(replySubject('a\r\nBcc: evil@example.com'), 'Re: a Bcc: evil@example.com', 'no header can be smuggled through the subject');
});

test('email reply - the reply goes to the sender, In-Reply-To the message, References the thread plus the message', () => {
  const h = replyHeaders({ messageId: '<m3@x>', references: ['<m1@x>', '<m2@x>'], subject: 'Plan', from: 'alice@example.com', engaged: true });
  assert.deepEqual(h, { to: 'alice@example.com', subject: 'Re: Plan', inReplyTo: '<m3@x>', references: ['<m1@x>', '<m2@x>', '<m3@x>'] });
});

test('email reply - the ref round-trips, and stays within 4 KB however long the thread', () => {
  const ref = { messageId: '<m@x>', references: ['<a@x>'], subject: 'Plan', from: 'alice@example.com', engaged: true };
  assert.deepEqual(decodeRef(encodeRef(ref)), ref);
  assert.equal(decodeRef(encodeRef({ ...ref, engaged: false }))!.engaged, false);
  const huge = { messageId: '<m@x>', references: Array.from({ length: 500 }, (_, i) => `<${'r'.repeat(200)}${i}@example.com>`), subject: 'S'.repeat(10_000), from: 'alice@example.com', engaged: true };
  const json = encodeRef(huge);
  assert.ok(json.length <= MAX_REF_CHARS, `${json.length} characters`);
  const back = decodeRef(json)!;
  assert.equal(back.messageId, '<m@x>');
  assert.ok(back.references.length > 0 && back.references.at(-1) === huge.references.at(-1), 'the newest references are kept');
});

test('email reply - a ref that does not say its sender could engage the agent counts as one that could not (fail closed)', () => {
  assert.equal(decodeRef(JSON.stringify({ messageId: '<m@x>', subject: 's', from: 'a@b.example' }))!.engaged, false);
  assert.equal(decodeRef(JSON.stringify({ messageId: '<m@x>', subject: 's', from: 'a@b.example', engaged: 'yes' }))!.engaged, false);
});

test('email reply - a ref that is not one of ours (no valid sender) is refused', () => {
  assert.equal(decodeRef('not json'), undefined);
  assert.equal(decodeRef(JSON.stringify({ messageId: '<m@x>', subject: 's', from: 'not an address' })), undefined);
  assert.equal(decodeRef(JSON.stringify({ messageId: '<m@x>', subject: 's', from: 'a@b.example, c@d.example' })), undefined);
});

test('email reply - References are read from a header in any folding', () => {
  assert.deepEqual(parseReferences('<a@x>\r\n <b@x> <c@x>'), ['<a@x>', '<b@x>', '<c@x>']);
  assert.deepEqual(parseReferences(['<a@x>', '<b@x>']), ['<a@x>', '<b@x>']);
  assert.deepEqual(parseReferences(undefined), []);
});

test('email reply - an outgoing Message-ID is the same for every attempt of a message piece, and recognisable as hako own', () => {
  const a = outgoingMessageId('01J0ABC', 0, 'hako+sales@example.com');
  assert.equal(a, outgoingMessageId('01J0ABC', 0, 'hako+sales@example.com'));
  assert.notEqual(a, outgoingMessageId('01J0ABC', 1, 'hako+sales@example.com'));
  assert.equal(a, '<hako.01J0ABC.0@example.com>');
  assert.ok(isOwnMessageId(a));
  assert.ok(isOwnMessageId(outgoingMessageId('id with spaces/and<brackets>', 2, 'hako@example.com')));
  assert.equal(isOwnMessageId('<CAF=abc@mail.gmail.com>'), false);
});
