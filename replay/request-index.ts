import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogRecord, RecordPosition } from '../lib/log/port.js';
import { murmur2 } from '../lib/log/partitioner.js';
import { EnvelopePeeker } from './envelope.js';
import { ReplayError } from './errors.js';
import type { ProgressFn } from './scan.js';
import type { LogSource } from './source.js';

/**
 * The request index of an embedded log: request id → positions, and session id → positions,
 * across `requests`, `decisions`, `results`, `deadletter` and `sessions`, so `replay request`
 * and `replay session` read a handful of records instead of scanning the log.
 *
 * Built and kept up to date incrementally: the manifest records, per topic-partition, the offset
 * indexing stopped at (its watermark); `update` reads only what was appended since. Reading is
 * cheap — only the record key and the event envelope (replay/envelope.ts), no decode.
 *
 * What is indexed, per record:
 * - its envelope requestId → `request` (every topic; a record that is not an event falls back to
 *   its key on the topics keyed by request id);
 * - on `requests`, a key that is not the requestId is the sessionId → `session`;
 * - on `sessions` the key (sessionId) → `session`; on `deadletter` the key (the original
 *   record's key: a request id, or a session id for requests) → both.
 *
 * Layout under `dir` (`<home>/replay-index`): `manifest.json` (watermarks, fingerprints, runs)
 * and run files `run-<n>.idx`, each holding the entries of one update grouped into 4096 buckets by
 * the top bits of a 32-bit murmur2 of the key; an entry is 20 bytes (murmur2, FNV-1a, topic,
 * partition, offset). A lookup reads one bucket per run (a few KB) and compares both hashes; the
 * caller confirms each hit by decoding the record, so a hash collision costs a read, never a
 * wrong answer. Runs are merged into one when there are more than MAX_RUNS.
 *
 * The index is a cache: a manifest for another log (an end offset below a watermark, or a first
 * record that changed) is discarded and rebuilt, and an unreadable one likewise.
 */

export type IndexKind = 'request' | 'session';

const MAGIC = 'SYRIDX01';
const HEADER_BYTES = 16;
const BUCKET_BITS = 12;
const BUCKETS = 1 << BUCKET_BITS;
const ENTRY_BYTES = 20;
const MAX_RUNS = 8;
const MANIFEST = 'manifest.json';
const KIND_CODE: Record<IndexKind, number> = { request: 1, session: 2 };

interface Manifest {
  version: 1;
  topics: string[];
  /** "topic/partition" → next offset to index. */
  watermarks: Record<string, number>;
  /** "topic/partition" → [offset, fingerprint of the record there] for the first indexed record. */
  fingerprints: Record<string, [number, string]>;
  runs: { file: string; entries: number }[];
  nextRun: number;
}

const emptyManifest = (topics: string[]): Manifest => ({ version: 1, topics, watermarks: {}, fingerprints: {}, runs: [], nextRun: 1 });

