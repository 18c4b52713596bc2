import { Command, Option } from 'commander';
import { SwitchyardError, errorMessage } from '../lib/errors.js';
import { registerAnalyticsCommands } from './commands/analytics.js';
import { registerLogCommands } from './commands/log.js';
import { registerRegistryCommand } from './commands/registry.js';
import { registerSinkCommand } from './commands/sink.js';
import { registerGatewayCommand } from './commands/gateway.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerRouterCommand } from './commands/router.js';
import { registerControllerCommand } from './commands/controller.js';
import { registerInitCommand } from './commands/init.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerModelsCommands } from './commands/models.js';

const program = new Command('switchyard')
  .description('Event-sourced control plane for distributed AI inference')
  .addOption(new Option('--brokers <list>', 'Kafka bootstrap brokers (host:port,…); default: the embedded log').env('SWITCHYARD_BROKERS'))
  .addOption(new Option('--home <dir>', 'local state directory (embedded log, analytics)').env('SWITCHYARD_HOME'))
  .addOption(new Option('--prefix <prefix>', 'topic name prefix').env('SWITCHYARD_TOPIC_PREFIX'))
  .option('--retention-bytes <size>', 'size budget per partition of the topics that expire records, e.g. 10GiB; -1 = none (env SWITCHYARD_RETENTION_BYTES)')
  .option('--retention-ms <duration>', "time budget of those topics, e.g. 2d or 36h; -1 = each topic's own (env SWITCHYARD_RETENTION_MS)")
  .option('--json', 'machine-readable output')
  .showHelpAfterError();

registerLogCommands(program);
registerRegistryCommand(program);
registerAnalyticsCommands(program);
registerSinkCommand(program);
registerGatewayCommand(program);
(await import('./commands/replay.js')).registerReplayCommands(program);
registerClusterCommands(program);
registerRouterCommand(program);
registerControllerCommand(program);
registerInitCommand(program);
registerWorkerCommand(program);
registerModelsCommands(program);
(await import('./commands/status.js')).registerStatusCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = err instanceof SwitchyardError ? ` [${err.code}]` : '';
  process.stderr.write(`switchyard: ${errorMessage(err)}${code}\n`);
  process.exitCode = 1;
}
