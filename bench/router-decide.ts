import { pathToFileURL } from 'node:url';
import type { ClockEntry, InferenceRequested, Priority, SwitchyardEvent } from '../schemas/generated/events.js';
import type { RouteCommand, RouterDecision } from '../services/router/decide.js';
import { decide } from '../services/router/decide.js';
import { T0, completed, digestOf, given, heartbeat, joined, registered, request, rollout, routed } from '../services/router/fixtures.js';
import { DEFAULT_ROUTER_POLICY } from '../services/router/policies/options.js';
import { evolve } from '../services/router/state.js';

/**
 * Router `decide` throughput (target ≥ 100k decisions/s with 64 workers, issue 3).
 *
 * The state: `workers` healthy workers in 4 zones, each with a heartbeat, some load and some
 * results in its ejection window; a model with a 90/10 canary. The requests: half with a session,
 * a quarter with a preferred zone, all priority classes; a clock of 83 topic-partitions and two
 * pending decisions per command, as a router would carry. Three figures:
 * - decisionsPerSec: `decide` alone on a fixed state (the pure policy cost);
 * - decideAndFoldPerSec: each decision folded back (`evolve` of the RequestRouted) together with
 *   the result of an earlier one, as a router reading its own decisions sees it (the fold and the
 *   ejection judgement, which is recomputed after every result, are in the loop);
 * - foldEventsPerSec: `evolve` alone over heartbeats, decisions and results.
 */
export interface RouterDecideBenchOptions {
  /** Workers in the state. @default 64 */
  workers?: number;
  /** Decisions timed (after a warm-up of a tenth as many). @default 200000 */
  decisions?: number;
}

export interface RouterDecideBenchResult {
  workers: number;
  decisions: number;
  decisionsPerSec: number;
  /** Mean time per decision, µs. */
  usPerDecision: number;
  decideAndFoldPerSec: number;
  foldEventsPerSec: number;
  /** Decisions by reason (routed) or rejection reason, in the decide-only run. */
  reasons: Record<string, number>;
}

const ZONES = ['zone-a', 'zone-b', 'zone-c', 'zone-d'];
const PRIORITIES: Priority[] = ['CRITICAL', 'HIGH', 'NORMAL', 'NORMAL', 'NORMAL', 'LOW', 'BACKGROUND'];

function setup(workers: number): SwitchyardEvent[] {
  const events: SwitchyardEvent[] = [
    registered('m', 'v1'),
    registered('m', 'v2'),
    rollout('m', [{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10 }], { stable: 'v1', canary: 'v2' }),
  ];
  for (let i = 0; i < workers; i++) {
    const id = `worker-${i.toString().padStart(3, '0')}`;
    const zone = ZONES[i % ZONES.length]!;
    events.push(joined(id, i, { zone, capacity: 64 }));
    events.push(heartbeat(id, i, { zone, capacity: 64, at: T0, inFlight: (i * 7) % 13, queueDepth: i % 3, loadedModels: [digestOf('m', 'v1'), digestOf('m', 'v2')] }));
    for (let r = 0; r < 12; r++) events.push(completed(`warm-${i}-${r}`, id, i, { at: T0 - 5000 + r * 300, latencyMs: 15 + ((i + r) % 20) }));
  }
  return events;
}

function requests(n: number): InferenceRequested[] {
  const out: InferenceRequested[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      request(`bench-req-${i}`, {
        sessionId: i % 2 === 0 ? `bench-session-${i % 5000}` : null,
        zone: i % 4 === 1 ? ZONES[i % ZONES.length]! : null,
        priority: PRIORITIES[i % PRIORITIES.length]!,
      }),
    );
  }
  return out;
}

function clock(): ClockEntry[] {
  const c: ClockEntry[] = [{ topic: 'switchyard.control', partition: 0, offset: 1000 }];
  for (let p = 0; p < 64; p++) c.push({ topic: 'switchyard.decisions', partition: p, offset: 10_000 + p });
  for (let p = 0; p < 12; p++) c.push({ topic: 'switchyard.results', partition: p, offset: 20_000 + p });
  for (let p = 0; p < 6; p++) c.push({ topic: 'switchyard.heartbeats', partition: p, offset: 30_000 + p });
  return c;
}

