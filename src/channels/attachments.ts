// Saves a file that arrived with a chat message into the group's workspace, under
// attachments/, and says where the agent sees it. The group folder is agent-writable, so
// no link is ever followed (core/beneath.ts): an agent that swaps attachments/ for a link
// to elsewhere cannot make the host write there.

import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import { writeNewBeneath } from '../core/beneath.ts';
import { groupPaths } from '../core/paths.ts';

const DIR = 'attachments';

/** A file name that is safe on every file system and says what it was: `2026-11-30-ab12cd-report.pdf`. */
export function attachmentName(original: string, now = new Date()): string {
  const base = path.basename(original.replace(/\\/g, '/')).normalize('NFC')
    .replace(/[^\p{L}\p{N}._-]+/gu, '_').replace(/^[._]+/, '').slice(-80) || 'file';
  return `${now.toISOString().slice(0, 10)}-${randomBytes(3).toString('hex')}-${base}`;
}

export interface SavedAttachment {
  /** Where the file is on the host. */
  readonly hostPath: string;
  /** Where the agent sees it, e.g. /workspace/group/attachments/2026-11-30-ab12cd-photo.jpg. */
  readonly agentPath: string;
  readonly bytes: number;
}

/**
 * Writes `data` as a new file in the group's attachments/ folder. Throws when the data is
 * over `maxBytes`, or when attachments/ is not a plain folder (a link is refused, never followed).
 */
export function saveAttachment(home: string, group: string, original: string, data: Uint8Array, maxBytes: number): SavedAttachment {
  if (data.length > maxBytes) throw new Error(`attachment "${original}" is ${data.length} bytes; the limit is ${maxBytes} (HAKO_ATTACHMENT_MAX_BYTES)`);
  const folder = groupPaths(home, group).folder;
  const name = attachmentName(original);
  try {
    writeNewBeneath(folder, [DIR], name, data);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw new Error(`group "${group}": ${DIR}/ in its folder is not a plain folder (${code}); the attachment was not saved`, { cause: err });
    throw err;
  }
  return { hostPath: path.join(folder, DIR, name), agentPath: `${CONTAINER_PATHS.group}/${DIR}/${name}`, bytes: data.length };
}
