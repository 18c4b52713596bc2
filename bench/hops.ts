import type { SwitchyardEvent } from '../schemas/generated/events.js';
import { percentile } from './stats.js';

/**
 * Per-hop timings of requests, from their recorded events alone (issue 11: where the time of a
 * request goes). Each event carries the producer's clock (`occurredAt`: when the gateway received
 * the request, the router decided, the worker started and finished), and its record the log's
 * (`timestamp`: when the append was called). A hop is the time between two of those, for requests
 * that went the simple path — routed once, started and completed once. Times are whole
 * milliseconds (the events' resolution), so a hop under a millisecond shows in the mean.
 * Pure: bench/cpu.ts scans the log and feeds `add`.
 */

/** The times of one request's path, ms since the epoch. */
interface Path {
  received?: number;
  requestAppended?: number;
  decided?: number;
  decisionAppended?: number;
  started?: number;
  completed?: number;
  outcomeAppended?: number;
  /** Routings, starts and terminal outcomes seen: a request with more than one of any is not on the simple path. */
  routings: number;
  starts: number;
  outcomes: number;
}

type Complete = Required<Path>;

/** The hops, in path order: a name for people, what it spans, and its duration. */
export const HOPS: readonly { name: string; spans: string; of: (p: Complete) => number }[] = [
  { name: 'gateway → requests', spans: 'InferenceRequested occurredAt → its append (validation, encoding)', of: (p) => p.requestAppended - p.received },
  { name: 'requests → decided', spans: 'request appended → RequestRouted occurredAt (group commit and fsync of `requests`, the router\'s consumer wake-up, decode, decide)', of: (p) => p.decided - p.requestAppended },
  { name: 'decided → decisions', spans: 'RequestRouted occurredAt → its append', of: (p) => p.decisionAppended - p.decided },
  { name: 'decisions → started', spans: 'decision appended → InferenceStarted occurredAt (`decisions` is relaxed: visible at once; the worker\'s consumer wake-up, decode, lane queue)', of: (p) => p.started - p.decisionAppended },
  { name: 'compute', spans: 'InferenceStarted → InferenceCompleted occurredAt (the model: no-op)', of: (p) => p.completed - p.started },
  { name: 'completed → results', spans: 'InferenceCompleted occurredAt → its append', of: (p) => p.outcomeAppended - p.completed },
  { name: 'on the log, end to end', spans: 'received by the gateway → outcome appended (what is left of the client\'s latency: the outcome\'s fsync, the gateway\'s results consumer, the HTTP response)', of: (p) => p.outcomeAppended - p.received },
];

export interface HopRow {
  name: string;
  spans: string;
  mean: number;
  p50: number;
  p99: number;
}

export class HopTimings {
  private readonly paths = new Map<string, Path>();

  /** One event of a request with its record's timestamp; events of other kinds are ignored. */
  add(event: SwitchyardEvent, logTime: number): void {
    const id = event.requestId;
    if (id === null) return;
    let p = this.paths.get(id);
    if (p === undefined) {
      p = { routings: 0, starts: 0, outcomes: 0 };
      this.paths.set(id, p);
    }
    switch (event.type) {
      case 'InferenceRequested':
        p.received = event.occurredAt;
        p.requestAppended = logTime;
        break;
      case 'RequestRouted':
        p.routings++;
        p.decided = event.occurredAt;
        p.decisionAppended = logTime;
        break;
      case 'InferenceStarted':
        p.starts++;
        p.started = event.occurredAt;
        break;
      case 'InferenceCompleted':
        p.outcomes++;
        p.completed = event.occurredAt;
        p.outcomeAppended = logTime;
        break;
      case 'InferenceFailed':
      case 'RequestRejected':
        p.outcomes++;
        break;
      default:
    }
  }

  /**
   * Requests seen, and those on the simple path with every time known (the ones `rows` describes).
   * `received`: only requests the gateway received within these bounds (inclusive, ms since the epoch).
   */
  counts(received?: { from: number; to: number }): { requests: number; simple: number } {
    return { requests: this.paths.size, simple: this.simple(received).length };
  }

  rows(received?: { from: number; to: number }): HopRow[] {
    const simple = this.simple(received);
    return HOPS.map(({ name, spans, of }) => {
      const xs = simple.map(of).sort((a, b) => a - b);
      return { name, spans, mean: xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) };
    });
  }

  private simple(received?: { from: number; to: number }): Complete[] {
    const out: Complete[] = [];
    for (const p of this.paths.values()) {
      if (p.routings !== 1 || p.starts !== 1 || p.outcomes !== 1) continue;
      if (p.received === undefined || p.decided === undefined || p.started === undefined || p.completed === undefined) continue;
      if (received !== undefined && (p.received < received.from || p.received > received.to)) continue;
      out.push(p as Complete);
    }
    return out;
  }
}
