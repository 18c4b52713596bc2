import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import type { TopicPartitions } from '../port.js';

/**
 * kafkajs has no manual `assign()`. A worker consumes exactly its lane partition(s) by
 * joining a group of its own with this assigner: every member announces the partitions it
 * wants in its subscription userData, and the group leader hands each member exactly
 * those. With a group id unique to the worker there is one member, and offsets are still
 * committed under that group.
 */
export const STATIC_ASSIGNER_NAME = 'SwitchyardStatic';

export function staticAssigner(wanted: TopicPartitions[]): PartitionAssigner {
  const userData = Buffer.from(JSON.stringify(wanted));
  return () => ({
    name: STATIC_ASSIGNER_NAME,
    version: 1,
    protocol({ topics }) {
      return { name: STATIC_ASSIGNER_NAME, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData }) };
    },
    async assign({ members }) {
      return members.map((member) => {
        const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
        const asked = metadata ? (JSON.parse(metadata.userData.toString() || '[]') as TopicPartitions[]) : [];
        const assignment: Record<string, number[]> = {};
        for (const { topic, partitions } of asked) assignment[topic] = [...(assignment[topic] ?? []), ...partitions];
        return {
          memberId: member.memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }),
        };
      });
    },
  });
}