function fnv1a(bytes: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The two 32-bit hashes of an index key. */
export function indexHashes(kind: IndexKind, id: string): [number, number] {
  const bytes = Buffer.from(`${kind === 'request' ? 'r' : 's'}:${id}`, 'utf8');
  return [murmur2(bytes) >>> 0, fnv1a(bytes)];
}

/** Growable columns of entries. */
class Entries {
  n = 0;
  h1 = new Uint32Array(1024);
  h2 = new Uint32Array(1024);
  topic = new Uint8Array(1024);
  kind = new Uint8Array(1024);
  partition = new Uint16Array(1024);
  offset = new Float64Array(1024);

  add(h1: number, h2: number, topic: number, kind: number, partition: number, offset: number): void {
    if (this.n === this.h1.length) this.grow();
    const i = this.n++;
    this.h1[i] = h1;
    this.h2[i] = h2;
    this.topic[i] = topic;
    this.kind[i] = kind;
    this.partition[i] = partition;
    this.offset[i] = offset;
  }

  private grow(): void {
    const size = this.h1.length * 2;
    const g = <T extends Uint32Array | Uint8Array | Uint16Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a as never);
      return b;
    };
    this.h1 = g(this.h1, (n) => new Uint32Array(n));
    this.h2 = g(this.h2, (n) => new Uint32Array(n));
    this.topic = g(this.topic, (n) => new Uint8Array(n));
    this.kind = g(this.kind, (n) => new Uint8Array(n));
    this.partition = g(this.partition, (n) => new Uint16Array(n));
    this.offset = g(this.offset, (n) => new Float64Array(n));
  }

  /** Encode as a run file: header, bucket table, entries grouped by bucket (counting sort). */
  encode(): Buffer {
    const n = this.n;
    const starts = new Uint32Array(BUCKETS + 1);
    for (let i = 0; i < n; i++) starts[(this.h1[i]! >>> (32 - BUCKET_BITS)) + 1]!++;
    for (let b = 0; b < BUCKETS; b++) starts[b + 1]! += starts[b]!;
    const fill = starts.slice(0, BUCKETS);
    const tableBytes = (BUCKETS + 1) * 4;
    const buf = Buffer.alloc(HEADER_BYTES + tableBytes + n * ENTRY_BYTES);
    buf.write(MAGIC, 0, 'latin1');
    buf.writeUInt32LE(n, 8);
    buf.writeUInt32LE(BUCKETS, 12);
    for (let b = 0; b <= BUCKETS; b++) buf.writeUInt32LE(starts[b]!, HEADER_BYTES + b * 4);
    const base = HEADER_BYTES + tableBytes;
    for (let i = 0; i < n; i++) {
      const at = base + fill[this.h1[i]! >>> (32 - BUCKET_BITS)]!++ * ENTRY_BYTES;
      buf.writeUInt32LE(this.h1[i]!, at);
      buf.writeUInt32LE(this.h2[i]!, at + 4);
      buf[at + 8] = this.topic[i]!;
      buf[at + 9] = this.kind[i]!;
      buf.writeUInt16LE(this.partition[i]!, at + 10);
      buf.writeDoubleLE(this.offset[i]!, at + 12);
    }
    return buf;
  }

  /** Append the entries of an encoded run. */
  addEncoded(buf: Buffer): void {
    const n = buf.readUInt32LE(8);
    const base = HEADER_BYTES + (BUCKETS + 1) * 4;
    for (let i = 0; i < n; i++) {
      const at = base + i * ENTRY_BYTES;
      this.add(buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf[at + 8]!, buf[at + 9]!, buf.readUInt16LE(at + 10), buf.readDoubleLE(at + 12));
    }
  }
}

const TOPICS = ['requests', 'decisions', 'results', 'deadletter', 'sessions'] as const;

export interface IndexUpdate {
  /** Records read since the last update. */
  scanned: number;
  /** Entries added. */
  added: number;
  /** The index was discarded and built again (another log, or unreadable). */
  rebuilt: boolean;
  ms: number;
}

export interface IndexStats {
  dir: string;
  runs: number;
  entries: number;
  /** Records covered (Σ watermark − start). */
  partitions: number;
}

export class RequestIndex {
  private manifest: Manifest;
  private readonly handles = new Map<string, { fh: FileHandle; table: Uint32Array }>();

  private constructor(
    private readonly source: LogSource,
    readonly dir: string,
    manifest: Manifest,
  ) {
    this.manifest = manifest;
  }

  /** Open (or start) the index of an embedded source. Call `update` before lookups to cover new records. */
  static async open(source: LogSource, dir: string | undefined = source.indexDir): Promise<RequestIndex> {
    if (dir === undefined) throw new ReplayError('SY_ERR_REPLAY_INDEX', `the request index needs a directory (${source.description} has none: use the keyed lookup)`);
    await mkdir(dir, { recursive: true });
    const topics = TOPICS.map((t) => source.topics[t].name);
    let manifest = emptyManifest(topics);
    try {
      const parsed = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
      if (parsed.version === 1 && JSON.stringify(parsed.topics) === JSON.stringify(topics)) manifest = parsed;
    } catch {
      // missing or unreadable: start over
    }
    return new RequestIndex(source, dir, manifest);
  }

  stats(): IndexStats {
    return {
      dir: this.dir,
      runs: this.manifest.runs.length,
      entries: this.manifest.runs.reduce((a, r) => a + r.entries, 0),
      partitions: Object.keys(this.manifest.watermarks).length,
    };
  }

