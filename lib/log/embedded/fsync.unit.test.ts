import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { tempDir } from '../../../test/support/log-dir.js';
import { waitFor } from '../../../test/support/services.js';
import { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './index.js';

const TOPIC = 'fsync';

interface HandleProto {
  datasync: (this: { fd: number }) => Promise<void>;
}

/** Counts (and can hold back) FileHandle.datasync calls, the fsyncs of segment appends. */
async function instrumentDatasync(dir: string) {
  const probe = await openFile(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as HandleProto;
  await probe.close();
  const original = proto.datasync;
  const calls: { fd: number; at: number }[] = [];
  let gate: Promise<void> | undefined;
  proto.datasync = async function (this: { fd: number }) {
    calls.push({ fd: this.fd, at: performance.now() });
    if (gate !== undefined) await gate;
    return original.call(this);
  };
  return {
    calls,
    hold(): () => void {
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      return () => {
        gate = undefined;
        open();
      };
    },
    restore: () => {
      proto.datasync = original;
    },
  };
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('embedded log fsync policies', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let log: EmbeddedLog | undefined;
  let sync: Awaited<ReturnType<typeof instrumentDatasync>>;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sy-fsync-'));
    sync = await instrumentDatasync(dir);
  });
  afterEach(async () => {
    sync.restore();
    await log?.close();
    log = undefined;
    await remove();
  });

  const openLog = async (options: Omit<EmbeddedLogOptions, 'dir'>, partitions = 1) => {
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger, maintenanceIntervalMs: 0, ...options });
    await log.ensureTopics([{ name: TOPIC, partitions }]);
    sync.calls.length = 0;
    return log;
  };
  const one = (partition = 0, v = 'x') => ({ topic: TOPIC, partition, value: Buffer.from(v) });

  it("'never' does not fsync appends", async () => {
    const log = await openLog({ fsync: 'never' });
    for (let i = 0; i < 10; i++) await log.append([one()]);
    await Promise.all(Array.from({ length: 10 }, () => log.append([one()])));
    expect(sync.calls).toEqual([]);
    expect(await log.endOffsets(TOPIC)).toEqual([20]);
  });

  it("'always' fsyncs every append call before it resolves, sharing one fsync among concurrent calls", async () => {
    const log = await openLog({ fsync: 'always' });
    for (let i = 0; i < 5; i++) await log.append([one()]);
    expect(sync.calls.length).toBe(5);
    sync.calls.length = 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append([one(0, `c${i}`)])));
    expect(sync.calls.length).toBe(1);
  });

  it('an append resolves, and consumers see it, only after the fsync that covers it', async () => {
    const log = await openLog({ fsync: 'always' });
    const release = sync.hold();
    let resolved = false;
    const appending = log.append([one(0, 'held')]).then((p) => {
      resolved = true;
      return p;
    });
    await waitFor(() => sync.calls.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the fsync to start' });
    await turns(10);
    expect(resolved).toBe(false);
    expect(await log.endOffsets(TOPIC)).toEqual([0]);
    expect(await log.read({ topic: TOPIC, partition: 0, from: 0 })).toEqual([]);
    release();
    expect((await appending)[0]!.offset).toBe(0);
    expect(await log.endOffsets(TOPIC)).toEqual([1]);
  });

  it("'interval' batches appends into at most one fsync per partition per interval", async () => {
    const intervalMs = 40;
    const log = await openLog({ fsync: 'interval', fsyncIntervalMs: intervalMs }, 2);
    const until = performance.now() + 400;
    let appends = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, producer) => {
        while (performance.now() < until) {
          await log.append([one(producer % 2)]);
          appends++;
        }
      }),
    );
    const byFile = new Map<number, number[]>();
    for (const c of sync.calls) byFile.set(c.fd, [...(byFile.get(c.fd) ?? []), c.at]);
    expect(byFile.size).toBe(2);
    for (const times of byFile.values()) {
      expect(times.length).toBeLessThanOrEqual(Math.ceil(400 / intervalMs) + 3);
      // The interval is between flush starts; an fsync follows its write, whose time varies.
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(intervalMs / 2);
      expect((times.at(-1)! - times[0]!) / (times.length - 1)).toBeGreaterThanOrEqual(intervalMs * 0.9);
    }
    expect(appends).toBeGreaterThan(sync.calls.length * 4);
    expect(sum(await log.endOffsets(TOPIC))).toBe(appends);
  });

  it("'interval' flushes at once after a quiet spell, and waits out the interval under load", async () => {
    const log = await openLog({ fsync: 'interval', fsyncIntervalMs: 300 });
    let started = performance.now();
    await log.append([one()]);
    const first = performance.now() - started;
    started = performance.now();
    await log.append([one()]);
    const second = performance.now() - started;
    expect(first).toBeLessThan(250);
    expect(second).toBeGreaterThanOrEqual(200);
    expect(sync.calls.length).toBe(2);
  });

  it('close flushes (and fsyncs) appends still waiting for their interval', async () => {
    const first = await openLog({ fsync: 'interval', fsyncIntervalMs: 10_000 });
    await first.append([one()]);
    const pending = first.append([one(0, 'late')]);
    await turns(3);
    await first.close();
    expect((await pending)[0]!.offset).toBe(1);
    expect(sync.calls.length).toBe(2);
    log = await openEmbeddedLog({ dir: join(dir, 'log'), logger: silentLogger });
    expect((await log.read({ topic: TOPIC, partition: 0, from: 0 })).map((r) => r.value!.toString())).toEqual(['x', 'late']);
  });
});

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
