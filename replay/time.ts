import { ReplayError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A point in time given on the command line: ms since the epoch (`1735689600000`), an ISO 8601
 * date-time (`2025-01-01T00:00:05Z`, `2025-01-01T00:00:05.250+01:00`), `now`, or a time relative
 * to now (`-5m`, `-90s`, `-2h`, `-1d`, `-500ms`).
 */
export function parseTime(text: string, now: number = Date.now()): number {
  const s = text.trim();
  if (s === 'now') return now;
  if (/^\d{9,16}$/.test(s)) return Number(s);
  const rel = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
  if (rel) return Math.round(now - Number(rel[1]) * UNITS[rel[2]!]!);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(s)) {
    const ms = Date.parse(s);
    if (Number.isFinite(ms)) return ms;
  }
  throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', `"${text}" is not a time: use ms since the epoch, an ISO 8601 date-time, "now", or -<n>ms|s|m|h|d`);
}

/** A duration given on the command line: `1500`, `1500ms`, `30s`, `5m`, `1h`. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new ReplayError('SY_ERR_REPLAY_BAD_ARGUMENT', `"${text}" is not a duration: use <n>[ms|s|m|h|d]`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

/** ISO 8601 with ms, UTC. */
export const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

/** A duration for people: `850 µs`, `12 ms`, `1.25 s`, `3 m 05 s`. */
export function formatDuration(ms: number): string {
  const neg = ms < 0;
  const a = Math.abs(ms);
  let s: string;
  if (a === 0) s = '0 ms';
  else if (a < 1) s = `${Math.round(a * 1000)} µs`;
  else if (a < 1000) s = `${Number.isInteger(a) ? a : a.toFixed(1)} ms`;
  else if (a < 60_000) s = `${(a / 1000).toFixed(a < 10_000 ? 2 : 1)} s`;
  else if (a < 3_600_000) s = `${Math.floor(a / 60_000)} m ${String(Math.floor((a % 60_000) / 1000)).padStart(2, '0')} s`;
  else s = `${Math.floor(a / 3_600_000)} h ${String(Math.floor((a % 3_600_000) / 60_000)).padStart(2, '0')} m`;
  return neg ? `-${s}` : s;
}
