// The agent's tools: names, descriptions and JSON-schema arguments. These are a public
// contract (DESIGN.md "The agent's tools"): prompts, tests and both providers rely on them.

export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments object. */
  readonly parameters: {
    readonly type: 'object';
    readonly properties: Record<string, { readonly type: string; readonly description: string }>;
    readonly required: readonly string[];
  };
}

function tool(name: string, description: string, props: Record<string, [type: string, description: string]>, required: string[]): ToolSpec {
  const properties: Record<string, { type: string; description: string }> = {};
  for (const [k, [type, d]] of Object.entries(props)) properties[k] = { type, description: d };
  return { name, description, parameters: { type: 'object', properties, required } };
}

export const TOOL_SPECS: readonly ToolSpec[] = [
  tool('bash', 'Run a bash command in the workspace (/workspace/group). Output is truncated when long.', {
    command: ['string', 'The command line to run'],
    timeout_ms: ['integer', 'Optional time limit in milliseconds (default 120000)'],
  }, ['command']),
  tool('read_file', 'Read a text file. Relative paths are relative to /workspace/group.', {
    path: ['string', 'File path'],
  }, ['path']),
  tool('write_file', 'Create or overwrite a text file, creating parent folders as needed.', {
    path: ['string', 'File path'],
    content: ['string', 'The full new content'],
  }, ['path', 'content']),
  tool('edit_file', 'Replace exactly one occurrence of old_text with new_text in a file.', {
    path: ['string', 'File path'],
    old_text: ['string', 'Text to find; must occur exactly once'],
    new_text: ['string', 'Replacement text'],
  }, ['path', 'old_text', 'new_text']),
  tool('glob', 'List files matching a glob pattern (e.g. "notes/**/*.md"), relative to /workspace/group.', {
    pattern: ['string', 'Glob pattern'],
  }, ['pattern']),
  tool('grep', 'Search file contents with a regular expression (ripgrep).', {
    pattern: ['string', 'Regular expression'],
    path: ['string', 'Optional file or folder to search (default /workspace/group)'],
  }, ['pattern']),
  tool('send_message', 'Send a message to the chat right away, before the turn ends (e.g. progress on long work).', {
    text: ['string', 'The message'],
    group: ['string', 'Optional other group to message (main group only)'],
  }, ['text']),
];

export const TOOL_NAMES = TOOL_SPECS.map((t) => t.name);
