import { SwitchyardError } from '../errors.js';
import type { TopicSpec } from './port.js';

/**
 * The deployment's retention budgets, which both log adapters apply to the topics that expire
 * records (a `retentionMs` ≥ 0, not compacted: requests, decisions, results, heartbeats,
 * deadletter). Topics kept forever (`control`) and compacted topics (`sessions`, `_schemas`)
 * are never trimmed by them.
 */
export interface RetentionBudget {
  /**
   * Most bytes a partition keeps: its oldest closed segments are deleted past it (Kafka's
   * `retention.bytes`; like Kafka, the active segment is never deleted, so a partition can
   * reach this plus one segment). -1 = no size limit. @default -1
   */
  retentionBytes?: number;
  /**
   * Longest time records are kept: a topic's own `retentionMs` above it is lowered to it
   * (Kafka's `retention.ms`). -1 = each topic's own retention. @default -1
   */
  maxRetentionMs?: number;
}

/** Checks a budget and applies its defaults; `SY_ERR_CONFIG` names `where` on a bad value. */
export function resolveRetentionBudget({ retentionBytes = -1, maxRetentionMs = -1 }: RetentionBudget, where: string): Required<RetentionBudget> {
  for (const [name, v] of Object.entries({ retentionBytes, maxRetentionMs })) {
    if (!Number.isSafeInteger(v) || v < -1) throw new SwitchyardError('SY_ERR_CONFIG', `${where}: ${name} must be -1 or a non-negative integer, got ${v}`);
  }
  return { retentionBytes, maxRetentionMs };
}

/** A topic's retention under a budget: time in ms and bytes per partition, -1 = unlimited. */
export function topicRetention(spec: Pick<TopicSpec, 'compacted' | 'retentionMs'>, budget: Required<RetentionBudget>): { ms: number; bytes: number } {
  const own = spec.retentionMs ?? -1;
  if (spec.compacted === true || own < 0) return { ms: -1, bytes: -1 };
  return { ms: budget.maxRetentionMs >= 0 ? Math.min(own, budget.maxRetentionMs) : own, bytes: budget.retentionBytes };
}
