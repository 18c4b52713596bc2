import type { Kafka } from 'kafkajs';
import { SwitchyardError } from '../../errors.js';

/** The parts of kafkajs' internal Cluster and Broker that leaving a group on a member's behalf needs. */
interface InternalBroker {
  leaveGroup(request: { groupId: string; memberId: string }): Promise<unknown>;
}
interface InternalCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(args: { groupId: string }): Promise<InternalBroker>;
}

/** Removes members a crashed kafkajs consumer left behind in its group. */
export interface GroupJanitor {
  /**
   * Asks the group's coordinator to remove `memberId` from `groupId`. Resolves `'left'`, or
   * `'gone'` when the coordinator no longer knows the member; rejects while the broker is
   * unreachable or the coordinator is loading (retriable).
   */
  leave(groupId: string, memberId: string): Promise<'left' | 'gone'>;
  close(): Promise<void>;
}

/**
 * Why: when the broker restarts, a kafkajs consumer crashes (its retries run out while nothing
 * answers) and restarts as a *new* member; it never left under its old member id, because
 * LeaveGroup could not reach the broker. The coordinator reloads the group with that old member
 * in it, and the new member's join waits until the old one's session expires — a whole session
 * timeout after the broker is back. Leaving on the old member's behalf once the broker answers
 * lets the join complete at once.
 *
 * kafkajs' public API cannot send LeaveGroup for another member id, so this goes through
 * kafkajs' own Cluster, as the range reader does (`reader.ts`: kafkajs is pinned to 2.2.4, and
 * `kafka.int.test.ts` restarts a real broker to exercise this path).
 */
export function createGroupJanitor(kafka: Kafka): GroupJanitor {
  let cluster: Promise<InternalCluster> | undefined;
  const getCluster = (): Promise<InternalCluster> => {
    cluster ??= (async () => {
      const create = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
      if (!create) throw new SwitchyardError('SY_ERR_LOG_BROKER', 'kafkajs internals changed: cannot create a cluster to leave a group');
      const factory = (kafka as unknown as Record<symbol, (o: object) => InternalCluster>)[create]!;
      const c = factory({ allowAutoTopicCreation: false, maxInFlightRequests: null });
      await c.connect();
      return c;
    })();
    // A failed connect is not cached: the next call tries again.
    cluster.catch(() => (cluster = undefined));
    return cluster;
  };
  return {
    async leave(groupId, memberId) {
      const coordinator = await (await getCluster()).findGroupCoordinator({ groupId });
      try {
        await coordinator.leaveGroup({ groupId, memberId });
        return 'left';
      } catch (err) {
        if ((err as { type?: string }).type === 'UNKNOWN_MEMBER_ID') return 'gone';
        throw err;
      }
    },
    async close() {
      const c = cluster;
      cluster = undefined;
      if (c) await (await c.catch(() => undefined))?.disconnect();
    },
  };
}
