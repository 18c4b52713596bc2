import { describe, expect, it } from 'vitest';
import { configFromEnv } from '../../config.js';
import { SwitchyardError } from '../../errors.js';
import { securityOptions } from './clients.js';
import { fromPlatformaticError } from './errors.js';

describe('SWITCHYARD_KAFKA_CLIENT', () => {
  it('is platformatic unless it says kafkajs; anything else is SY_ERR_CONFIG', () => {
    expect(configFromEnv({}).kafkaClient).toBe('platformatic');
    expect(configFromEnv({ SWITCHYARD_KAFKA_CLIENT: 'kafkajs' }).kafkaClient).toBe('kafkajs');
    expect(configFromEnv({ SWITCHYARD_KAFKA_CLIENT: 'platformatic' }).kafkaClient).toBe('platformatic');
    expect(configFromEnv({ SWITCHYARD_KAFKA_CLIENT: ' Platformatic ' }).kafkaClient).toBe('platformatic');
    expect(configFromEnv({ SWITCHYARD_KAFKA_CLIENT: 'platformatic' }, { kafkaClient: 'kafkajs' }).kafkaClient).toBe('kafkajs');
    expect(() => configFromEnv({ SWITCHYARD_KAFKA_CLIENT: 'rdkafka' })).toThrow(/SWITCHYARD_KAFKA_CLIENT must be one of kafkajs, platformatic/);
  });
});

describe('platformatic adapter: TLS and SASL options', () => {
  it('maps the deployment settings as the kafkajs adapter does', () => {
    expect(securityOptions(undefined, undefined)).toEqual({});
    expect(securityOptions({ rejectUnauthorized: true }, undefined)).toEqual({ tls: { rejectUnauthorized: true } });
    expect(securityOptions({ ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: false }, { mechanism: 'scram-sha-512', username: 'u', password: 'p' })).toEqual({
      tls: { rejectUnauthorized: false, ca: ['CA'], cert: 'CERT', key: 'KEY' },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' },
    });
    expect(securityOptions(undefined, { mechanism: 'plain', username: 'u', password: 'p' }).sasl?.mechanism).toBe('PLAIN');
    expect(securityOptions(undefined, { mechanism: 'scram-sha-256', username: 'u', password: 'p' }).sasl?.mechanism).toBe('SCRAM-SHA-256');
  });

  it('refuses half a client certificate and SASL without credentials', () => {
    expect(() => securityOptions({ cert: 'CERT', rejectUnauthorized: true }, undefined)).toThrow(SwitchyardError);
    expect(() => securityOptions(undefined, { mechanism: 'plain', username: '', password: 'p' })).toThrow(/needs a username and a password/);
  });
});

describe('platformatic adapter: errors', () => {
  it('gives the library errors stable codes', () => {
    const unknownTopic = Object.assign(new Error('Unknown topic t.'), { code: 'PLT_KFK_USER', canRetry: false });
    expect(fromPlatformaticError(unknownTopic, 'x').code).toBe('SY_ERR_LOG_UNKNOWN_TOPIC');
    const auth = Object.assign(new Error('failed 1 times'), { code: 'PLT_KFK_MULTIPLE', errors: [Object.assign(new Error('SASL'), { code: 'PLT_KFK_RESPONSE', errors: [{ apiId: 'SASL_AUTHENTICATION_FAILED', canRetry: false, message: 'bad' }] })] });
    const e = fromPlatformaticError(auth, 'connecting');
    expect(e.code).toBe('SY_ERR_LOG_AUTH');
    expect(e.retriable).toBe(false);
    const network = Object.assign(new Error('Connection closed'), { code: 'PLT_KFK_NETWORK', canRetry: true });
    expect(fromPlatformaticError(network, 'x')).toMatchObject({ code: 'SY_ERR_LOG_BROKER', retriable: true });
  });
});