  /** What identifies a record: its timestamp, size and event id. */
  private async fingerprint(record: LogRecord): Promise<string> {
    const { peeker } = this.source;
    if (peeker.typeOf(record.value) === undefined) await peeker.resolve(EnvelopePeeker.schemaId(record.value));
    return `${record.timestamp}/${record.value?.length ?? -1}/${peeker.peek(record.value)?.eventId ?? ''}`;
  }

  private async firstRecord(topic: string, partition: number, offset: number): Promise<LogRecord | undefined> {
    const [r] = await this.source.log.read({ topic, partition, from: offset, maxRecords: 1 });
    return r;
  }

  /** Whether the manifest describes this log; false means rebuild. */
  private async matches(): Promise<boolean> {
    for (const topic of this.manifest.topics) {
      const starts = await this.source.log.startOffsets(topic).catch(() => [] as number[]);
      const ends = await this.source.log.endOffsets(topic).catch(() => [] as number[]);
      for (let p = 0; p < ends.length; p++) {
        const key = `${topic}/${p}`;
        const wm = this.manifest.watermarks[key];
        if (wm !== undefined && ends[p]! < wm) return false;
        const fp = this.manifest.fingerprints[key];
        if (fp !== undefined && fp[0] === starts[p] && fp[0] < ends[p]!) {
          const r = await this.firstRecord(topic, p, fp[0]);
          if (r === undefined || (await this.fingerprint(r)) !== fp[1]) return false;
        }
      }
    }
    return true;
  }

  private async reset(): Promise<void> {
    await this.closeHandles();
    for (const run of this.manifest.runs) await rm(join(this.dir, run.file), { force: true });
    this.manifest = emptyManifest(this.manifest.topics);
  }

  /** Index what was appended since the last update (everything, the first time). */
  async update({ onProgress }: { onProgress?: ProgressFn | undefined } = {}): Promise<IndexUpdate> {
    const t0 = performance.now();
    let rebuilt = false;
    if (!(await this.matches())) {
      await this.reset();
      rebuilt = true;
    }
    const { peeker, log } = this.source;
    const plan: { topic: string; t: number; partition: number; from: number; to: number }[] = [];
    for (let t = 0; t < this.manifest.topics.length; t++) {
      const topic = this.manifest.topics[t]!;
      const starts = await log.startOffsets(topic).catch(() => [] as number[]);
      const ends = await log.endOffsets(topic).catch(() => [] as number[]);
      for (let p = 0; p < ends.length; p++) {
        const key = `${topic}/${p}`;
        const from = Math.max(this.manifest.watermarks[key] ?? 0, starts[p] ?? 0);
        const fp = this.manifest.fingerprints[key];
        if ((fp === undefined || fp[0] !== starts[p]) && starts[p]! < ends[p]!) {
          const r = await this.firstRecord(topic, p, starts[p]!);
          if (r !== undefined) this.manifest.fingerprints[key] = [r.offset, await this.fingerprint(r)];
        }
        if (from < ends[p]!) plan.push({ topic, t, partition: p, from, to: ends[p]! });
        else this.manifest.watermarks[key] = Math.max(from, this.manifest.watermarks[key] ?? 0);
      }
    }
    const total = plan.reduce((a, r) => a + r.to - r.from, 0);
    const entries = new Entries();
    let scanned = 0;
    onProgress?.({ phase: 'index', done: 0, total });
    for (const range of plan) {
      const logical = TOPICS[range.t]!;
      let from = range.from;
      while (from < range.to) {
        const batch = await log.read({ topic: range.topic, partition: range.partition, from, to: range.to, maxRecords: 5_000 });
        if (batch.length === 0) break;
        for (const record of batch) {
          if (peeker.typeOf(record.value) === undefined) await peeker.resolve(EnvelopePeeker.schemaId(record.value));
          const env = peeker.requestId(record.value);
          const key = record.key === null ? null : record.key.toString('utf8');
          const add = (kind: IndexKind, id: string) => {
            const [h1, h2] = indexHashes(kind, id);
            entries.add(h1, h2, range.t, KIND_CODE[kind], range.partition, record.offset);
          };
          const requestId = env?.requestId ?? null;
          if (requestId !== null) add('request', requestId);
          if (logical === 'requests') {
            if (key !== null && key !== requestId) add('session', key);
          } else if (logical === 'sessions' || logical === 'deadletter') {
            if (key !== null) {
              if (key !== requestId) add('request', key);
              add('session', key);
            }
          } else if (requestId === null && key !== null) {
            add('request', key); // decisions/results are keyed by request id
          }
        }
        from = batch[batch.length - 1]!.offset + 1;
        scanned += batch.length;
        onProgress?.({ phase: 'index', done: scanned, total });
      }
      this.manifest.watermarks[`${range.topic}/${range.partition}`] = range.to;
    }
    if (entries.n > 0) {
      const file = `run-${String(this.manifest.nextRun++).padStart(6, '0')}.idx`;
      await writeFile(join(this.dir, file), entries.encode());
      this.manifest.runs.push({ file, entries: entries.n });
    }
    if (this.manifest.runs.length > MAX_RUNS) await this.merge();
    await this.saveManifest();
    return { scanned, added: entries.n, rebuilt, ms: performance.now() - t0 };
  }

