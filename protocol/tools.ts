// The agent's tools: names, descriptions and JSON-schema arguments. These are a public
// contract (DESIGN.md "The agent's tools"): prompts, tests and both providers rely on them.

export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments object. */
  readonly parameters: {
    readonly type: 'object';
    /** `items` describes an array's elements (spawn_agents' lists). */
    readonly properties: Record<string, { readonly type: string; readonly description: string; readonly items?: Readonly<Record<string, unknown>> }>;
    readonly required: readonly string[];
  };
}

function tool(name: string, description: string, props: Record<string, [type: string, description: string]>, required: string[]): ToolSpec {
  const properties: Record<string, { type: string; description: string }> = {};
  for (const [k, [type, d]] of Object.entries(props)) properties[k] = { type, description: d };
  return { name, description, parameters: { type: 'object', properties, required } };
}

/** The most a MEMORY.md may hold through the remember tool; the system prompt and `hako memory` say so too. */
export const MEMORY_MAX_BYTES = 16 * 1024;

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
  tool('remember', `Keep a note in MEMORY.md, which you read at the start of every turn: adds to (or rewrites) one "## section". The file holds at most ${MEMORY_MAX_BYTES} bytes; when it is full, summarise sections with mode "replace" first.`, {
    section: ['string', 'The section title, e.g. "Clients" (created when missing)'],
    text: ['string', 'What to add; with mode "replace", the whole new text of the section (empty removes it)'],
    mode: ['string', 'Optional: "append" (the default) or "replace"'],
    scope: ['string', 'Optional: "group" (the default: this group\'s MEMORY.md) or "global" (the memory every group reads; main group only)'],
  }, ['section', 'text']),
  tool('glob', 'List files matching a glob pattern (e.g. "notes/**/*.md"), relative to /workspace/group.', {
    pattern: ['string', 'Glob pattern'],
  }, ['pattern']),
  tool('grep', 'Search file contents with a regular expression (ripgrep).', {
    pattern: ['string', 'Regular expression'],
    path: ['string', 'Optional file or folder to search (default /workspace/group)'],
  }, ['pattern']),
  tool('web_fetch', 'Fetch a web page or call a web API through hako\'s proxy (only the domains the owner allowed for this group). HTML comes back as text. To use a credential listed in HAKO_SECRETS, put its placeholder (the value of that environment variable) in a header and use an https:// URL: the proxy fills in the real value.', {
    url: ['string', 'Full http:// or https:// URL'],
    method: ['string', 'Optional: GET (default), HEAD, POST, PUT, PATCH or DELETE'],
    headers: ['object', 'Optional request headers, e.g. {"authorization": "Bearer hako-secret:GITHUB_TOKEN"}'],
    body: ['string', 'Optional request body'],
  }, ['url']),
  tool('send_message', 'Send a message to the chat right away, before the turn ends (e.g. progress on long work), optionally with a file of your workspace (a report, a spreadsheet, an image).', {
    text: ['string', 'The message'],
    group: ['string', 'Optional other group to message (main group only)'],
    file: ['string', 'Optional file to send with it: a path in your workspace (/workspace/group/…, or relative to it)'],
  }, ['text']),
  tool('schedule_task', 'Schedule a prompt to run later: give exactly one of cron (5 fields, or 6 with seconds first, in the owner\'s time zone), every_seconds (at least 10) or at (an ISO-8601 time in the future). The task\'s answer is posted to the chat.', {
    prompt: ['string', 'What to do when the task runs, written as an instruction to yourself'],
    cron: ['string', 'Cron expression, e.g. "0 9 * * 1-5" for weekdays at 9:00'],
    every_seconds: ['integer', 'Run every N seconds (N >= 10)'],
    at: ['string', 'Run once at this ISO-8601 time, e.g. "2026-12-01T09:00:00+01:00"'],
    context: ['string', '"group" (default) continues this chat\'s conversation; "isolated" starts fresh each run'],
    group: ['string', 'Optional other group to schedule for (main group only)'],
  }, ['prompt']),
  tool('register_group', 'Register a new group (a chat) with its own folder and container, or bind another chat to an existing group. Main group only.', {
    name: ['string', 'Group name: lowercase letters, digits, "-" and "_"'],
    trigger: ['string', 'Optional word that calls you in that group (default "@" + your name)'],
    chat: ['string', 'Optional chat address to bind, as the notice about an unknown chat names it, e.g. telegram:-1001234567890'],
  }, ['name']),
  tool('list_tasks', 'List the scheduled tasks you can see (this group\'s; all groups\' from the main group), with their ids, schedules, states and next runs.', {}, []),
  tool('pause_task', 'Pause a scheduled task until it is resumed.', { id: ['string', 'Task id from list_tasks'] }, ['id']),
  tool('resume_task', 'Resume a paused task; its next run is computed from now.', { id: ['string', 'Task id from list_tasks'] }, ['id']),
  tool('cancel_task', 'Cancel a scheduled task for good.', { id: ['string', 'Task id from list_tasks'] }, ['id']),
  {
    name: 'spawn_agents',
    description: 'Run sub-agents at the same time, one per task, and get their final answers back as one result (a section per task with its status: ok, cut off after N steps, or failed and why). A sub-agent starts fresh: it sees only its own prompt and this group\'s memory, not this conversation or the other tasks. It works in this group\'s folder with bash, the file and search tools and web_fetch; it cannot message anyone, schedule tasks or start sub-agents.',
    parameters: {
      type: 'object',
      properties: {
        tasks: {
          type: 'array',
          description: 'One entry per sub-agent, e.g. [{"prompt": "Summarise notes/q3.md in five bullets"}]; write each prompt as a complete instruction',
          items: { type: 'object', properties: { prompt: { type: 'string', description: 'The sub-agent\'s whole task' } }, required: ['prompt'] },
        },
        tools: { type: 'array', description: 'Optional: only these tools for the sub-agents (default: bash, read_file, write_file, edit_file, glob, grep, web_fetch)', items: { type: 'string' } },
      },
      required: ['tasks'],
    },
  },
];

export const TOOL_NAMES = TOOL_SPECS.map((t) => t.name);
