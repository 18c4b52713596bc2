import { beforeAll } from 'vitest';
import { testEventLog } from '../../../test/contract/event-log.contract.js';
import { kafkaBrokers, requireKafka } from '../../../test/support/services.js';
import { openPlatformaticLog } from './adapter.js';

// The shared EventLog contract, on a real broker, through @platformatic/kafka.
beforeAll(requireKafka);
testEventLog('kafka (platformatic)', async () => {
  const open = () => openPlatformaticLog({ brokers: kafkaBrokers() });
  const log = await open();
  return { log, reopen: open, cleanup: async () => {} };
});
