import { open, readdir, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../logger.js';
import { frameOffset, frameTimestamp } from './frame.js';
import { indexFileName, segmentFileName, Segment, writeFully } from './segment.js';

/**
 * Replacing closed segments with cleaned (compacted) copies, crash-safely.
 *
 * 1. The cleaned segments are written as `<base>.cleaned` (+ `<base>.cleaned-index`) and,
 *    unless fsync is off, synced.
 * 2. A manifest `cleaner.json` naming the replaced and produced base offsets is written
 *    atomically (tmp + rename). This is the commit point.
 * 3. Each `.cleaned` file is renamed over `<base>.log` (likewise the index) and replaced
 *    segments that were not overwritten are deleted; then the manifest is removed.
 *
 * On open, a leftover manifest means step 3 is redone (every step is idempotent); `.cleaned`
 * files without a manifest are the remains of an unfinished step 1 and are deleted.
 */
export const CLEANER_MANIFEST = 'cleaner.json';
const CLEANED = '.cleaned';
const CLEANED_INDEX = '.cleaned-index';

interface Manifest {
  replaced: number[];
  produced: number[];
}

const baseName = (base: number): string => String(base).padStart(20, '0');
const cleanedPath = (dir: string, base: number): string => join(dir, baseName(base) + CLEANED);
const cleanedIndexPath = (dir: string, base: number): string => join(dir, baseName(base) + CLEANED_INDEX);

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `path` atomically: a temp file, synced when asked, renamed over. */
export async function writeFileAtomic(path: string, data: string | Buffer, sync: boolean): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

/**
 * Writes cleaned segments: frames are copied verbatim (they carry their offsets), packed
 * into segments of at most `segmentBytes`. The first output keeps `firstBase` as its base
 * offset, so the partition's start offset does not move; later outputs are based at their
 * first record.
 */
export class CleanedSegmentWriter {
  readonly outputs: Segment[] = [];
  private handle: FileHandle | undefined;
  private handleFor: Segment | undefined;
  private pending: { out: Segment; frame: Buffer }[] = [];

  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly indexIntervalBytes: number,
    private readonly firstBase: number,
  ) {}

  /** Copies the frame at `block[at, at + length)` into the current output. */
  add(block: Buffer, at: number, length: number): void {
    let out = this.outputs[this.outputs.length - 1];
    const offset = frameOffset(block, at);
    if (out === undefined || (out.pendingSize > 0 && out.pendingSize + length > this.segmentBytes)) {
      out = new Segment(this.dir, out === undefined ? this.firstBase : offset, this.indexIntervalBytes);
      this.outputs.push(out);
    }
    const frame = Buffer.allocUnsafe(length);
    block.copy(frame, 0, at, at + length);
    this.pending.push({ out, frame });
    out.noteFrame(offset, out.pendingSize, frameTimestamp(block, at));
    out.pendingSize += length;
  }

  /** Writes the frames added so far (bounding memory to about one read block). */
  async drain(sync: boolean): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    let i = 0;
    while (i < pending.length) {
      const out = pending[i]!.out;
      const run: Buffer[] = [];
      let bytes = 0;
      while (i < pending.length && pending[i]!.out === out) {
        const frame = pending[i++]!.frame;
        run.push(frame);
        bytes += frame.length;
      }
      const handle = await this.handleOf(out, sync);
      await writeFully(handle, run, out.size);
      out.size += bytes;
    }
  }

  private async handleOf(out: Segment, sync: boolean): Promise<FileHandle> {
    if (this.handleFor !== out || this.handle === undefined) {
      await this.closeCurrent(sync);
      this.handle = await open(cleanedPath(this.dir, out.baseOffset), 'w');
      this.handleFor = out;
    }
    return this.handle;
  }

  private async closeCurrent(sync: boolean): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    this.handleFor = undefined;
    if (handle === undefined) return;
    try {
      if (sync) await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  /** Writes everything, syncs, and writes each output's index; returns the outputs, sealed. */
  async finish(sync: boolean): Promise<Segment[]> {
    await this.drain(sync);
    if (this.outputs.length === 0) {
      // Nothing survived: keep an empty segment at the first base so the start offset stays.
      const empty = new Segment(this.dir, this.firstBase, this.indexIntervalBytes);
      this.outputs.push(empty);
      await this.handleOf(empty, sync);
    }
    await this.closeCurrent(sync);
    for (const out of this.outputs) {
      out.sealed = true;
      out.fileCreated = true;
      await writeFile(cleanedIndexPath(this.dir, out.baseOffset), out.encodeIndex());
    }
    return this.outputs;
  }

  /** Removes the outputs' files after a failure. */
  async abort(): Promise<void> {
    await this.closeCurrent(false).catch(() => {});
    for (const out of this.outputs) {
      await unlinkIfPresent(cleanedPath(this.dir, out.baseOffset)).catch(() => {});
      await unlinkIfPresent(cleanedIndexPath(this.dir, out.baseOffset)).catch(() => {});
    }
  }
}

/** Steps 2 and 3: commit the swap of `replaced` segments by `produced` ones. */
export async function commitCleaning(dir: string, replaced: number[], produced: number[], sync: boolean): Promise<void> {
  if (sync) await syncDir(dir);
  const manifest: Manifest = { replaced, produced };
  await writeFileAtomic(join(dir, CLEANER_MANIFEST), JSON.stringify(manifest), sync);
  if (sync) await syncDir(dir);
  await applyCleaning(dir, manifest, sync);
}

async function applyCleaning(dir: string, { replaced, produced }: Manifest, sync: boolean): Promise<void> {
  const producedSet = new Set(produced);
  for (const base of produced) {
    await renameIfPresent(cleanedPath(dir, base), join(dir, segmentFileName(base)));
    await renameIfPresent(cleanedIndexPath(dir, base), join(dir, indexFileName(base)));
  }
  for (const base of replaced) {
    if (producedSet.has(base)) continue;
    await unlinkIfPresent(join(dir, segmentFileName(base)));
    await unlinkIfPresent(join(dir, indexFileName(base)));
  }
  if (sync) await syncDir(dir);
  await unlinkIfPresent(join(dir, CLEANER_MANIFEST));
}

/** On open: finish a committed cleaning, drop the remains of an uncommitted one. */
export async function recoverCleaning(dir: string, logger: Logger, sync: boolean): Promise<void> {
  let manifest: Manifest | undefined;
  try {
    manifest = JSON.parse(await readFile(join(dir, CLEANER_MANIFEST), 'utf8')) as Manifest;
  } catch (err) {
    if (!isMissing(err)) logger.error({ dir, err }, 'embedded log: unreadable compaction manifest ignored');
  }
  if (manifest !== undefined && Array.isArray(manifest.replaced) && Array.isArray(manifest.produced)) {
    logger.warn({ dir, replaced: manifest.replaced.length, produced: manifest.produced.length }, 'embedded log: finishing an interrupted compaction');
    await applyCleaning(dir, manifest, sync);
  }
  for (const name of await readdir(dir)) {
    if (name.endsWith(CLEANED) || name.endsWith(CLEANED_INDEX) || name.endsWith('.tmp')) {
      logger.warn({ dir, file: name }, 'embedded log: removing the remains of an unfinished compaction');
      await unlinkIfPresent(join(dir, name));
    }
  }
}
