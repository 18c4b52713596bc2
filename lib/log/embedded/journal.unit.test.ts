import { cp, open as openFile, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureLogger, tempDir } from '../../../test/support/log-dir.js';
import { instrumentDatasync } from '../../../test/support/datasync.js';
import { spawnScript } from '../../../test/support/processes.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';
import { RELAXED_SYNC_MS } from './partition.js';
import { MAX_RUNS } from './journal.js';

const TOPIC = 'journalled';
const INDEX = fileURLToPath(new URL('./index.ts', import.meta.url));
const OTHER = 'other';
const EARLY = 'early';

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** The file an fsync was for, from the fd it was called on (Linux). */
const pathOf = (fd: number): string => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `(closed fd ${fd})`;
  }
};

describe('embedded log commit journal', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let opened: EmbeddedLog[];
  let sync: Awaited<ReturnType<typeof instrumentDatasync>>;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-journal-'));
    sync = await instrumentDatasync(dir);
    opened = [];
  });
  afterEach(async () => {
    sync.restore();
    await Promise.all(opened.map((l) => l.close()));
    await remove();
  });

  const openLog = async (at: string, options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    const capture = captureLogger();
    const log = await openEmbeddedLog({ dir: at, logger: capture.logger, maintenanceIntervalMs: 0, fsync: 'always', ...options });
    opened.push(log);
    return { log, ...capture };
  };
  const fresh = async (options: Omit<EmbeddedLogOptions, 'dir'> = {}) => {
    const r = await openLog(join(dir, 'log'), options);
    await r.log.ensureTopics([
      { name: TOPIC, partitions: 12 },
      { name: OTHER, partitions: 4, durability: 'relaxed' },
    ]);
    // The journal's zero-fill ahead of its writes has an fsync of its own.
    await r.log.journalIdle();
    sync.calls.length = 0;
    return r;
  };
  const rec = (topic: string, partition: number, v: string, durability?: 'relaxed') => ({ topic, partition, key: `k-${v}`, value: Buffer.from(v), headers: { h: v }, durability });
  const values = async (log: EmbeddedLog, topic: string, partition: number) => (await log.read({ topic, partition, from: 0 })).map((r) => `${r.offset}:${r.value!.toString()}:${r.key!.toString()}:${r.headers.h!.toString()}`);
  const journalFiles = async (at: string) => (await readdir(join(at, 'journal'))).filter((f) => f.endsWith('.journal'));
  const segment = (at: string, topic: string, partition: number) => join(at, 'topics', topic, String(partition), `${'0'.repeat(20)}.log`);

  /** A machine crash: the log's files as they are now, open, copied elsewhere (the journal included). */
  const crashCopy = async (): Promise<string> => {
    const to = join(dir, `crashed-${opened.length}`);
    await cp(join(dir, 'log'), to, { recursive: true });
    return to;
  };

  /** A journal write that never reached the disk: zeros from the entry holding `marker` on. */
  const loseJournalFrom = async (journalPath: string, marker: string) => {
    const bytes = await readFile(journalPath);
    const hit = bytes.indexOf(marker);
    expect(hit).toBeGreaterThan(0);
    let start = 0;
    while (start + 4 + bytes.readUInt32BE(start) <= hit) start += 4 + bytes.readUInt32BE(start);
    const handle = await openFile(journalPath, 'r+');
    await handle.write(Buffer.alloc(bytes.length - start), 0, bytes.length - start, start);
    await handle.close();
  };

  it('concurrent appends to twelve partitions are made durable by one fdatasync of the journal', async () => {
    const { log } = await fresh();
    // The first append to a partition creates its segment file (an open and a directory fsync).
    await Promise.all(Array.from({ length: 12 }, (_, p) => log.append([rec(TOPIC, p, `first${p}`)])));
    sync.calls.length = 0;
    await Promise.all(Array.from({ length: 12 }, (_, p) => log.append([rec(TOPIC, p, `v${p}`)])));
    expect(sync.calls.length).toBe(1);
    expect(pathOf(sync.calls[0]!.fd)).toMatch(/\/journal\/\d{20}\.journal$/);
    // One at a time, each append is still one fsync, the journal's.
    sync.calls.length = 0;
    for (let p = 0; p < 3; p++) await log.append([rec(TOPIC, p, `again${p}`)]);
    expect(sync.calls.map((c) => pathOf(c.fd))).toEqual(Array(3).fill(expect.stringMatching(/\.journal$/)));
  });

  it('an append resolves, and consumers see it, only after the journal fsync that covers it', async () => {
    const { log } = await fresh();
    // The first append to a partition creates its segment file (an open and a directory fsync).
    await Promise.all(Array.from({ length: MAX_RUNS + 1 }, (_, i) => log.append([rec(TOPIC, 3 + i, 'first')])));
    sync.calls.length = 0;
    const release = sync.hold();
    let resolved = false;
    const appending = log.append([rec(TOPIC, 3, 'held')]).then((p) => {
      resolved = true;
      return p;
    });
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the journal fsync to start' });
    await turns(10);
    expect(resolved).toBe(false);
    expect((await log.endOffsets(TOPIC))[3]).toBe(1);
    // Later turns' appends start fsyncs of their own at once (the kernel joins concurrent
    // ones), up to MAX_RUNS in progress; then a turn's appends wait for one to end.
    const later: Promise<unknown>[] = [];
    for (let i = 1; i < MAX_RUNS; i++) {
      later.push(log.append([rec(TOPIC, 3 + i, `turn${i}`)]));
      await waitFor(() => sync.calls.length === i + 1, { timeoutMs: 5_000, intervalMs: 1, what: `fsync ${i + 1} to start` });
    }
    later.push(log.append([rec(TOPIC, 3 + MAX_RUNS, 'waits')]));
    await turns(10);
    expect(sync.calls.length).toBe(MAX_RUNS);
    expect(resolved).toBe(false);
    release();
    expect((await appending)[0]!.offset).toBe(1);
    await Promise.all(later);
    expect(sync.calls.length).toBe(MAX_RUNS + 1);
    expect((await log.endOffsets(TOPIC)).slice(3, 4 + MAX_RUNS)).toEqual(Array(MAX_RUNS + 1).fill(2));
  });

  it("visibility 'written': consumers see a synced record before its fsync; its append still resolves only after it", async () => {
    const { log } = await fresh();
    await log.ensureTopics([{ name: EARLY, partitions: 2, visibility: 'written' }]);
    // The first append to a partition creates its segment file (an open and a directory fsync).
    await Promise.all([log.append([rec(EARLY, 0, 'first')]), log.append([rec(TOPIC, 0, 'first')])]);
    sync.calls.length = 0;
    const seen: string[] = [];
    const sub = await log.subscribe({
      groupId: 'early-reader',
      topics: [EARLY],
      fromBeginning: true,
      assignment: { kind: 'follow', partitions: [{ topic: EARLY, partitions: [0] }] },
      onBatch: async (b) => {
        seen.push(...b.records.map((r) => r.value!.toString()));
      },
    });
    await waitFor(() => seen.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the first record' });
    const release = sync.hold();
    let resolved = false;
    const appending = log.append([rec(EARLY, 0, 'held')]).then((p) => {
      resolved = true;
      return p;
    });
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the journal fsync to start' });
    await waitFor(() => seen.length === 2, { timeoutMs: 5_000, intervalMs: 1, what: 'the consumer to see the record before its fsync' });
    expect(seen).toEqual(['first', 'held']);
    expect((await log.endOffsets(EARLY))[0]).toBe(2);
    await turns(10);
    expect(resolved).toBe(false);
    // A synced topic's record (visibility 'synced') stays unseen until its fsync.
    const synced = log.append([rec(TOPIC, 0, 'held')]);
    await turns(10);
    expect((await log.endOffsets(TOPIC))[0]).toBe(1);
    release();
    expect((await appending)[0]!.offset).toBe(1);
    await synced;
    expect((await log.endOffsets(TOPIC))[0]).toBe(2);
    await sub.close();
  });

  it("visibility 'written': what a consumer appends because of a record is journaled after it, so one fsync makes both durable", async () => {
    const { log } = await fresh({ journalCheckpointMs: 3_600_000 });
    await log.ensureTopics([{ name: EARLY, partitions: 2, visibility: 'written' }]);
    await Promise.all([log.append([rec(EARLY, 1, 'first')]), log.append([rec(TOPIC, 5, 'first')])]);
    // An outcome appended as soon as its request is seen, while the request's own fsync is held.
    const release = sync.hold();
    const outcome = new Promise<void>((resolve, reject) => {
      void log
        .subscribe({
          groupId: 'reactor',
          topics: [EARLY],
          fromBeginning: false,
          assignment: { kind: 'follow', partitions: [{ topic: EARLY, partitions: [1] }] },
          onBatch: async (b) => {
            for (const r of b.records) if (r.value!.toString() === 'request') await log.append([rec(TOPIC, 5, 'outcome')]).then(() => resolve(), reject);
          },
        })
        .then(() => log.append([rec(EARLY, 1, 'request')]));
    });
    await waitFor(() => sync.calls.length >= 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the request fsync to start' });
    release();
    await outcome;
    const request = await values(log, EARLY, 1);
    const outcomes = await values(log, TOPIC, 5);
    // A machine crash once the outcome was acknowledged: both segment tails lost, the journal kept.
    const at = await crashCopy();
    // In the journal the request comes first: an fsync that covers the outcome covers it.
    const journal = Buffer.concat(await Promise.all((await journalFiles(at)).sort().map((f) => readFile(join(at, 'journal', f)))));
    expect(journal.indexOf('k-request')).toBeGreaterThan(-1);
    expect(journal.indexOf('k-request')).toBeLessThan(journal.indexOf('k-outcome'));
    await truncate(segment(at, EARLY, 1), 0);
    await truncate(segment(at, TOPIC, 5), 0);
    const { log: recovered } = await openLog(at);
    expect(await values(recovered, EARLY, 1)).toEqual(request);
    expect(await values(recovered, TOPIC, 5)).toEqual(outcomes);
    expect(outcomes.at(-1)).toMatch(/:outcome:/);
  });

  it('a commit is acknowledged only once every journal write before it is on disk too (recovery reads a file up to its first hole)', async () => {
    const { log } = await fresh({ journalCheckpointMs: 3_600_000 });
    const open = sync.hold();
    const first = log.append([rec(TOPIC, 0, 'first')]);
    await waitFor(() => sync.calls.length >= 1, { timeoutMs: 5_000, intervalMs: 1, what: "the first write's fsync to start" });
    // The second write's fsync goes through at once; the first one's is still held.
    sync.pass();
    let secondDone = false;
    const second = log.append([rec(TOPIC, 1, 'second')]).then(() => void (secondDone = true));
    try {
      await waitFor(() => sync.calls.length >= 2, { timeoutMs: 5_000, intervalMs: 1, what: "the second write's fsync" });
      await new Promise((r) => setTimeout(r, 50));
      expect(secondDone).toBe(false);
    } finally {
      open();
    }
    await Promise.all([first, second]);
    expect(secondDone).toBe(true);
  });

  it('a record the kernel wrote back to its segment ahead of the journal is cut when a record it was made on was lost, and commits past it are lowered', async () => {
    const { log } = await fresh({ journalCheckpointMs: 3_600_000 });
    await log.ensureTopics([{ name: EARLY, partitions: 2, visibility: 'written' }]);
    await log.append([rec(EARLY, 0, 'earlier')]);
    const requestSegmentBytes = (await stat(segment(join(dir, 'log'), EARLY, 0))).size;
    // A request, and a decision made on it (relaxed), which a consumer group reads and commits.
    await log.append([rec(EARLY, 0, 'request')]);
    await log.append([rec(OTHER, 1, 'decision', 'relaxed')]);
    let seen = false;
    const sub = await log.subscribe({ groupId: 'reader', topics: [OTHER], onBatch: async (b) => void (seen ||= b.records.some((r) => r.value!.toString() === 'decision')) });
    await waitFor(async () => seen && (await log.committedOffsets('reader', OTHER))[1] === 1, { timeoutMs: 5_000, intervalMs: 5, what: 'the decision read and committed' });
    await sub.close();
    const at = await crashCopy();
    // The machine crashed before the journal write holding the request reached the disk (and
    // so everything journaled after it), the request's segment tail was lost with its page
    // cache, and the kernel had written the decision's segment back: without the cut, a
    // decision on a request that is not in the log.
    const [file] = await journalFiles(at);
    await loseJournalFrom(join(at, 'journal', file!), 'k-request');
    await truncate(segment(at, EARLY, 0), requestSegmentBytes);
    expect((await stat(segment(at, OTHER, 1))).size).toBeGreaterThan(0);
    const { log: recovered, lines } = await openLog(at);
    expect(await values(recovered, EARLY, 0)).toEqual(['0:earlier:k-earlier:earlier']);
    expect(await values(recovered, OTHER, 1)).toEqual([]);
    expect(lines.find((l) => l.msg.includes('cut records a segment file held past the journal'))).toMatchObject({ topic: OTHER, partition: 1, from: 1, to: 0 });
    // The group resumes at the new end, so the next append at offset 0 is not skipped.
    expect((await recovered.committedOffsets('reader', OTHER))[1]).toBe(0);
    const [next] = await recovered.append([rec(OTHER, 1, 'another')]);
    expect(next!.offset).toBe(0);
  });

  it('a journal file that follows an incomplete one is past the consistent prefix: not replayed, and the partitions are cut to the prefix', async () => {
    // Each record is ~1.9 KB in the journal: the first file takes 7 before a checkpoint at 12 KiB,
    // the second at most 4 and 'late' (one checkpoint however the swap falls).
    const { log } = await fresh({ journalCheckpointBytes: 12_288, journalCheckpointMs: 3_600_000 });
    const big = 'x'.repeat(600);
    for (let i = 0; i < 4; i++) await log.append([rec(TOPIC, 0, `${i}${big}`)]);
    const early = await values(log, TOPIC, 0);
    // The first journal file as it was then: shorter than when the checkpoint below began the
    // second — as when a write to it was still in flight at the crash.
    const short = await readFile(join(dir, 'log', 'journal', '00000000000000000001.journal'));
    for (let i = 4; i < 10; i++) await log.append([rec(TOPIC, 0, `${i}${big}`)]);
    await waitFor(async () => (await journalFiles(join(dir, 'log'))).join() === '00000000000000000002.journal', { timeoutMs: 5_000, intervalMs: 5, what: 'one checkpoint' });
    await log.append([rec(TOPIC, 0, 'late')]);
    const at = await crashCopy();
    expect((await values(log, TOPIC, 0)).length).toBe(11);
    // Every segment written back in full; the journal: the short first file, then the second.
    await writeFile(join(at, 'journal', '00000000000000000001.journal'), short);
    const leftovers = await Promise.all(['00000000000000000001.journal', '00000000000000000002.journal'].map(async (f) => [f, await readFile(join(at, 'journal', f))] as const));
    const { log: recovered, lines } = await openLog(at);
    expect(await values(recovered, TOPIC, 0)).toEqual(early);
    expect(lines.find((l) => l.msg.includes('follows an incomplete one'))).toMatchObject({ journal: '00000000000000000002.journal', previous: '00000000000000000001.journal' });
    expect(lines.find((l) => l.msg.includes('cut records a segment file held past the journal'))).toMatchObject({ topic: TOPIC, partition: 0, from: 11, to: 4 });
    // Appends go on, acknowledged through the open's new journal file. Were the old files'
    // deletion not durable, a crash would bring them back beside it: recovery starts at the
    // newest file an open began, so the two old ones cannot end the prefix before it.
    const [after] = await recovered.append([rec(TOPIC, 0, 'after')]);
    expect(after!.offset).toBe(4);
    const again = join(dir, 'crashed-again');
    await cp(at, again, { recursive: true });
    for (const [f, bytes] of leftovers) await writeFile(join(again, 'journal', f), bytes);
    await truncate(segment(again, TOPIC, 0), (await stat(segment(again, TOPIC, 0))).size - 1);
    const { log: reopened } = await openLog(again);
    expect(await values(reopened, TOPIC, 0)).toEqual([...early, '4:after:k-after:after']);
  });

  it('relaxed records are visible at once and written to the journal within RELAXED_SYNC_MS, or with the next synced append', async () => {
    const { log } = await fresh();
    const started = performance.now();
    await log.append([rec(OTHER, 0, 'r0')]);
    expect(sync.calls.length).toBe(0);
    expect(await values(log, OTHER, 0)).toEqual(['0:r0:k-r0:r0']);
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the relaxed journal write' });
    expect(sync.calls[0]!.at - started).toBeGreaterThanOrEqual(RELAXED_SYNC_MS * 0.8);
    expect(pathOf(sync.calls[0]!.fd)).toMatch(/\.journal$/);
    // A relaxed record on a synced topic rides the next synced append's fsync.
    sync.calls.length = 0;
    await log.append([rec(TOPIC, 0, 'started', 'relaxed')]);
    await log.append([rec(TOPIC, 0, 'completed')]);
    expect(sync.calls.length).toBe(1);
    await new Promise((r) => setTimeout(r, RELAXED_SYNC_MS * 3));
    expect(sync.calls.length).toBe(1);
  });

  it('after a machine crash, what the segment files lost is appended again from the journal, at the same offsets', async () => {
    const { log } = await fresh({ journalCheckpointMs: 3_600_000 });
    for (let i = 0; i < 4; i++) await log.append([rec(TOPIC, 0, `p0-${i}`), rec(TOPIC, 7, `p7-${i}`)]);
    await log.append([rec(TOPIC, 0, 'started', 'relaxed')]);
    await log.append([rec(TOPIC, 0, 'completed')]);
    const before0 = await values(log, TOPIC, 0);
    const before7 = await values(log, TOPIC, 7);
    expect(before0).toHaveLength(6);
    const at = await crashCopy();
    // The page cache of both segments never reached the disk: partition 0 kept its first
    // record and part of the second, partition 7 nothing at all.
    const seg0 = segment(at, TOPIC, 0);
    const firstFrame = (await log.read({ topic: TOPIC, partition: 0, from: 0 })).length;
    expect(firstFrame).toBe(6);
    await truncate(seg0, 100);
    await truncate(segment(at, TOPIC, 7), 0);
    const { log: recovered, lines } = await openLog(at);
    expect(await values(recovered, TOPIC, 0)).toEqual(before0);
    expect(await values(recovered, TOPIC, 7)).toEqual(before7);
    expect(lines.find((l) => l.msg.includes('recovered records lost from segment tails'))).toMatchObject({ records: 9, partitions: 2 });
    // Appends go on after them, and the recovered journal is gone.
    const [next] = await recovered.append([rec(TOPIC, 7, 'after')]);
    expect(next!.offset).toBe(4);
    expect(await journalFiles(at)).toHaveLength(1);
  });

  it('a process crash (files intact) replays nothing twice', async () => {
    const { log } = await fresh({ journalCheckpointMs: 3_600_000 });
    for (let i = 0; i < 5; i++) await log.append([rec(TOPIC, 2, `v${i}`)]);
    const at = await crashCopy();
    const { log: recovered, lines } = await openLog(at);
    expect(await values(recovered, TOPIC, 2)).toEqual(await values(log, TOPIC, 2));
    expect(lines.some((l) => l.msg.includes('recovered records'))).toBe(false);
  });

  it('a torn last journal entry was never acknowledged: it is dropped with a warning, the entries before it are replayed', async () => {
    const { log } = await fresh({ journalCheckpointMs: 3_600_000 });
    for (let i = 0; i < 3; i++) await log.append([rec(TOPIC, 1, `v${i}`)]);
    const at = await crashCopy();
    const [file] = await journalFiles(at);
    // Half of an entry whose fsync never completed, where the next entry goes (over the
    // zero-filled space after the last one), and segment files that lost everything.
    const journal = join(at, 'journal', file!);
    const bytes = await readFile(journal);
    let end = 0;
    while (bytes.readUInt32BE(end) !== 0) end += 4 + bytes.readUInt32BE(end);
    // The file is zero-filled ahead of its writes: its first fill, 256 KiB.
    expect(bytes.length).toBe(256 * 1024);
    // The file's first entry is its base; the second, a flush's frames: half of one of those.
    const second = 4 + bytes.readUInt32BE(0);
    const handle = await openFile(journal, 'r+');
    await handle.write(bytes.subarray(second, second + 30), 0, 30, end);
    await handle.close();
    await truncate(segment(at, TOPIC, 1), 0);
    const { log: recovered, lines } = await openLog(at);
    expect(await values(recovered, TOPIC, 1)).toEqual(['0:v0:k-v0:v0', '1:v1:k-v1:v1', '2:v2:k-v2:v2']);
    expect(lines.find((l) => l.msg.includes('journal ends in a torn or corrupt entry'))).toMatchObject({ at: end, problem: expect.stringMatching(/^frame: /) });
  });

  it('a checkpoint fsyncs the segment files written since the last one and starts a new journal file', async () => {
    // One checkpoint in this test: each record is ~1.9 KB in the journal, the first file takes 7
    // before 12 KiB, the second at most 4 and the two late ones.
    const { log } = await fresh({ journalCheckpointBytes: 12_288, journalCheckpointMs: 3_600_000 });
    const big = 'x'.repeat(600);
    for (let i = 0; i < 10; i++) await log.append([rec(TOPIC, i % 3, `${i}${big}`)]);
    await waitFor(() => sync.calls.some((c) => pathOf(c.fd).includes('/topics/')), { timeoutMs: 5_000, intervalMs: 5, what: 'a checkpoint' });
    const segmentSyncs = new Set(sync.calls.map((c) => pathOf(c.fd)).filter((p) => p.includes('/topics/')));
    expect([...segmentSyncs].sort()).toEqual([0, 1, 2].map((p) => expect.stringContaining(`/topics/${TOPIC}/${p}/`)));
    await waitFor(async () => (await journalFiles(join(dir, 'log'))).length === 1, { timeoutMs: 5_000, intervalMs: 5, what: 'the old journal file to go' });
    // Everything before the checkpoint is in the segments: a crash now replays only what came after.
    const checkpointed = (await stat(segment(join(dir, 'log'), TOPIC, 0))).size;
    const before = await values(log, TOPIC, 0);
    const before1 = await values(log, TOPIC, 1);
    await log.append([rec(TOPIC, 0, 'late')]);
    await log.append([rec(TOPIC, 1, 'late1')]);
    expect(await journalFiles(join(dir, 'log'))).toEqual(['00000000000000000002.journal']);
    const at = await crashCopy();
    await truncate(segment(at, TOPIC, 0), checkpointed);
    // The journal write holding 'late1' never reached the disk, but its segment was written
    // back: partition 1 is cut to where the base says it ended at the checkpoint.
    await loseJournalFrom(join(at, 'journal', '00000000000000000002.journal'), 'k-late1');
    const { log: recovered, lines: cut } = await openLog(at);
    expect(await values(recovered, TOPIC, 0)).toEqual([...before, `${before.length}:late:k-late:late`]);
    expect(await values(recovered, TOPIC, 1)).toEqual(before1);
    expect(before1.length).toBeGreaterThan(0);
    expect(cut.find((l) => l.msg.includes('cut records a segment file held past the journal'))).toMatchObject({ topic: TOPIC, partition: 1, from: before1.length + 1, to: before1.length });
    // Had the checkpointed part been lost too, the journal could not fill the gap, and says so.
    const lost = await crashCopy();
    await truncate(segment(lost, TOPIC, 0), 0);
    const { log: gapped, lines } = await openLog(lost);
    expect(await values(gapped, TOPIC, 0)).toEqual([]);
    const gap = lines.find((l) => l.msg.includes('journal entry starts past the partition end'));
    expect(gap).toMatchObject({ topic: TOPIC, partition: 0, end: 0 });
    // The first record after the checkpoint's file swap: 'late', or one just before it.
    expect(gap?.gapAt).toBeGreaterThan(0);
    expect(gap?.gapAt).toBeLessThanOrEqual(before.length);
  });

  it("a checkpoint whose segment fsync fails keeps the journal file that holds those records, and the log refuses synced appends", async () => {
    const { log, lines } = await fresh({ journalCheckpointBytes: 12_288, journalCheckpointMs: 3_600_000 });
    sync.failWhen((fd) => pathOf(fd).includes(`/topics/${TOPIC}/0/`));
    const big = 'x'.repeat(600);
    for (let i = 0; i < 8; i++) await log.append([rec(TOPIC, i % 2, `${i}${big}`)]);
    await waitFor(() => lines.some((l) => l.msg.includes('journal checkpoint failed')), { timeoutMs: 5_000, intervalMs: 5, what: 'the checkpoint to fail' });
    // The first file stays: partition 0's records are durable nowhere else.
    expect(await journalFiles(join(dir, 'log'))).toContain('00000000000000000001.journal');
    await expect(log.append([rec(TOPIC, 1, 'after')])).rejects.toMatchObject({ code: 'SY_ERR_LOG_IO' });
  });

  it('a SIGKILLed writer: every append it saw acknowledged is there after reopening, at its offset, and appends go on', async () => {
    const at = join(dir, 'killed');
    const script = `
      const { openEmbeddedLog } = await import(${JSON.stringify(INDEX)});
      const log = await openEmbeddedLog({ dir: ${JSON.stringify(at)}, fsync: 'always', maintenanceIntervalMs: 0 });
      await log.ensureTopics([{ name: ${JSON.stringify(TOPIC)}, partitions: 12 }, { name: ${JSON.stringify(OTHER)}, partitions: 4, durability: 'relaxed' }]);
      for (let i = 0; ; i++) {
        await Promise.all(Array.from({ length: 8 }, async (_, j) => {
          const [a, b] = await log.append([
            { topic: ${JSON.stringify(TOPIC)}, key: 'k' + i + '-' + j, value: Buffer.from('v' + i + '-' + j) },
            { topic: ${JSON.stringify(OTHER)}, key: 'k' + i + '-' + j, value: Buffer.from('r' + i + '-' + j) },
          ]);
          console.log(['ack', a.partition, a.offset, 'v' + i + '-' + j, b.partition, b.offset, 'r' + i + '-' + j].join(' '));
        }));
      }
    `;
    const { child, output, exited } = spawnScript(script);
    try {
      await waitFor(() => (output().match(/^ack /gm) ?? []).length >= 400, { timeoutMs: 60_000, intervalMs: 5, what: `400 acknowledged appends\n${output().slice(0, 2000)}` });
      child.kill('SIGKILL');
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const acks = output().split('\n').filter((l) => l.startsWith('ack ')).map((l) => l.split(' '));
    expect(await journalFiles(at)).toHaveLength(1); // the killed process's, not deleted
    const { log: reopened, lines } = await openLog(at);
    const byPosition = new Map<string, string>();
    for (const topic of [TOPIC, OTHER]) {
      const ends = await reopened.endOffsets(topic);
      for (let p = 0; p < ends.length; p++) {
        const records = await reopened.read({ topic, partition: p, from: 0 });
        expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i)); // dense
        for (const r of records) byPosition.set(`${topic}/${p}/${r.offset}`, r.value!.toString());
      }
    }
    for (const [, p, o, v, rp, ro, rv] of acks) {
      expect(byPosition.get(`${TOPIC}/${p}/${o}`)).toBe(v);
      expect(byPosition.get(`${OTHER}/${rp}/${ro}`)).toBe(rv);
    }
    // A process crash loses no page cache: nothing to put back, and no torn entry to report
    // unless the kill fell in the middle of a journal write.
    expect(lines.some((l) => l.msg.includes('recovered records'))).toBe(false);
    expect(await journalFiles(at)).toHaveLength(1);
    const [next] = await reopened.append([rec(TOPIC, 0, 'after')]);
    expect(next!.offset).toBe((await reopened.endOffsets(TOPIC))[0]! - 1);
  }, 90_000);

  it('a clean close leaves no journal, and reopening logs nothing', async () => {
    const { log } = await fresh();
    await log.append([rec(TOPIC, 0, 'a'), rec(OTHER, 1, 'b')]);
    await log.close();
    expect(await journalFiles(join(dir, 'log'))).toEqual([]);
    const { log: again, lines } = await openLog(join(dir, 'log'));
    expect(await values(again, TOPIC, 0)).toEqual(['0:a:k-a:a']);
    expect(await values(again, OTHER, 1)).toEqual(['0:b:k-b:b']);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  it("fsync 'never' writes no journal; 'journal: false' fsyncs each partition's file", async () => {
    const { log } = await fresh({ fsync: 'never' });
    await log.append([rec(TOPIC, 0, 'a')]);
    expect(sync.calls).toEqual([]);
    expect(await journalFiles(join(dir, 'log'))).toEqual([]);
    await log.close();
    const { log: perFile } = await openLog(join(dir, 'log'), { journal: false });
    sync.calls.length = 0;
    await Promise.all([perFile.append([rec(TOPIC, 0, 'b')]), perFile.append([rec(TOPIC, 1, 'c')])]);
    expect(sync.calls.map((c) => pathOf(c.fd)).sort()).toEqual([expect.stringContaining(`/topics/${TOPIC}/0/`), expect.stringContaining(`/topics/${TOPIC}/1/`)]);
  });
});
