import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFrom } from '../cli/flags.js';
import { configFromEnv, parseBytes, parseDurationMs } from './config.js';
import { SwitchyardError } from './errors.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof SwitchyardError ? err.code : 'not a SwitchyardError';
  }
  return undefined;
};

describe('retention budget configuration', () => {
  it('defaults to no budget (-1): each topic keeps its own retention and no size limit', () => {
    const c = configFromEnv({});
    expect(c.retentionBytes).toBe(-1);
    expect(c.retentionMs).toBe(-1);
  });

  it('reads SWITCHYARD_RETENTION_BYTES and SWITCHYARD_RETENTION_MS, with or without units', () => {
    expect(configFromEnv({ SWITCHYARD_RETENTION_BYTES: '1073741824', SWITCHYARD_RETENTION_MS: '3600000' })).toMatchObject({ retentionBytes: 2 ** 30, retentionMs: 3_600_000 });
    expect(configFromEnv({ SWITCHYARD_RETENTION_BYTES: '10GiB', SWITCHYARD_RETENTION_MS: '2d' })).toMatchObject({ retentionBytes: 10 * 2 ** 30, retentionMs: 2 * 86_400_000 });
    expect(configFromEnv({ SWITCHYARD_RETENTION_BYTES: '-1', SWITCHYARD_RETENTION_MS: '-1' })).toMatchObject({ retentionBytes: -1, retentionMs: -1 });
  });

  it.each([
    ['500MiB', 500 * 2 ** 20],
    ['500 mib', 500 * 2 ** 20],
    ['2GB', 2e9],
    ['1.5KiB', 1536],
    ['0', 0],
  ])('parses the size %s', (text, bytes) => expect(parseBytes(text, 'x')).toBe(bytes));

  it.each([
    ['36h', 36 * 3_600_000],
    ['90m', 5_400_000],
    ['30s', 30_000],
    ['250ms', 250],
    ['7d', 7 * 86_400_000],
  ])('parses the duration %s', (text, ms) => expect(parseDurationMs(text, 'x')).toBe(ms));

  it.each(['ten', '10 parsecs', '-5', '1e3', '-2', '1.5.5'])('refuses %j with SY_ERR_CONFIG naming the variable', (text) => {
    expect(codeOf(() => configFromEnv({ SWITCHYARD_RETENTION_BYTES: text }))).toBe('SY_ERR_CONFIG');
    expect(codeOf(() => configFromEnv({ SWITCHYARD_RETENTION_MS: text }))).toBe('SY_ERR_CONFIG');
    expect(() => configFromEnv({ SWITCHYARD_RETENTION_MS: text })).toThrow(/SWITCHYARD_RETENTION_MS/);
  });

  it('CLI flags win over the environment', () => {
    const saved = { ...process.env };
    try {
      process.env.SWITCHYARD_RETENTION_BYTES = '1GiB';
      process.env.SWITCHYARD_RETENTION_MS = '1d';
      expect(configFrom({})).toMatchObject({ retentionBytes: 2 ** 30, retentionMs: 86_400_000 });
      expect(configFrom({ retentionBytes: '2GiB', retentionMs: '12h' })).toMatchObject({ retentionBytes: 2 * 2 ** 30, retentionMs: 12 * 3_600_000 });
      expect(() => configFrom({ retentionBytes: 'lots' })).toThrow(/--retention-bytes/);
    } finally {
      process.env = saved;
    }
  });
});

