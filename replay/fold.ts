import type { ClockEntry } from '../schemas/generated/events.js';
import { evolve, initialRouterState, type RouterState } from '../services/router/state.js';
import type { FoldDecoder } from './decoder.js';
import { PartitionCursor } from './scan.js';
import type { LogSource } from './source.js';

/**
 * A router state folded from a log prefix, forward only: `advanceTo(clock)` folds exactly the
 * records below each clock entry's offset of the partition it names (the router's own rule: the
 * clock names the records applied), with the router's own `evolve`. Records that do not decode
 * are skipped, as the router's view skips them; empty values (tombstones) likewise.
 *
 * Order across partitions is free (the router state is interleaving-independent by design,
 * services/router/state.ts), so each partition is folded on its own up to its target; the one
 * partition of `control` is folded in its log order like everything else.
 *
 * A prefix that starts above offset 0 (retention removed the beginning) is folded from the log's
 * start and marked `truncated`: a router that folded the removed records may have a different
 * state, so a mismatch over a truncated prefix is inconclusive rather than a divergence.
 */
export class ClockFold {
  readonly state: RouterState;
  /** "topic\0partition" → next offset to fold. */
  private readonly cursors = new Map<string, PartitionCursor>();
  private readonly starts = new Map<string, number[]>();
  private readonly ends = new Map<string, number[]>();
  /** Records folded (decoded and applied, or skipped as ignorable). */
  records = 0;
  /** Records skipped because they do not decode. */
  undecodable = 0;
  /** Partitions folded from a start above 0 (retention). */
  readonly truncated = new Set<string>();

  constructor(
    private readonly source: LogSource,
    private readonly decoder: FoldDecoder,
    lanes: number = Math.max(1, source.topics.decisions.partitions),
  ) {
    this.state = initialRouterState({ lanes });
  }

  /** Offsets folded so far, per partition named. */
  position(topic: string, partition: number): number {
    return this.cursors.get(`${topic}\u0000${partition}`)?.position ?? 0;
  }

  /** Whether every entry of `clock` is at or beyond what was folded (so `advanceTo` can reach it). */
  canReach(clock: readonly ClockEntry[]): boolean {
    const named = new Set<string>();
    for (const c of clock) {
      const key = `${c.topic}\u0000${c.partition}`;
      named.add(key);
      const cursor = this.cursors.get(key);
      if (cursor !== undefined && cursor.position > Math.max(c.offset, this.startOf(c.topic, c.partition))) return false;
    }
    // A partition folded before but absent from this clock (an implicit 0) cannot be unfolded.
    for (const [key, cursor] of this.cursors) {
      if (named.has(key)) continue;
      const [topic, partition] = key.split('\u0000');
      if (cursor.position > this.startOf(topic!, Number(partition))) return false;
    }
    return true;
  }

  private startOf(topic: string, partition: number): number {
    return this.starts.get(topic)?.[partition] ?? 0;
  }

  private async cursor(topic: string, partition: number): Promise<PartitionCursor> {
    const key = `${topic}\u0000${partition}`;
    let c = this.cursors.get(key);
    if (c === undefined) {
      let starts = this.starts.get(topic);
      let ends = this.ends.get(topic);
      if (starts === undefined || ends === undefined) {
        starts = await this.source.log.startOffsets(topic).catch(() => []);
        ends = await this.source.log.endOffsets(topic).catch(() => []);
        this.starts.set(topic, starts);
        this.ends.set(topic, ends);
      }
      const start = starts[partition] ?? 0;
      c = new PartitionCursor(this.source.log, topic, partition, start, ends[partition] ?? 0, 4_000);
      this.cursors.set(key, c);
    }
    return c;
  }

  /** Fold every record below each entry's offset. Entries behind what was folded are ignored (see `canReach`). */
  async advanceTo(clock: readonly ClockEntry[]): Promise<void> {
    for (const entry of clock) {
      const target = entry.offset;
      const c = await this.cursor(entry.topic, entry.partition);
      if (c.position >= target) continue;
      if (target > 0 && this.startOf(entry.topic, entry.partition) > 0) this.truncated.add(`${entry.topic}/${entry.partition}`);
      for (;;) {
        let r = c.nextBelowSync(target);
        if (r === undefined) {
          const peeked = await c.peek();
          if (peeked === null || peeked.offset >= target) break;
          r = c.nextBelowSync(target);
        }
        if (r === null || r === undefined) break;
        this.records++;
        const value = r.value;
        if (value === null) continue;
        if (this.decoder.needsPrepare(value) && !(await this.decoder.prepare(value))) {
          this.undecodable++;
          continue;
        }
        const event = this.decoder.decode(value);
        if (event !== null) evolve(this.state, event);
        else if (!this.decoder.ignores(value)) this.undecodable++;
      }
    }
  }
}
