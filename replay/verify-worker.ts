import { parentPort } from 'node:worker_threads';
import { EventCodec } from '../schemas/codec.js';
import type { InferenceRequested } from '../schemas/generated/events.js';
import { remoteSource, type WorkerTask } from './parallel.js';
import { logSourceFrom } from './source.js';
import { verifyListed } from './verify.js';

/**
 * A `replay verify` worker thread (replay/parallel.ts): boots while the main thread lists the
 * decisions, then verifies the share it is sent, reading through the main thread.
 */
parentPort!.once('message', (task: WorkerTask) => {
  void (async () => {
    try {
      const { log, registry } = remoteSource(task.port);
      const codec = await EventCodec.create({ registry });
      const source = await logSourceFrom({ log, registry, codec, topicPrefix: task.topicPrefix, description: 'worker' });
      // Buffers cross threads as Uint8Array.
      const requests = new Map<string, InferenceRequested>(task.requests.map(([k, r]) => [k, { ...r, input: Buffer.from(r.input) }]));
      let last = 0;
      const report = await verifyListed(source, task.list, requests, {
        maxDivergences: task.maxDivergences,
        inPlace: task.inPlace,
        onProgress: ({ phase, done }) => {
          if (phase === 'verify' && done - last >= 2_000) {
            last = done;
            parentPort!.postMessage({ progress: { done } });
          }
        },
      });
      parentPort!.postMessage({ report });
    } catch (err) {
      parentPort!.postMessage({ error: (err as Error).stack ?? String(err) });
    } finally {
      task.port.close();
    }
  })();
});
