import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseTime } from './time.js';

describe('replay times', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);

  it('parses ms, ISO 8601, now and relative times', () => {
    expect(parseTime('1735689600000', now)).toBe(1_735_689_600_000);
    expect(parseTime('2025-01-01T00:00:05Z', now)).toBe(Date.UTC(2025, 0, 1, 0, 0, 5));
    expect(parseTime('2025-01-01T01:00:05.250+01:00', now)).toBe(Date.UTC(2025, 0, 1, 0, 0, 5, 250));
    expect(parseTime('now', now)).toBe(now);
    expect(parseTime('-5m', now)).toBe(now - 300_000);
    expect(parseTime('-1.5h', now)).toBe(now - 5_400_000);
    expect(parseTime(' -500ms ', now)).toBe(now - 500);
  });

  it('refuses what is not a time, with a stable code', () => {
    for (const bad of ['yesterday', '5m', '12:00', '2025-13-45', '']) expect(() => parseTime(bad, now)).toThrow(expect.objectContaining({ code: 'SY_ERR_REPLAY_BAD_ARGUMENT' }));
  });

  it('parses durations', () => {
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(() => parseDuration('soon')).toThrow(expect.objectContaining({ code: 'SY_ERR_REPLAY_BAD_ARGUMENT' }));
  });

  it('formats durations for people', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(0.25)).toBe('250 µs');
    expect(formatDuration(12)).toBe('12 ms');
    expect(formatDuration(1250)).toBe('1.25 s');
    expect(formatDuration(65_000)).toBe('1 m 05 s');
    expect(formatDuration(-40)).toBe('-40 ms');
  });
});
