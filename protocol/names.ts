// Group naming rules (names, trigger words) shared by host and agent. A name becomes a
// directory, a container label and a URL segment, so the pattern is deliberately narrow.

export const GROUP_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** A group's trigger word: one word of at most 64 characters. */
export const TRIGGER_PATTERN = /^\S{1,64}$/;

/** Returns null when `name` is a valid group name, otherwise a sentence saying why not. */
export function groupNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a group name is required';
  if (name.length > 64) return `group name "${name.slice(0, 20)}…" is longer than 64 characters`;
  if (!GROUP_NAME_PATTERN.test(name)) {
    return `group name "${name}" is invalid: use lowercase letters, digits, "-" and "_", starting with a letter or digit`;
  }
  return null;
}

/**
 * Splits a chat address `<channel>:<address>` (e.g. `telegram:-1001234567890`,
 * `email:hako+sales@example.com`); undefined when it is not one. The address has no
 * whitespace, no control or format characters (it is printed by `hako groups list`, and an
 * agent may name one through register_group) and at most 255 characters.
 */
export function parseChat(chat: unknown): { channel: string; address: string } | undefined {
  if (typeof chat !== 'string') return undefined;
  const m = /^([a-z][a-z0-9-]{0,31}):([^\s\p{Cc}\p{Cf}]{1,255})$/u.exec(chat);
  return m ? { channel: m[1]!, address: m[2]! } : undefined;
}
