import { RecentIds, uuidText, uuidWords } from '../../lib/recent-ids.js';
import type { OutcomeRef } from './state.js';

const TYPES: readonly OutcomeRef['type'][] = ['InferenceCompleted', 'InferenceFailed', 'RequestRejected'];
const TYPE_CODES: ReadonlyMap<string, number> = new Map(TYPES.map((t, i) => [t, i]));

/**
 * The controller's winning terminal outcomes of recently finished requests: request id →
 * `OutcomeRef`, the last `perPartition` of each results partition (oldest offset out first), so
 * a later terminal outcome of the same request is recognised as superseded.
 *
 * Kept as columns by row (`RecentIds` gives each request id a row of its partition's ring), not
 * as a map of objects: 10,000 outcomes × 12 partitions were ~360k objects (the ref, its event id,
 * the request id) on the V8 heap for minutes, each walked by every mark-compact. An event id that
 * is a canonical UUID — every Switchyard service's — is kept as its 16 bytes; another (a test's,
 * a foreign producer's) in a map by row. `get` builds the ref when it is read.
 */
export class OutcomeMemory {
  private readonly ids: RecentIds;
  private eventIds = new Uint32Array(0);
  /** Event ids that are not UUIDs, by row. */
  private readonly otherEventIds = new Map<number, string>();
  private type = new Uint8Array(0);
  private offset = new Float64Array(0);
  private attempt = new Int32Array(0);
  private readonly topic: string[] = [];
  private readonly workerId: (string | null)[] = [];

  constructor(readonly perPartition: number) {
    this.ids = new RecentIds(perPartition);
  }

  get size(): number {
    return this.ids.size;
  }

  has(requestId: string): boolean {
    return this.ids.has(requestId);
  }

  get(requestId: string): OutcomeRef | undefined {
    const row = this.ids.rowOf(requestId);
    if (row < 0) return undefined;
    return {
      requestId,
      eventId: this.otherEventIds.get(row) ?? uuidText(this.eventIds, row * 4),
      type: TYPES[this.type[row]!]!,
      topic: this.topic[row]!,
      partition: Math.floor(row / this.perPartition),
      offset: this.offset[row]!,
      workerId: this.workerId[row]!,
      attempt: this.attempt[row]!,
    };
  }

  /** Remember `ref` (a request already remembered keeps its outcome); its partition's oldest leaves when it holds `perPartition`. */
  add(ref: OutcomeRef): void {
    if (this.ids.has(ref.requestId)) return;
    const row = this.ids.add(ref.requestId, ref.partition);
    if (row >= this.type.length) this.grow(row + 1);
    this.otherEventIds.delete(row);
    if (!uuidWords(ref.eventId, this.eventIds, row * 4)) this.otherEventIds.set(row, ref.eventId);
    this.type[row] = TYPE_CODES.get(ref.type)!;
    this.offset[row] = ref.offset;
    this.attempt[row] = ref.attempt;
    this.topic[row] = ref.topic;
    this.workerId[row] = ref.workerId;
  }

  /** Columns for rows up to `rows` (a partition's ring is first used: its rows come all at once). */
  private grow(rows: number): void {
    const n = Math.ceil(rows / this.perPartition) * this.perPartition;
    const wider = <T extends Float64Array | Int32Array | Uint8Array | Uint32Array>(a: T, b: T): T => {
      b.set(a);
      return b;
    };
    this.eventIds = wider(this.eventIds, new Uint32Array(n * 4));
    this.type = wider(this.type, new Uint8Array(n));
    this.offset = wider(this.offset, new Float64Array(n));
    this.attempt = wider(this.attempt, new Int32Array(n));
    while (this.topic.length < n) {
      this.topic.push('');
      this.workerId.push(null);
    }
  }
}
