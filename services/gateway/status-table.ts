import { LRUCache } from 'lru-cache';
import { OutputSlabs } from './output-slabs.js';
import type { RequestError, RequestStatus, RequestStatusName } from './state.js';

/**
 * Bytes an entry costs besides its output and error message, for the byte bound. Measured at 100k
 * entries by results-memory.unit.test.ts: ~300 on the V8 heap (its request id — the LRU's key —,
 * an Idempotency-Key fingerprint, the LRU's slot and map entry, its pointers in the string
 * columns), ~80 in the typed columns (rows are allocated by doubling), and the slabs' unused
 * tails.
 */
export const ENTRY_BYTES = 448;

export interface StatusTableOptions {
  /** Most entries. */
  maxEntries: number;
  /** Most bytes (approximate: `ENTRY_BYTES` per entry, plus its output and error message). */
  maxBytes: number;
  /** An entry expires this long after it was last set, ms. */
  ttlMs: number;
  /** Clock of the expiry, ms. */
  now: () => number;
}

const NAMES: readonly RequestStatusName[] = ['accepted', 'started', 'retrying', 'completed', 'failed', 'rejected'];
const CODES: ReadonlyMap<RequestStatusName, number> = new Map(NAMES.map((name, code) => [name, code]));
/** `outputLength` of an entry with no result. */
const NO_RESULT = -1;

/**
 * The results tracker's memory: request id → `RequestStatus`, bounded in entries and bytes,
 * least recently used first out, expiring. The same contract as an LRU of status objects, kept
 * as columns: an entry is a row (a slot) of typed arrays and of arrays of shared strings, its
 * output bytes in `OutputSlabs`, and `get` builds the status object when it is read.
 *
 * Why columns: a status was ~6 objects on the V8 heap (the status, its result, its output's view,
 * boxed times, copies of strings), ~600k objects at the default 100k entries, kept for minutes —
 * and every mark-compact walks them all (results-memory.probe.ts: a forced full GC took 43–65 ms
 * with 100k statuses held as objects, 19–20 ms as rows, 6–10 ms with none). A row holds no object of its own but the request id (the LRU's key) and, for
 * requests accepted with an Idempotency-Key, its fingerprint; the strings it points to (model,
 * version, worker, content type, digest) are the event codec's shared copies. A status read is
 * short-lived garbage, which a scavenge frees for next to nothing.
 *
 * A set writes a new row and the LRU disposes of the old one, so a row never changes under its
 * key (`set` returns the row's version, for `versionOf`). An output is copied into the slabs
 * unless it is the view of the row it replaces (a status read, changed and set again).
 */
export class StatusTable {
  private readonly lru: LRUCache<string, number>;
  private readonly outputs = new OutputSlabs();
  private capacity = 0;
  /** Rows never used yet start here; freed rows are reused first. */
  private highWater = 0;
  private free: number[] = [];
  private sets = 0;

  private status = new Uint8Array(0);
  private attempt = new Int32Array(0);
  /** NaN: null. */
  private acceptedAt = new Float64Array(0);
  private updatedAt = new Float64Array(0);
  private version = new Float64Array(0);
  private outputHandle = new Float64Array(0);
  /** `NO_RESULT`: no result. */
  private outputLength = new Int32Array(0);
  private cacheHit = new Uint8Array(0);
  private batchSize = new Int32Array(0);
  private queueMs = new Float64Array(0);
  private computeMs = new Float64Array(0);
  private readonly model: (string | null)[] = [];
  private readonly requestedModel: (string | null)[] = [];
  private readonly modelVersion: (string | null)[] = [];
  private readonly workerId: (string | null)[] = [];
  private readonly contentType: (string | null)[] = [];
  private readonly modelDigest: (string | null)[] = [];
  private readonly fingerprint: (string | null)[] = [];
  private readonly error: (RequestError | null)[] = [];

  private readonly maxBytes: number;

