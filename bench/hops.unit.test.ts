import { describe, expect, it } from 'vitest';
import type { SwitchyardEvent } from '../schemas/generated/events.js';
import { HopTimings } from './hops.js';

// Only the fields HopTimings reads; the rest of each event does not matter to it.
const ev = (type: string, requestId: string | null, occurredAt: number): SwitchyardEvent => ({ type, requestId, occurredAt }) as unknown as SwitchyardEvent;

/** A request on the simple path: received at t, each later time as an offset from t. */
function simple(h: HopTimings, id: string, t: number, [reqLog, decided, decLog, started, completed, outLog]: number[]): void {
  h.add(ev('InferenceRequested', id, t), t + reqLog!);
  h.add(ev('RequestRouted', id, t + decided!), t + decLog!);
  h.add(ev('InferenceStarted', id, t + started!), t + started! + 1);
  h.add(ev('InferenceCompleted', id, t + completed!), t + outLog!);
}

describe('per-hop timings from recorded events', () => {
  it('measures each hop of the simple path from occurredAt and the record timestamps', () => {
    const h = new HopTimings();
    simple(h, 'a', 1000, [1, 3, 3, 4, 4, 5]);
    simple(h, 'b', 2000, [0, 5, 6, 9, 9, 12]);
    const rows = Object.fromEntries(h.rows().map((r) => [r.name, r]));
    expect(rows['gateway → requests']).toMatchObject({ mean: 0.5, p50: 0, p99: 1 });
    expect(rows['requests → decided']).toMatchObject({ mean: 3.5, p50: 2, p99: 5 });
    expect(rows['decided → decisions']).toMatchObject({ mean: 0.5 });
    expect(rows['decisions → started']).toMatchObject({ mean: 2, p50: 1, p99: 3 });
    expect(rows['compute']).toMatchObject({ mean: 0 });
    expect(rows['completed → results']).toMatchObject({ mean: 2, p50: 1, p99: 3 });
    expect(rows['on the log, end to end']).toMatchObject({ mean: 8.5, p50: 5, p99: 12 });
    expect(h.counts()).toEqual({ requests: 2, simple: 2 });
  });

  it('leaves out requests routed twice, failed, or not seen whole, and events of no request', () => {
    const h = new HopTimings();
    simple(h, 'ok', 0, [1, 2, 2, 3, 3, 4]);
    simple(h, 'twice', 0, [1, 2, 2, 3, 3, 4]);
    h.add(ev('RequestRouted', 'twice', 50), 51);
    h.add(ev('InferenceRequested', 'failed', 0), 1);
    h.add(ev('RequestRouted', 'failed', 2), 2);
    h.add(ev('InferenceStarted', 'failed', 3), 3);
    h.add(ev('InferenceFailed', 'failed', 4), 4);
    h.add(ev('InferenceRequested', 'in flight', 0), 1);
    h.add(ev('WorkerHeartbeat', null, 0), 0);
    expect(h.counts()).toEqual({ requests: 4, simple: 1 });
    expect(h.rows().find((r) => r.name === 'on the log, end to end')).toMatchObject({ mean: 4, p50: 4, p99: 4 });
  });

  it('describes only the requests received within a window when given one', () => {
    const h = new HopTimings();
    simple(h, 'before', 1000, [1, 2, 2, 3, 3, 4]);
    simple(h, 'inside', 2000, [1, 5, 5, 6, 6, 9]);
    simple(h, 'after', 3001, [1, 2, 2, 3, 3, 4]);
    expect(h.counts({ from: 2000, to: 3000 })).toEqual({ requests: 3, simple: 1 });
    expect(h.rows({ from: 2000, to: 3000 }).find((r) => r.name === 'on the log, end to end')).toMatchObject({ mean: 9, p50: 9, p99: 9 });
    expect(h.counts()).toEqual({ requests: 3, simple: 3 });
  });
});
