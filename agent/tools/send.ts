// The send_message tool: hands a message to the host mid-turn through ctx.sendMessage.
// Checks here are defence in depth; the host authorizes again from the IPC path.

import { lstat } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import { MAX_TEXT_CHARS, workspaceFileProblem } from '../../protocol/ipc.ts';
import { groupNameProblem } from '../../protocol/names.ts';
import { fail, ok, type ToolHandler } from './types.ts';

export const sendMessageTool: ToolHandler = async (args, ctx) => {
  const text = args.text as string;
  const group = args.group as string | undefined;
  if (text.trim() === '') return fail('text is empty');
  if (text.length > MAX_TEXT_CHARS) return fail(`text is ${text.length} characters; the limit is ${MAX_TEXT_CHARS} — split it`);
  if (group !== undefined && group !== ctx.group) {
    const problem = groupNameProblem(group);
    if (problem) return fail(problem);
    if (!ctx.isMain) return fail('only the main group may message other groups');
  }
  let file: string | undefined;
  if (args.file !== undefined && args.file !== null && args.file !== '') {
    // The model knows the workspace as /workspace/group whatever folder it is mounted from.
    const given = String(args.file);
    const abs = resolve(ctx.workspace, given.startsWith(`${CONTAINER_PATHS.group}/`) ? given.slice(CONTAINER_PATHS.group.length + 1) : given);
    file = relative(ctx.workspace, abs);
    const problem = workspaceFileProblem(file);
    if (problem) return fail(`file ${String(args.file)}: ${problem}`);
    const st = await lstat(abs).catch(() => undefined);
    if (!st?.isFile()) return fail(`file ${String(args.file)}: no such regular file in your workspace`);
  }
  try {
    await ctx.sendMessage({ text, ...(group !== undefined && group !== ctx.group ? { group } : {}), ...(file ? { file } : {}) });
  } catch (err) {
    return fail(`could not send: ${err instanceof Error ? err.message : String(err)}`);
  }
  return ok(`${group !== undefined && group !== ctx.group ? `sent to ${group}` : 'sent'}${file ? ` with ${file}` : ''}`);
};
