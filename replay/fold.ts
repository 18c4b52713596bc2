import type { ClockEntry, SwitchyardEvent } from '../schemas/generated/events.js';
import { evolve, initialRouterState, type RouterState } from '../services/router/state.js';
import type { FoldDecoder } from './decoder.js';
import type { CompactClock, EnvelopePeeker } from './envelope.js';
import { RecordStreams, type Consumer, type SharedPartition } from './streams.js';
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
interface Part {
  readonly stream: SharedPartition;
  readonly consumer: Consumer;
  /** Offset after the last record folded (the stream's start before any). */
  next: number;
  /** Some record of it was folded. */
  touched: boolean;
}

export class ClockFold {
  readonly state: RouterState;
  /** topic → partition → this fold's place in it. */
  private readonly parts = new Map<string, (Part | undefined)[]>();
  /** The same places by the peeker's topic ids (compact clocks). */
  private readonly byId: (Part | undefined)[][] = [];
  private readonly peeker: EnvelopePeeker;
  /** Partitions with something folded. */
  private touchedCount = 0;
  private readonly decode: (value: Buffer | null) => SwitchyardEvent | null;
  /** Records folded (decoded and applied, or skipped as ignorable). */
  records = 0;
  /** Records skipped because they do not decode. */
  undecodable = 0;
  /** Partitions folded from a start above 0 (retention). */
  readonly truncated = new Set<string>();

  /**
   * @param streams where records come from; share one `RecordStreams` between folds that move
   *   forward together (verify: one fold per router) so each record is read and decoded once.
   *   @default streams of its own
   */
  constructor(
    source: LogSource,
    private readonly decoder: FoldDecoder,
    private readonly streams: RecordStreams = new RecordStreams(source, 4_000),
    lanes: number = Math.max(1, source.topics.decisions.partitions),
  ) {
    this.state = initialRouterState({ lanes });
    this.peeker = source.peeker;
    this.decode = (value) => decoder.decode(value);
  }

  /** Offset after the last record folded of a partition (0 when none). */
  position(topic: string, partition: number): number {
    return this.parts.get(topic)?.[partition]?.next ?? 0;
  }

  /**
   * Whether `advanceTo(clock)` can reach exactly `clock` from here: nothing folded at or beyond
   * any of its offsets, and nothing folded from a partition it does not name (an implicit 0).
   */
  canReach(clock: readonly ClockEntry[]): boolean {
    let named = 0;
    for (const c of clock) {
      const part = this.parts.get(c.topic)?.[c.partition];
      if (part === undefined || !part.touched) continue;
      named++;
      if (part.next > c.offset) return false;
    }
    return named === this.touchedCount;
  }

  /** Take a place in a partition now (so a shared stream keeps its records for this fold). */
  async join(topic: string, partition: number): Promise<void> {
    await this.part(topic, partition);
  }

  private async part(topic: string, partition: number): Promise<Part> {
    let list = this.parts.get(topic);
    const existing = list?.[partition];
    if (existing !== undefined) return existing;
    const stream = await this.streams.partition(topic, partition);
    if (list === undefined) this.parts.set(topic, (list = []));
    const part: Part = { stream, consumer: stream.consumer(), next: stream.start, touched: false };
    list[partition] = part;
    (this.byId[this.peeker.topicId(topic)] ??= [])[partition] = part;
    return part;
  }

  /** Fold every record below each entry's offset. Entries behind what was folded are ignored (see `canReach`). */
  async advanceTo(clock: readonly ClockEntry[]): Promise<void> {
    for (const entry of clock) {
      const part = this.parts.get(entry.topic)?.[entry.partition] ?? (await this.part(entry.topic, entry.partition));
      for (let wait = this.foldPart(part, entry.offset); wait !== undefined; wait = this.foldPart(part, entry.offset)) await wait;
    }
  }

  /** `canReach` for a compact clock (its topic ids are `source.peeker`'s). */
  canReachCompact(clock: CompactClock): boolean {
    let named = 0;
    for (let k = 0; k < clock.n; k++) {
      const part = this.byId[clock.topic[k]!]?.[clock.partition[k]!];
      if (part === undefined || !part.touched) continue;
      named++;
      if (part.next > clock.offset[k]!) return false;
    }
    return named === this.touchedCount;
  }

  /**
   * `advanceTo` for a compact clock, as far as it can go without waiting: undefined once the fold
   * is at the clock, else something to await (a partition to read, a schema id to learn) before
   * calling again. Verify's common case (records already read) so costs no promise.
   */
  advanceLoaded(clock: CompactClock): Promise<unknown> | undefined {
    for (let k = 0; k < clock.n; k++) {
      const topic = clock.topic[k]!;
      const partition = clock.partition[k]!;
      const part = this.byId[topic]?.[partition];
      if (part === undefined) return this.part(this.peeker.topicName(topic), partition);
      const wait = this.foldPart(part, clock.offset[k]!);
      if (wait !== undefined) return wait;
    }
    return undefined;
  }

  /** Fold a partition's records below `target` that are loaded: undefined when done, else what to await first. */
  private foldPart(part: Part, target: number): Promise<unknown> | undefined {
    if (part.next >= target) return undefined;
    const { stream, consumer } = part;
    for (;;) {
      const r = stream.at(consumer.index);
      if (r === undefined) return stream.load();
      if (r === null || r.offset >= target) return undefined;
      const value = r.value;
      if (value !== null && this.decoder.needsPrepare(value)) return this.decoder.prepare(value);
      if (!part.touched) {
        part.touched = true;
        this.touchedCount++;
        if (stream.start > 0) this.truncated.add(`${stream.topic}/${stream.partition}`);
      }
      const index = consumer.index++;
      part.next = r.offset + 1;
      this.records++;
      if (value === null) continue;
      const event = stream.event(index, this.decode);
      if (event !== null) evolve(this.state, event);
      else if (!this.decoder.ignores(value)) this.undecodable++;
    }
  }

  /** Leave every shared stream (they may then drop what only this fold still needed). */
  release(): void {
    for (const list of this.parts.values()) for (const part of list) if (part !== undefined) part.stream.release(part.consumer);
    this.parts.clear();
    this.byId.length = 0;
  }
}
