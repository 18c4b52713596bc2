import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame } from '../../schemas/wire.js';
import { buildRegistryApp } from '../../services/registry/app.js';
import { testSchemaRegistry } from '../../test/contract/registry.contract.js';
import { SwitchyardError } from '../errors.js';
import { ConfluentRegistryClient } from './confluent-client.js';
import { InMemoryRegistry } from './core.js';

// The HTTP adapter against our own REST service (in-process, on a free port), so the client
// and the service are held to the same contract as the in-process registries. The
// integration tier runs the service on a real broker.
let app: FastifyInstance;
let url = '';

beforeAll(async () => {
  app = buildRegistryApp({ registry: new InMemoryRegistry() });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app.close();
});

testSchemaRegistry('HTTP client on services/registry', () => new ConfluentRegistryClient({ host: url }));

describe('ConfluentRegistryClient', () => {
  it('registers through the library without touching subject config', async () => {
    const client = new ConfluentRegistryClient({ host: url });
    const subject = `client.config.${Date.now()}`;
    const id = await client.register(subject, { type: 'record', name: 'C', namespace: 'client', fields: [{ name: 'a', type: 'int' }] });
    expect(await client.getCompatibility(subject, { overrideOnly: true })).toBeUndefined();
    // The library cached the schema under its id for its own encode/decode.
    expect(await client.library.encode(id, { a: 5 })).toEqual(frame(id, Buffer.from([10])));
  });

  it('registers unnamed schemas over plain HTTP', async () => {
    const client = new ConfluentRegistryClient({ host: url });
    const subject = `client.primitive.${Date.now()}`;
    const id = await client.register(subject, '"string"');
    expect(await client.getById(id)).toBe('"string"');
  });

  it('reports an unreachable registry as retriable', async () => {
    const client = new ConfluentRegistryClient({ host: 'http://127.0.0.1:9', timeoutMs: 2_000 });
    for (const call of [() => client.getById(1), () => client.listSubjects()]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwitchyardError);
      expect([(err as SwitchyardError).code, (err as SwitchyardError).retriable]).toEqual(['SY_ERR_REGISTRY_UNAVAILABLE', true]);
    }
  });

  it('refuses a host that is not an http URL', () => {
    expect(() => new ConfluentRegistryClient({ host: 'localhost:8081' })).toThrowError(expect.objectContaining({ code: 'SY_ERR_CONFIG' }));
  });
});