  private async merge(): Promise<void> {
    const all = new Entries();
    for (const run of this.manifest.runs) all.addEncoded(await readFile(join(this.dir, run.file)));
    const file = `run-${String(this.manifest.nextRun++).padStart(6, '0')}.idx`;
    await writeFile(join(this.dir, file), all.encode());
    await this.closeHandles();
    const old = this.manifest.runs;
    this.manifest.runs = [{ file, entries: all.n }];
    await this.saveManifest();
    for (const run of old) await rm(join(this.dir, run.file), { force: true });
  }

  private async saveManifest(): Promise<void> {
    const tmp = join(this.dir, `${MANIFEST}.tmp`);
    await writeFile(tmp, JSON.stringify(this.manifest));
    await rename(tmp, join(this.dir, MANIFEST));
  }

  private async run(file: string): Promise<{ fh: FileHandle; table: Uint32Array }> {
    let h = this.handles.get(file);
    if (h === undefined) {
      const fh = await open(join(this.dir, file), 'r');
      const head = Buffer.alloc(HEADER_BYTES + (BUCKETS + 1) * 4);
      await fh.read(head, 0, head.length, 0);
      if (head.toString('latin1', 0, 8) !== MAGIC || head.readUInt32LE(12) !== BUCKETS) {
        await fh.close();
        throw new ReplayError('SY_ERR_REPLAY_INDEX', `${join(this.dir, file)} is not a request index run`);
      }
      const table = new Uint32Array(BUCKETS + 1);
      for (let b = 0; b <= BUCKETS; b++) table[b] = head.readUInt32LE(HEADER_BYTES + b * 4);
      h = { fh, table };
      this.handles.set(file, h);
    }
    return h;
  }

  /**
   * Positions whose records may belong to `id` (confirm by decoding: a hash collision is
   * possible), ordered by topic, partition, offset. Covers what was indexed by the last `update`.
   */
  async lookup(kind: IndexKind, id: string): Promise<RecordPosition[]> {
    const [h1, h2] = indexHashes(kind, id);
    const bucket = h1 >>> (32 - BUCKET_BITS);
    const code = KIND_CODE[kind];
    const out: RecordPosition[] = [];
    const seen = new Set<string>();
    for (const run of this.manifest.runs) {
      const { fh, table } = await this.run(run.file);
      const first = table[bucket]!;
      const n = table[bucket + 1]! - first;
      if (n === 0) continue;
      const buf = Buffer.alloc(n * ENTRY_BYTES);
      await fh.read(buf, 0, buf.length, HEADER_BYTES + (BUCKETS + 1) * 4 + first * ENTRY_BYTES);
      for (let i = 0; i < n; i++) {
        const at = i * ENTRY_BYTES;
        if (buf.readUInt32LE(at) !== h1 || buf.readUInt32LE(at + 4) !== h2 || buf[at + 9] !== code) continue;
        const topic = this.manifest.topics[buf[at + 8]!];
        if (topic === undefined) continue;
        const pos = { topic, partition: buf.readUInt16LE(at + 10), offset: buf.readDoubleLE(at + 12) };
        const k = `${pos.topic}/${pos.partition}/${pos.offset}`;
        if (seen.has(k)) continue;
        seen.add(k);
        out.push(pos);
      }
    }
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition || a.offset - b.offset));
  }

  private async closeHandles(): Promise<void> {
    for (const h of this.handles.values()) await h.fh.close().catch(() => {});
    this.handles.clear();
  }

  async close(): Promise<void> {
    await this.closeHandles();
  }
}
