import { analyticsError } from './errors.js';
import type { ServerVersion } from './port.js';

/**
 * Parses what `SELECT version()` returns: `18.16.1`, `26.7.2.1`, `24.3.1.2672`, and
 * tolerates a trailing suffix (`23.8.1.1-lts`, `21.8.10.1 (official build)`). Anything
 * without at least `major.minor` is an error: feature gates must not guess.
 */
export function parseServerVersion(raw: string): ServerVersion {
  const text = String(raw).trim();
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) throw analyticsError(`cannot read a ClickHouse version from ${JSON.stringify(raw)}`, { version: raw });
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), raw: text };
}

/** Negative, zero or positive as `v` is older than, equal to or newer than `major.minor.patch`. */
export function compareVersion(v: ServerVersion, major: number, minor = 0, patch = 0): number {
  return v.major - major || v.minor - minor || v.patch - patch;
}

export const atLeast = (v: ServerVersion, major: number, minor = 0, patch = 0): boolean => compareVersion(v, major, minor, patch) >= 0;
