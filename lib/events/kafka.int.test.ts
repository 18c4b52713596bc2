import { beforeAll } from 'vitest';
import { openKafkaLog } from '../log/kafka/index.js';
import { testEventConsumer } from '../../test/contract/event-consumer.contract.js';
import { kafkaBrokers, requireKafka } from '../../test/support/services.js';

beforeAll(requireKafka);
testEventConsumer('kafka', async () => ({ log: await openKafkaLog({ brokers: kafkaBrokers() }), cleanup: async () => {} }));