  constructor(options: StatusTableOptions) {
    this.maxBytes = options.maxBytes;
    this.lru = new LRUCache<string, number>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      ttl: options.ttlMs,
      updateAgeOnGet: false,
      perf: { now: options.now },
      // Read the clock on each check: lru-cache's default caches it for 1 ms with a timer (a
      // timer per millisecond under load, and a stale time under a test's clock).
      ttlResolution: 0,
      dispose: (row) => this.freeRow(row),
    });
  }

  /** The status of `requestId` (counts as a use for the LRU order), or undefined. */
  get(requestId: string): RequestStatus | undefined {
    const row = this.lru.get(requestId);
    return row === undefined ? undefined : this.read(requestId, row);
  }

  /** As `get`, without counting as a use. */
  peek(requestId: string): RequestStatus | undefined {
    const row = this.lru.peek(requestId);
    return row === undefined ? undefined : this.read(requestId, row);
  }

  /** The version of what `requestId` holds now (`set` returned it), or undefined. */
  versionOf(requestId: string): number | undefined {
    const row = this.lru.peek(requestId);
    return row === undefined ? undefined : this.version[row];
  }

  /** Remember `status` under `requestId`; its version. Nothing is kept when one entry alone exceeds `maxBytes`. */
  set(requestId: string, s: RequestStatus): number {
    const version = ++this.sets;
    const size = ENTRY_BYTES + (s.result?.output.byteLength ?? 0) + (s.error?.message.length ?? 0) * 2;
    if (size > this.maxBytes) {
      // Refused, as the LRU refuses an entry larger than its bound: the key is dropped, and with it any older row.
      this.lru.delete(requestId);
      return version;
    }
    const previous = this.lru.peek(requestId);
    const row = this.allocate();
    this.status[row] = CODES.get(s.status)!;
    this.attempt[row] = s.attempt;
    this.acceptedAt[row] = s.acceptedAt ?? NaN;
    this.updatedAt[row] = s.updatedAt;
    this.version[row] = version;
    this.model[row] = s.model;
    this.requestedModel[row] = s.requestedModel;
    this.modelVersion[row] = s.modelVersion;
    this.workerId[row] = s.workerId;
    this.fingerprint[row] = s.fingerprint;
    this.error[row] = s.error;
    const r = s.result;
    if (r === null) {
      this.outputLength[row] = NO_RESULT;
      this.contentType[row] = null;
      this.modelDigest[row] = null;
    } else {
      const out = r.output;
      if (previous !== undefined && this.outputLength[previous]! >= 0 && this.outputs.holds(this.outputHandle[previous]!, this.outputLength[previous]!, out)) {
        this.outputHandle[row] = this.outputHandle[previous]!;
        this.outputs.retain(this.outputHandle[row]!);
      } else {
        this.outputHandle[row] = this.outputs.add(out);
      }
      this.outputLength[row] = out.byteLength;
      this.contentType[row] = r.contentType;
      this.modelDigest[row] = r.modelDigest;
      this.cacheHit[row] = r.cacheHit ? 1 : 0;
      this.batchSize[row] = r.batchSize;
      this.queueMs[row] = r.queueMs;
      this.computeMs[row] = r.computeMs;
    }
    this.lru.set(requestId, row, { size });
    return version;
  }

  delete(requestId: string): void {
    this.lru.delete(requestId);
  }

  get size(): number {
    return this.lru.size;
  }

  /** The byte count the bound is kept by. */
  get bytes(): number {
    return this.lru.calculatedSize;
  }

  /** Rows in use, rows allocated (the columns' length) and output slabs held: what the table holds besides its LRU. */
  memory(): { rows: number; capacity: number; slabs: number } {
    return { rows: this.highWater - this.free.length, capacity: this.capacity, slabs: this.outputs.slabCount };
  }

  private read(requestId: string, row: number): RequestStatus {
    const acceptedAt = this.acceptedAt[row]!;
    const length = this.outputLength[row]!;
    return {
      requestId,
      status: NAMES[this.status[row]!]!,
      attempt: this.attempt[row]!,
      model: this.model[row]!,
      requestedModel: this.requestedModel[row]!,
      modelVersion: this.modelVersion[row]!,
      workerId: this.workerId[row]!,
      acceptedAt: Number.isNaN(acceptedAt) ? null : acceptedAt,
      updatedAt: this.updatedAt[row]!,
      result:
        length === NO_RESULT
          ? null
          : {
              output: this.outputs.view(this.outputHandle[row]!, length),
              contentType: this.contentType[row]!,
              modelDigest: this.modelDigest[row]!,
              cacheHit: this.cacheHit[row] === 1,
              batchSize: this.batchSize[row]!,
              queueMs: this.queueMs[row]!,
              computeMs: this.computeMs[row]!,
            },
      error: this.error[row]!,
      fingerprint: this.fingerprint[row]!,
    };
  }

  private allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.highWater === this.capacity) this.grow();
    return this.highWater++;
  }

  /** Double the columns (rows are allocated as used: a large `maxEntries` costs nothing until filled). */
  private grow(): void {
    const n = Math.max(1_024, this.capacity * 2);
    const wider = <T extends Float64Array | Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.status = wider(this.status, (k) => new Uint8Array(k));
    this.attempt = wider(this.attempt, (k) => new Int32Array(k));
    this.acceptedAt = wider(this.acceptedAt, (k) => new Float64Array(k));
    this.updatedAt = wider(this.updatedAt, (k) => new Float64Array(k));
    this.version = wider(this.version, (k) => new Float64Array(k));
    this.outputHandle = wider(this.outputHandle, (k) => new Float64Array(k));
    this.outputLength = wider(this.outputLength, (k) => new Int32Array(k));
    this.cacheHit = wider(this.cacheHit, (k) => new Uint8Array(k));
    this.batchSize = wider(this.batchSize, (k) => new Int32Array(k));
    this.queueMs = wider(this.queueMs, (k) => new Float64Array(k));
    this.computeMs = wider(this.computeMs, (k) => new Float64Array(k));
    for (const column of [this.model, this.requestedModel, this.modelVersion, this.workerId, this.contentType, this.modelDigest, this.fingerprint, this.error]) {
      for (let i = this.capacity; i < n; i++) column.push(null);
    }
    this.capacity = n;
  }

  private freeRow(row: number): void {
    if (this.outputLength[row]! >= 0) this.outputs.release(this.outputHandle[row]!);
    this.outputLength[row] = NO_RESULT;
    // Only the row's own objects need letting go; the shared strings would stay alive anyway.
    this.fingerprint[row] = null;
    this.error[row] = null;
    this.free.push(row);
  }
}
