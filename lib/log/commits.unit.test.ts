import { describe, expect, it } from 'vitest';
import { OffsetCommitter, type PartitionOffset } from './commits.js';

/** A coordinator whose answers the test releases one at a time. */
function coordinator() {
  const sent: PartitionOffset[][] = [];
  const answers: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const send = (offsets: PartitionOffset[]) =>
    new Promise<void>((resolve, reject) => {
      sent.push(offsets);
      answers.push({ resolve, reject });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return { sent, send, answer: async (err?: Error) => (err ? answers.shift()!.reject(err) : answers.shift()!.resolve(), await tick()), tick };
}

describe('OffsetCommitter', () => {
  it('sends the first position at once and coalesces what comes while it is in flight, each partition its latest', async () => {
    const c = coordinator();
    const committer = new OffsetCommitter(c.send, () => {});
    committer.add({ topic: 'a', partition: 0, offset: 10 });
    await c.tick();
    expect(c.sent).toEqual([[{ topic: 'a', partition: 0, offset: 10 }]]);
    committer.add({ topic: 'a', partition: 0, offset: 11 });
    committer.add({ topic: 'a', partition: 1, offset: 5 });
    committer.add({ topic: 'a', partition: 0, offset: 12 });
    await c.tick();
    expect(c.sent).toHaveLength(1); // one request at a time
    await c.answer();
    expect(c.sent[1]).toEqual([
      { topic: 'a', partition: 0, offset: 12 },
      { topic: 'a', partition: 1, offset: 5 },
    ]);
    const done = committer.settled();
    await c.answer();
    await done;
    expect(c.sent).toHaveLength(2);
  });

  it('reports a refused commit and goes on with the next position', async () => {
    const c = coordinator();
    const errors: { offsets: PartitionOffset[]; err: unknown }[] = [];
    const committer = new OffsetCommitter(c.send, (offsets, err) => errors.push({ offsets, err }));
    committer.add({ topic: 't', partition: 3, offset: 7 });
    await c.tick();
    committer.add({ topic: 't', partition: 3, offset: 9 });
    await c.answer(new Error('REBALANCE_IN_PROGRESS'));
    expect(errors).toEqual([{ offsets: [{ topic: 't', partition: 3, offset: 7 }], err: new Error('REBALANCE_IN_PROGRESS') }]);
    expect(c.sent[1]).toEqual([{ topic: 't', partition: 3, offset: 9 }]);
    const done = committer.settled();
    await c.answer();
    await done;
  });

  it('settled() waits for positions recorded while a commit is in flight; retain() drops revoked partitions not yet sent', async () => {
    const c = coordinator();
    const committer = new OffsetCommitter(c.send, () => {});
    committer.add({ topic: 't', partition: 0, offset: 1 });
    await c.tick();
    committer.add({ topic: 't', partition: 0, offset: 2 });
    committer.add({ topic: 't', partition: 1, offset: 4 });
    committer.retain((_topic, partition) => partition !== 1);
    let settled = false;
    const done = committer.settled().then(() => (settled = true));
    await c.answer();
    expect(settled).toBe(false);
    expect(c.sent[1]).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
    await c.answer();
    await done;
    expect(settled).toBe(true);
    await committer.settled(); // nothing pending: at once
  });
});
