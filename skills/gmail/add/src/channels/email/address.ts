// E-mail addresses as the channel compares them, and which chat a message belongs to.
// Addresses are compared lower-case (every provider hako meets treats them so), so a
// group is bound to `email:<lower-case address>`. Plus-addressing: `hako+sales@example.com`
// reaches the mailbox of `hako@example.com`; binding `email:hako+sales@example.com` to a
// group sends that mail to the group. Pure.

/** `local@domain`, lower-case, without angle brackets; undefined when it is not one. */
export function normalizeAddress(raw: string | undefined | null): string | undefined {
  if (!raw) return undefined;
  const a = raw.trim().replace(/^<(.*)>$/, '$1').trim().toLowerCase();
  // Deliberately plain: a local part and a dotted domain, no spaces, quotes or brackets.
  if (a.length > 254 || !/^[^\s@"<>()[\]\\,;:]{1,64}@[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)*$/.test(a)) return undefined;
  return a;
}

/** The address without its `+tag`, and the tag: `hako+sales@x.org` → `hako@x.org`, `sales`. */
export function splitTag(address: string): { base: string; tag: string | undefined } {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const plus = local.indexOf('+');
  if (plus <= 0) return { base: address, tag: undefined };
  return { base: local.slice(0, plus) + address.slice(at), tag: local.slice(plus + 1) || undefined };
}

/** Where a message goes: the chat address it is received under, and whether main takes it when nothing is bound. */
export interface Route {
  readonly chat: string;
  readonly mainIfUnbound: boolean;
  /** The plus-tag of the address, as the chat's title (the owner's notice suggests it as the group's name). */
  readonly title: string | undefined;
}

/**
 * Routes a message by its recipients, in the order given (Delivered-To first: the address
 * the server delivered to, which also holds a Bcc; then To, then Cc):
 * 1. the first recipient bound to a group (`groupFor('email:<address>')`);
 * 2. else the mailbox's own address, when the message names it: main;
 * 3. else a plus-address of the mailbox (`hako+new@…`) no group is bound to: for a trusted
 *    sender that chat, so the owner is told how to bind it; for anyone else main, where it
 *    is only stored (a stranger inventing addresses must not flood the owner with notices);
 * 4. else (a list, an alias, a Bcc) the mailbox's own address: main.
 */
export function routeMessage(opts: {
  recipients: readonly string[];
  own: string;
  trusted: boolean;
  groupFor: (chat: string) => string | undefined;
}): Route {
  const seen = new Set<string>();
  const recipients: string[] = [];
  for (const r of opts.recipients) {
    const n = normalizeAddress(r);
    if (n && !seen.has(n)) { seen.add(n); recipients.push(n); }
  }
  const ownRoute: Route = { chat: `email:${opts.own}`, mainIfUnbound: true, title: undefined };
  for (const r of recipients) if (opts.groupFor(`email:${r}`) !== undefined) return { chat: `email:${r}`, mainIfUnbound: false, title: splitTag(r).tag };
  if (recipients.includes(opts.own)) return ownRoute;
  const ownBase = splitTag(opts.own).base;
  const tagged = recipients.find((r) => { const s = splitTag(r); return s.tag !== undefined && s.base === ownBase; });
  if (tagged) return { chat: `email:${tagged}`, mainIfUnbound: !opts.trusted, title: splitTag(tagged).tag };
  return ownRoute;
}

/** The address a message from the mailbox to `bound` is sent from: the bound address when it is the mailbox's own or a plus-address of it. */
export function fromAddressFor(bound: string, own: string): string {
  const n = normalizeAddress(bound);
  if (n && (n === own || splitTag(n).base === splitTag(own).base)) return n;
  return own;
}
