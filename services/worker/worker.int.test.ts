import { beforeAll } from 'vitest';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import { kafkaBrokers, requireKafka } from '../../test/support/services.js';
import { testWorkerFlow } from './worker-flow.contract.js';

// The same end-to-end flow as the embedded contract (lane claim, heartbeats, execution,
// cache, refusals, batching, drain and hand-over, restart, claim races) on a real Kafka broker
// (`scripts/services.sh up`). Never skipped: an unreachable broker fails the suite.
beforeAll(requireKafka);
testWorkerFlow('kafka', async () => ({ log: await openKafkaLog({ brokers: kafkaBrokers() }), cleanup: async () => {} }), { timeoutMs: 60_000 });
