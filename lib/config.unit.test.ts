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
