// Fixed paths and addresses inside the agent container. The host mounts to these paths and
// the agent reads from them; neither side may choose others.

export const CONTAINER_PATHS = {
  group: '/workspace/group',
  global: '/workspace/global',
  /** Extra host folders the mount policy allows: /workspace/extra/<name>. */
  extra: '/workspace/extra',
  ipc: '/ipc',
  proxySocket: '/run/hako/proxy.sock',
} as const;

/**
 * Log levels, lowest first. The host's log and the agent's stderr lines use the same names:
 * the host relays each agent line at the level the line names (src/core/agent-lines.ts).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The in-container forwarder listens here and pipes every connection to the proxy socket. */
export const FORWARDER_PORT = 3128;

/** Model routes on the host proxy: `/<provider>/<rest>` goes to that provider's upstream. */
export const MODEL_BASE_URLS = {
  anthropic: `http://127.0.0.1:${FORWARDER_PORT}/anthropic`,
  openai: `http://127.0.0.1:${FORWARDER_PORT}/openai`,
} as const;

/** The proxy's speech-to-text route (OpenAI-compatible multipart); open only when the host has HAKO_TRANSCRIBE_URL. */
export const TRANSCRIBE_PATH = '/transcribe/audio/transcriptions';

/** What the container uses as an API key. The proxy replaces it with the real one. */
export const PLACEHOLDER_API_KEY = 'hako-placeholder-key';

/** Where the agent keeps the group's conversation, relative to the group folder. */
export const HISTORY_FILE = '.hako/history.json';
