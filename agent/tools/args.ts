// Validates a tool call's arguments against its JSON-schema spec from protocol/tools.ts.
// Pure; returns a sentence the model can act on, or null when the arguments are fine.

import type { ToolSpec } from '../../protocol/tools.ts';

function typeMatches(type: string, v: unknown): boolean {
  switch (type) {
    case 'string': return typeof v === 'string';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'boolean': return typeof v === 'boolean';
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    default: return true;
  }
}

export function argsProblem(spec: ToolSpec, args: unknown): string | null {
  if (typeof args === 'string') {
    return `arguments for ${spec.name} are not valid JSON (got ${JSON.stringify(args.slice(0, 200))}); send a JSON object`;
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return `arguments for ${spec.name} must be a JSON object`;
  const obj = args as Record<string, unknown>;
  const { properties, required } = spec.parameters;
  for (const name of required) {
    if (obj[name] === undefined || obj[name] === null) return `${spec.name} needs the argument "${name}"`;
  }
  for (const [name, value] of Object.entries(obj)) {
    const prop = properties[name];
    if (!prop) return `${spec.name} has no argument "${name}"; it takes ${Object.keys(properties).join(', ')}`;
    if (value !== null && !typeMatches(prop.type, value)) return `argument "${name}" of ${spec.name} must be ${/^[aeiou]/.test(prop.type) ? 'an' : 'a'} ${prop.type}`;
  }
  return null;
}
