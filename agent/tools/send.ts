// The send_message tool: hands a message to the host mid-turn through ctx.sendMessage.
// Checks here are defence in depth; the host authorizes again from the IPC path.

import { MAX_TEXT_CHARS } from '../../protocol/ipc.ts';
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
  try {
    await ctx.sendMessage(group !== undefined && group !== ctx.group ? { text, group } : { text });
  } catch (err) {
    return fail(`could not send: ${err instanceof Error ? err.message : String(err)}`);
  }
  return ok(group !== undefined && group !== ctx.group ? `sent to ${group}` : 'sent');
};
