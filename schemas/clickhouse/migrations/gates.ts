/**
 * Version-gated DDL fragments for migrations: each returns the richer form when the server
 * has the feature and a plain equivalent when it does not, so one migration reads the
 * same on ClickHouse 18.16 and on chDB. Pure functions of `Features`.
 */
import type { Features } from './types.js';

/** `LowCardinality(T)` where supported, else `T` (same values, plainer storage). */
export const lowCardinality = (features: Features, type: string): string =>
  features.lowCardinality ? `LowCardinality(${type})` : type;

/**
 * A UTC instant column type: `DateTime64(3, 'UTC')` (milliseconds) where supported, else
 * `DateTime('UTC')` (whole seconds). Inserting a JS `Date` works for both; the store
 * encodes it for the column's type.
 */
export const instantType = (features: Features): string =>
  features.dateTime64 ? "DateTime64(3, 'UTC')" : "DateTime('UTC')";

/** ` CODEC(spec)` to append after a column type, or nothing where codecs are missing. */
export const codec = (features: Features, spec: string): string => (features.codecs ? ` CODEC(${spec})` : '');

/** ` TTL expr` to append to a table definition, or nothing where TTL is missing. */
export const ttl = (features: Features, expr: string): string => (features.ttl ? ` TTL ${expr}` : '');
