import { beforeAll } from 'vitest';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import { testRouterService } from '../../test/contract/router-service.contract.js';
import { kafkaBrokers, requireKafka } from '../../test/support/services.js';

beforeAll(requireKafka);
testRouterService('kafka', async () => ({ log: await openKafkaLog({ brokers: kafkaBrokers() }), cleanup: async () => {} }));
