import { beforeAll } from 'vitest';
import { testEventLog } from '../../../test/contract/event-log.contract.js';
import { kafkaBrokers, requireKafka } from '../../../test/support/services.js';
import { openKafkaLog } from './adapter.js';

// The shared EventLog contract, on a real broker.
beforeAll(requireKafka);
testEventLog('kafka', async () => {
  const open = () => openKafkaLog({ brokers: kafkaBrokers() });
  const log = await open();
  return { log, reopen: open, cleanup: async () => {} };
});