describe('Kafka TLS/SASL and ClickHouse credentials configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('defaults to plaintext, no SASL, and the ClickHouse default user', () => {
    expect(configFromEnv({})).toMatchObject({ kafkaTls: undefined, kafkaSasl: undefined, clickhouseUser: undefined, clickhousePassword: undefined });
  });

  it('reads TLS (CA, client cert and key, rejectUnauthorized) and SASL with the password from a file', () => {
    const c = configFromEnv({
      SWITCHYARD_KAFKA_SSL: 'true',
      SWITCHYARD_KAFKA_SSL_CA_FILE: file('ca.pem', PEM),
      SWITCHYARD_KAFKA_SSL_CERT_FILE: file('client.pem', 'CERT'),
      SWITCHYARD_KAFKA_SSL_KEY_FILE: file('client.key', 'KEY'),
      SWITCHYARD_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      SWITCHYARD_KAFKA_SASL_USERNAME: 'svc',
      SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: file('password', 's3cret\nignored second line\n'),
    });
    expect(c.kafkaTls).toEqual({ ca: PEM, cert: 'CERT', key: 'KEY', rejectUnauthorized: true });
    expect(c.kafkaSasl).toEqual({ mechanism: 'scram-sha-512', username: 'svc', password: 's3cret' });
    expect(configFromEnv({ SWITCHYARD_KAFKA_SSL: 'true', SWITCHYARD_KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' }).kafkaTls).toEqual({ ca: undefined, cert: undefined, key: undefined, rejectUnauthorized: false });
    expect(configFromEnv({ SWITCHYARD_KAFKA_SASL_MECHANISM: 'plain', SWITCHYARD_KAFKA_SASL_USERNAME: 'u', SWITCHYARD_KAFKA_SASL_PASSWORD: 'p' }).kafkaSasl).toEqual({ mechanism: 'plain', username: 'u', password: 'p' });
  });

  it.each([
    ['a mechanism without username/password', { SWITCHYARD_KAFKA_SASL_MECHANISM: 'plain' }],
    ['a mechanism without password', { SWITCHYARD_KAFKA_SASL_MECHANISM: 'scram-sha-256', SWITCHYARD_KAFKA_SASL_USERNAME: 'u' }],
    ['an unknown mechanism', { SWITCHYARD_KAFKA_SASL_MECHANISM: 'gssapi', SWITCHYARD_KAFKA_SASL_USERNAME: 'u', SWITCHYARD_KAFKA_SASL_PASSWORD: 'p' }],
    ['credentials without a mechanism', { SWITCHYARD_KAFKA_SASL_USERNAME: 'u', SWITCHYARD_KAFKA_SASL_PASSWORD: 'p' }],
    ['both a password and a password file', { SWITCHYARD_KAFKA_SASL_MECHANISM: 'plain', SWITCHYARD_KAFKA_SASL_USERNAME: 'u', SWITCHYARD_KAFKA_SASL_PASSWORD: 'p', SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: '/x' }],
    ['a missing password file', { SWITCHYARD_KAFKA_SASL_MECHANISM: 'plain', SWITCHYARD_KAFKA_SASL_USERNAME: 'u', SWITCHYARD_KAFKA_SASL_PASSWORD_FILE: '/nonexistent/password' }],
    ['SWITCHYARD_KAFKA_SSL not a boolean', { SWITCHYARD_KAFKA_SSL: 'yes please' }],
    ['a CA file without SWITCHYARD_KAFKA_SSL', { SWITCHYARD_KAFKA_SSL_CA_FILE: '/x' }],
    ['a missing CA file', { SWITCHYARD_KAFKA_SSL: 'true', SWITCHYARD_KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' }],
    ['a cert without its key', { SWITCHYARD_KAFKA_SSL: 'true', SWITCHYARD_KAFKA_SSL_CERT_FILE: '/etc/hostname' }],
    ['both a ClickHouse password and its file', { SWITCHYARD_CLICKHOUSE_USER: 'u', SWITCHYARD_CLICKHOUSE_PASSWORD: 'p', SWITCHYARD_CLICKHOUSE_PASSWORD_FILE: '/x' }],
  ])('refuses %s (SY_ERR_CONFIG)', (_, env) => {
    expect(codeOf(() => configFromEnv(env))).toBe('SY_ERR_CONFIG');
  });

  it('refuses a CA file that holds no PEM certificate, and never puts a password in an error', () => {
    expect(codeOf(() => configFromEnv({ SWITCHYARD_KAFKA_SSL: 'true', SWITCHYARD_KAFKA_SSL_CA_FILE: file('not-a-ca', 'hello') }))).toBe('SY_ERR_CONFIG');
    let message = '';
    try {
      configFromEnv({ SWITCHYARD_KAFKA_SASL_USERNAME: 'u', SWITCHYARD_KAFKA_SASL_PASSWORD: 'hunter2' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/SWITCHYARD_KAFKA_SASL_MECHANISM/);
    expect(message).not.toContain('hunter2');
  });

  it('reads the ClickHouse user and password (or its file)', () => {
    expect(configFromEnv({ SWITCHYARD_CLICKHOUSE_USER: 'switchyard', SWITCHYARD_CLICKHOUSE_PASSWORD: 'pw' })).toMatchObject({ clickhouseUser: 'switchyard', clickhousePassword: 'pw' });
    expect(configFromEnv({ SWITCHYARD_CLICKHOUSE_USER: 'switchyard', SWITCHYARD_CLICKHOUSE_PASSWORD_FILE: file('ch', 'pw2\n') })).toMatchObject({ clickhouseUser: 'switchyard', clickhousePassword: 'pw2' });
  });
});
