// One cheap call to the model server (its list of models, a fixed MODEL_ROUTES route built
// by the proxy's own modelTarget, with the key the proxy would add): is it there, does it
// take the key, does it have the model. `hako doctor` says what it finds; the host asks at
// start, so `hako status` says "unreachable" before any turn has failed.

import { parseModel } from '../../protocol/model.ts';
import { modelProblem, type Config } from './config.ts';
import { MODEL_ROUTES, modelTarget, upstreamHeaders } from './proxy.ts';

export type ModelProbe =
  | { readonly kind: 'ok' }
  /** Not configured (no model, no key): nothing was sent. */
  | { readonly kind: 'unconfigured'; readonly problem: string }
  /** No answer, or a 5xx/429: the server is down or overloaded. */
  | { readonly kind: 'unreachable'; readonly problem: string }
  /** A 4xx: the key, the base URL or the server's API is wrong. */
  | { readonly kind: 'refused'; readonly problem: string }
  /** The server answers but does not list the model (a warning: some servers list nothing). */
  | { readonly kind: 'no-model'; readonly problem: string };

export async function probeModel(config: Config, model: string | undefined, timeoutMs = 8000): Promise<ModelProbe> {
  const problem = modelProblem(config, model);
  if (problem) return { kind: 'unconfigured', problem };
  const { provider, model: name } = (parseModel(model!) as Extract<ReturnType<typeof parseModel>, { ok: true }>).value;
  const cfg = config.providers[provider];
  const route = MODEL_ROUTES[provider].find((r) => r.startsWith('GET '))!;
  const target = modelTarget(provider, cfg.baseURL, 'GET', `/${provider}${route.slice(4)}`);
  if (!target.ok) return { kind: 'unconfigured', problem: target.reason };
  const where = `${target.url.origin}${target.url.pathname}`;
  const setting = provider === 'anthropic' ? 'ANTHROPIC_BASE_URL' : 'OPENAI_BASE_URL';
  let res: Response;
  try {
    const headers = upstreamHeaders({ 'anthropic-version': '2023-06-01' }, provider, cfg, target.url.host) as Record<string, string>;
    delete headers.host;
    res = await fetch(target.url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : cause?.code ?? cause?.message ?? (err as Error).message;
    return { kind: 'unreachable', problem: `cannot reach the model server at ${where} (${why}): is it running, and is ${setting} right?` };
  }
  const body = await res.text().catch(() => '');
  if (res.status >= 500 || res.status === 429) return { kind: 'unreachable', problem: `the model server at ${where} answered ${res.status}: it is down or overloaded; try again later` };
  if (res.status === 401 || res.status === 403) return { kind: 'refused', problem: `the model server at ${where} refused the key (${res.status}): check ${provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY'}` };
  if (res.status >= 400) return { kind: 'refused', problem: `the model server at ${where} answered ${res.status}: is ${setting} right${provider === 'openai' ? ' (for Ollama and vLLM it ends in /v1)' : ''}?` };
  let ids: string[] = [];
  try {
    ids = ((JSON.parse(body) as { data?: { id?: unknown }[] }).data ?? []).map((m) => String(m.id));
  } catch { /* a server without a proper list: its answer was a success, that is enough */ }
  if (ids.length > 0 && !ids.includes(name)) {
    return { kind: 'no-model', problem: `the model server at ${target.url.origin} does not list ${name} (it has: ${ids.slice(0, 8).join(', ')}${ids.length > 8 ? ', …' : ''})${provider === 'openai' ? `; for Ollama: ollama pull ${name}` : ''}` };
  }
  return { kind: 'ok' };
}
