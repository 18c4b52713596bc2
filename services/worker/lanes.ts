import type { SwitchyardEvent } from '../../schemas/generated/events.js';
import { hash32 } from '../router/hash.js';
import { evolve, initialRouterState, type RouterState } from '../router/state.js';

/**
 * Who holds which lane, as a fold of `control`. This reuses the router's own fold
 * (`services/router/state.ts`: first valid claim of a free lane in control order wins; a lane is
 * freed by WorkerEvicted, including the DRAINED one a worker writes to release its lane; a live
 * worker that claims another lane moves), so a worker and every router necessarily agree on the
 * winner of a claim: they run the same code over the same single-partition topic.
 *
 * Only control events are folded here (everything else is ignored), which keeps the router state
 * small: no heartbeats, decisions or results.
 */
export class LaneTable {
  private readonly state: RouterState;

  constructor(readonly lanes: number) {
    this.state = initialRouterState({ lanes });
  }

  /** Fold one control event (others are ignored). */
  apply(event: SwitchyardEvent): void {
    switch (event.type) {
      case 'WorkerJoined':
      case 'WorkerDraining':
      case 'WorkerEvicted':
      case 'ControllerElected': // the epoch in force: a deposed controller's evictions are ignored here too
        evolve(this.state, event);
        break;
      default:
        break;
    }
  }

  /** The live holder of a lane. */
  holder(lane: number): string | undefined {
    return this.state.laneHolders.get(lane);
  }

  /** The lane a worker holds, when it holds one (not evicted). */
  laneOf(workerId: string): number | undefined {
    const rec = this.state.workers.get(workerId);
    if (rec?.claim == null || rec.evicted) return undefined;
    return this.state.laneHolders.get(rec.claim.lane) === workerId ? rec.claim.lane : undefined;
  }

  /** The worker was evicted from its last claim (and has not claimed since). */
  isEvicted(workerId: string): boolean {
    return this.state.workers.get(workerId)?.evicted === true;
  }

  isDraining(workerId: string): boolean {
    return this.state.workers.get(workerId)?.draining === true;
  }

  freeLanes(): number[] {
    const out: number[] = [];
    for (let lane = 0; lane < this.lanes; lane++) if (!this.state.laneHolders.has(lane)) out.push(lane);
    return out;
  }

  /** Lane claims the fold refused (lane already held, or invalid). */
  get claimsRefused(): number {
    return this.state.claimsRefused;
  }
}

/**
 * The lane a worker should try to claim: the one it already holds (a restart under the same
 * id resumes its lane), else `preferred` when free, else the first free lane at or after a hash
 * of its id (so workers racing to join mostly try different lanes). Undefined when none is free.
 */
export function chooseLane(table: LaneTable, workerId: string, preferred?: number, exclude: ReadonlySet<number> = new Set()): number | undefined {
  const held = table.laneOf(workerId);
  if (held !== undefined) return held;
  if (preferred !== undefined && table.holder(preferred) === undefined && !exclude.has(preferred) && preferred >= 0 && preferred < table.lanes) return preferred;
  const start = hash32(workerId) % table.lanes;
  for (let i = 0; i < table.lanes; i++) {
    const lane = (start + i) % table.lanes;
    if (table.holder(lane) === undefined && !exclude.has(lane)) return lane;
  }
  return undefined;
}
