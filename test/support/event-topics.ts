import type { AppendRecord, TopicSpec } from '../../lib/log/port.js';
import type { TopicName } from '../../lib/log/topics.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';

/** Where DESIGN.md puts each event: topic, key, and (for decisions) the lane's partition. */
export function recordFor(layout: Record<TopicName, TopicSpec>, event: SwitchyardEventInit, value: Buffer): AppendRecord {
  const byRequest = event.requestId ?? event.eventId;
  switch (event.type) {
    case 'InferenceRequested':
      return { topic: layout.requests.name, key: event.sessionId ?? byRequest, value };
    case 'RequestRouted':
      return { topic: layout.decisions.name, key: byRequest, partition: event.lane % layout.decisions.partitions, value };
    case 'RequestRejected':
      return { topic: layout.decisions.name, key: byRequest, value };
    case 'InferenceStarted':
    case 'InferenceCompleted':
    case 'InferenceFailed':
      return { topic: layout.results.name, key: byRequest, value };
    case 'WorkerHeartbeat':
      return { topic: layout.heartbeats.name, key: event.workerId, value };
    case 'SessionState':
      return { topic: layout.sessions.name, key: event.sessionId, value };
    case 'DeadLettered':
      return { topic: layout.deadletter.name, key: event.originalKey ?? null, value };
    default:
      return { topic: layout.control.name, partition: 0, value };
  }
}