function commandFor(req: InferenceRequested, i: number, c: ClockEntry[]): RouteCommand {
  return {
    eventId: `bench-dec-${i}`,
    now: T0 + 500,
    routerId: 'router-bench',
    request: req,
    clock: c,
    pendingDecisions: [
      { workerId: 'worker-001', lane: 1, count: 1 },
      { workerId: 'worker-017', lane: 17, count: 2 },
    ],
    policy: DEFAULT_ROUTER_POLICY,
  };
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

export async function benchRouterDecide({ workers = 64, decisions = 200_000 }: RouterDecideBenchOptions = {}): Promise<RouterDecideBenchResult> {
  const pool = requests(Math.min(decisions, 50_000));
  const c = clock();

  // decide alone
  const state = given(setup(workers));
  const reasons: Record<string, number> = {};
  const note = (d: RouterDecision) => {
    reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
  };
  for (let i = 0; i < Math.ceil(decisions / 10); i++) decide(commandFor(pool[i % pool.length]!, i, c), state);
  let start = process.hrtime.bigint();
  for (let i = 0; i < decisions; i++) note(decide(commandFor(pool[i % pool.length]!, i, c), state));
  const decideSec = seconds(start);

  // decide, then fold the decision back and the result of the one 32 decisions earlier
  const live = given(setup(workers));
  const recent: { requestId: string; workerId: string; lane: number }[] = [];
  const foldRounds = Math.ceil(decisions / 4);
  start = process.hrtime.bigint();
  for (let i = 0; i < foldRounds; i++) {
    const d = decide(commandFor(pool[i % pool.length]!, i, c), live);
    if (d.type === 'RequestRouted') {
      const requestId = `${d.requestId!}#${i}`;
      evolve(live, routed(requestId, d.workerId, d.lane, { at: T0 + i }));
      recent.push({ requestId, workerId: d.workerId, lane: d.lane });
    }
    if (recent.length > 32) {
      const r = recent.shift()!;
      evolve(live, completed(r.requestId, r.workerId, r.lane, { at: T0 + i, latencyMs: 20 }));
    }
  }
  const foldSec = seconds(start);

  // evolve alone
  const events: SwitchyardEvent[] = [];
  for (let i = 0; i < 30_000; i++) {
    const w = i % workers;
    const id = `worker-${w.toString().padStart(3, '0')}`;
    events.push(heartbeat(id, w, { seq: 1000 + i, at: T0 + i, inFlight: i % 7 }));
    events.push(routed(`fold-${i}`, id, w, { at: T0 + i }));
    events.push(completed(`fold-${i}`, id, w, { at: T0 + i + 20, latencyMs: 20 }));
  }
  const folded = given(setup(workers));
  start = process.hrtime.bigint();
  for (const e of events) evolve(folded, e);
  const evolveSec = seconds(start);

  return {
    workers,
    decisions,
    decisionsPerSec: Math.round(decisions / decideSec),
    usPerDecision: Math.round((decideSec / decisions) * 1e6 * 100) / 100,
    decideAndFoldPerSec: Math.round(foldRounds / foldSec),
    foldEventsPerSec: Math.round(events.length / evolveSec),
    reasons,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchRouterDecide();
  console.log(`router decide: ${r.decisionsPerSec.toLocaleString('en-US')} decisions/s (${r.usPerDecision} µs each) with ${r.workers} workers — target ≥ 100,000`);
  console.log(`decide + fold back: ${r.decideAndFoldPerSec.toLocaleString('en-US')} decisions/s; evolve alone: ${r.foldEventsPerSec.toLocaleString('en-US')} events/s`);
  console.log(`reasons: ${JSON.stringify(r.reasons)}`);
}
