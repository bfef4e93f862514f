// Generates src/catalog.generated.ts from the repository's event catalog (catalog/events.json),
// the one source of truth for event types: the payload interfaces, the maps of server and client
// events, and the runtime lists of types. Run by `npm run build`; the output is not committed.
//   node scripts/gen-catalog.mjs [catalog.json] [out.ts]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const catalogPath = process.argv[2] ?? path.resolve(here, '../../../catalog/events.json');
const outPath = process.argv[3] ?? path.resolve(here, '../src/catalog.generated.ts');
const catalog = JSON.parse(readFileSync(catalogPath, 'utf8'));

const quote = (s) => JSON.stringify(s);
const key = (name) => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : quote(name));

// The TypeScript type of one catalog field type, and whether it is optional.
function fieldType(spec) {
  if (typeof spec === 'string') {
    const optional = spec.endsWith('?');
    const base = optional ? spec.slice(0, -1) : spec;
    const ts = { string: 'string', number: 'number', boolean: 'boolean', date: 'string' }[base] ?? base;
    return { ts, optional };
  }
  const optional = spec.optional === true;
  if (spec.enum) return { ts: spec.enum.map(quote).join(' | '), optional };
  if (spec.array) {
    const item = fieldType(spec.array).ts;
    return { ts: /[ |]/.test(item) ? `Array<${item}>` : `${item}[]`, optional };
  }
  if (spec.object) return { ts: objectType(spec.object, '  '), optional };
  throw new Error(`unknown catalog type form: ${JSON.stringify(spec)}`);
}

function objectType(fields, indent = '') {
  const lines = Object.entries(fields).map(([name, spec]) => {
    const { ts, optional } = fieldType(spec);
    return `${indent}  ${key(name)}${optional ? '?' : ''}: ${ts}${optional ? ' | null' : ''};`;
  });
  return lines.length ? `{\n${lines.join('\n')}\n${indent}}` : 'Record<string, never>';
}

const pascal = (type) => type.split(/[.:_-]/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
const delivery = (d) => (typeof d === 'string' ? d : d?.class) ?? 'ordered';

let out = `// Generated from catalog/events.json by scripts/gen-catalog.mjs. Do not edit.\n\n`;
for (const [name, fields] of Object.entries(catalog.types ?? {})) {
  out += `export interface ${name} ${objectType(fields)}\n\n`;
}
for (const side of ['server', 'client']) {
  for (const [type, spec] of Object.entries(catalog[side] ?? {})) {
    out += `/** \`${type}\` (${side === 'server' ? 'server to client' : 'client to server'}, ${delivery(spec.delivery)}${spec.protocol ? ', protocol' : ''}). */\n`;
    out += `export type ${pascal(type)}Payload = ${objectType(spec.payload ?? {})};\n\n`;
  }
}
const entries = (side, filter = () => true) => Object.entries(catalog[side] ?? {}).filter(([, spec]) => filter(spec));
const map = (list) => list.map(([t]) => `  ${quote(t)}: ${pascal(t)}Payload;`).join('\n');
const app = (spec) => !spec.protocol;
out += `/** Every server-to-client event of the catalog, by type (the protocol's own included). */\n`;
out += `export interface ServerEvents {\n${map(entries('server'))}\n}\n\n`;
out += `/** The server events a backend may publish: all but the protocol's own. */\n`;
out += `export interface PublishableEvents {\n${map(entries('server', app))}\n}\n\n`;
out += `/** The client-to-server events an application sends (the protocol's own, like ping, are the SDK's). */\n`;
out += `export interface ClientEvents {\n${map(entries('client', app))}\n}\n\n`;
const list = (side, filter) => entries(side, filter).map(([t]) => quote(t)).join(', ');
out += `export const SERVER_EVENT_TYPES = [${list('server')}] as const;\n`;
out += `export const CLIENT_EVENT_TYPES = [${list('client', app)}] as const;\n`;
out += `/** Sent by the server itself, never published by a backend. */\n`;
out += `export const PROTOCOL_EVENT_TYPES = [${list('server', (s) => s.protocol)}] as const;\n`;
writeFileSync(outPath, out);
