import type { TopicSpec } from './port.js';

/** The logical topics of DESIGN.md; the physical name is `prefix + name`. */
export type TopicName = 'requests' | 'decisions' | 'results' | 'heartbeats' | 'control' | 'sessions' | 'deadletter';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface TopicLayoutOptions {
  /** @default 'switchyard.' */
  prefix?: string;
  /** Worker lanes = partitions of `decisions`. @default 64 */
  lanes?: number;
}

/** Topic specs with DESIGN.md's partition counts, cleanup policies and retention. */
export function topicLayout({ prefix = 'switchyard.', lanes = 64 }: TopicLayoutOptions = {}): Record<TopicName, TopicSpec> {
  if (!Number.isInteger(lanes) || lanes < 1) throw new RangeError(`lanes must be a positive integer, got ${lanes}`);
  const t = (name: TopicName, partitions: number, extra: Partial<TopicSpec> = {}): TopicSpec => ({
    name: `${prefix}${name}`,
    partitions,
    ...extra,
  });
  return {
    // Requests are seen by the router as soon as they are written (TopicSpec.visibility): the
    // gateway's acknowledgement still waits for the fsync, and an outcome's fsync covers its request.
    requests: t('requests', 12, { retentionMs: 7 * DAY, visibility: 'written' }),
    // Decisions and heartbeats ride the next group commit (see TopicSpec.durability): a decision
    // lost in a machine crash leaves its request without an outcome, and that is decided again.
    decisions: t('decisions', lanes, { retentionMs: 7 * DAY, durability: 'relaxed' }),
    results: t('results', 12, { retentionMs: 7 * DAY }),
    heartbeats: t('heartbeats', 6, { retentionMs: 6 * HOUR, durability: 'relaxed' }),
    control: t('control', 1, { retentionMs: -1 }),
    sessions: t('sessions', 12, { compacted: true }),
    deadletter: t('deadletter', 1, { retentionMs: 90 * DAY }),
  };
}
