import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../lib/auth/secret.js';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import type { EventLog } from '../../lib/log/port.js';
import { kafkaBrokers, requireKafka, uniqueName } from '../../test/support/services.js';
import { startRegistryService, type RunningRegistry } from './service.js';

// The registry service on a real Kafka broker, driven over HTTP by the real
// @kafkajs/confluent-schema-registry client, with its writes behind the admin token (the
// client sends it as Basic auth, as Confluent clients do).
const TOKEN = 'int-test-admin-token-0123456789';
const admin = { tokenHash: hashSecret(TOKEN) };
const auth = { username: 'switchyard', password: TOKEN };
const schemaV1 = { type: 'record', name: 'Order', namespace: 'it', fields: [{ name: 'id', type: 'string' }, { name: 'qty', type: 'int' }] };
const schemaV2 = { ...schemaV1, fields: [...schemaV1.fields, { name: 'note', type: ['null', 'string'], default: null }] };
const breaking = { ...schemaV1, fields: [...schemaV1.fields, { name: 'price', type: 'double' }] };

describe('schema registry service over real Kafka with the Confluent client', () => {
  const topic = uniqueName('_schemas');
  let log: EventLog;
  let service: RunningRegistry;

  beforeAll(async () => {
    await requireKafka();
    log = await openKafkaLog({ brokers: kafkaBrokers() });
    service = await startRegistryService({ log, topic, port: 0, admin });
  });
  afterAll(async () => {
    await service?.close();
    await log?.close();
  });

  it('registers, encodes and decodes with the real client in the Confluent wire format', async () => {
    const client = new ConfluentClient({ host: service.url, auth });
    const { id } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schemaV1) }, { subject: 'it.Order' });
    const again = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schemaV1) }, { subject: 'it.Order' });
    expect(again.id).toBe(id);
    const bytes = await client.encode(id, { id: 'o-1', qty: 3 });
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(id);
    // A fresh client knows nothing: decode fetches the writer schema by id over HTTP.
    expect(await new ConfluentClient({ host: service.url }).decode(bytes)).toEqual({ id: 'o-1', qty: 3 });
    const { id: id2 } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schemaV2) }, { subject: 'it.Order' });
    expect(id2).toBeGreaterThan(id);
    expect(await client.getLatestSchemaId('it.Order')).toBe(id2);
  });

  it('refuses registration, compatibility changes and deletes without the token (401), and keeps nothing', async () => {
    const anonymous = new ConfluentClient({ host: service.url, retry: { retries: 0 } });
    const err = await anonymous.register({ type: SchemaType.AVRO, schema: JSON.stringify({ ...schemaV1, name: 'Sneaky' }) }, { subject: 'it.Sneaky' }).then(
      () => undefined,
      (e: unknown) => e as { status?: number; message: string },
    );
    expect(err?.status).toBe(401);
    const config = await fetch(`${service.url}/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ compatibility: 'NONE' }) });
    expect(config.status).toBe(401);
    expect(((await config.json()) as { error_code: number }).error_code).toBe(40101);
    expect((await fetch(`${service.url}/subjects/it.Order`, { method: 'DELETE' })).status).toBe(401);
    expect(await (await fetch(`${service.url}/config`)).json()).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(await (await fetch(`${service.url}/subjects`)).json()).not.toContain('it.Sneaky');
  });

  it('refuses an incompatible schema with HTTP 409 and the reason', async () => {
    const client = new ConfluentClient({ host: service.url, auth });
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schemaV1) }, { subject: 'it.Breaking' });
    const err = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(breaking) }, { subject: 'it.Breaking' }).then(
      () => undefined,
      (e: unknown) => e as { status?: number; message: string },
    );
    expect(err).toBeDefined();
    expect(err!.status).toBe(409);
    expect(err!.message).toMatch(/price/);
  });

  it('keeps schemas and ids across a restart: they live in the compacted topic', async () => {
    const client = new ConfluentClient({ host: service.url, auth });
    const { id } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify({ ...schemaV1, name: 'Kept' }) }, { subject: 'it.Kept' });
    const bytes = await client.encode(id, { id: 'k', qty: 1 });
    await service.close();
    await log.close();

    log = await openKafkaLog({ brokers: kafkaBrokers() });
    service = await startRegistryService({ log, topic, port: 0, admin });
    const fresh = new ConfluentClient({ host: service.url });
    expect(await fresh.getLatestSchemaId('it.Kept')).toBe(id);
    expect(await fresh.decode(bytes)).toEqual({ id: 'k', qty: 1 });
    const res = await fetch(`${service.url}/subjects`);
    expect(await res.json()).toEqual(expect.arrayContaining(['it.Order', 'it.Breaking', 'it.Kept']));
  });
});
