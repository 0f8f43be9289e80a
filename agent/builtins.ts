// node:http and node:crypto for the agent, loaded with require instead of import. Importing a
// built-in as an ES module reads every one of its exports to build the namespace, and
// node:http's lazy WebSocket, CloseEvent and MessageEvent then load undici with TLS, HTTP/2
// and zlib; node:crypto's load WebCrypto. require hands over the exports untouched. On the
// bench machine the two imports cost an agent's cold start ~100 ms of CPU for nothing it uses
// (test/unit/agent-imports.test.ts keeps them out).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');
export const crypto = require('node:crypto') as typeof import('node:crypto');
