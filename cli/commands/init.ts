import type { Command } from 'commander';
import { migrate } from '../../lib/analytics/migrations.js';
import { openAnalytics } from '../../lib/analytics/open.js';
import { openRuntime } from '../../lib/bootstrap.js';
import { createLogger } from '../../lib/logger.js';
import { renderTable } from '../../lib/table.js';
import { installShippedModels } from '../../services/worker/publish.js';
import { configFrom, type GlobalFlags } from '../flags.js';
import { blobStoreFrom } from './models.js';

/**
 * `switchyard init`: everything a deployment needs before its services start — the topics
 * (partition counts, compaction), the event schemas in the registry, the shipped models in
 * the blob store and `control`, and the analytics migrations. Idempotent.
 */
export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('provision topics and schemas, install the shipped models, apply analytics migrations (idempotent)')
    .option('--no-models', 'do not install the shipped models')
    .option('--no-analytics', 'do not apply the analytics migrations')
    .action(async (opts: { models: boolean; analytics: boolean }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const config = configFrom(flags);
      const rt = await openRuntime(config, { logger: createLogger('init', config.logLevel) });
      const done: [string, string][] = [['topics', Object.values(rt.ctx.topics).map((t) => t.name).join(', ')], ['schemas', rt.registry.constructor.name]];
      try {
        if (opts.models) {
          const pushed = await installShippedModels(rt.ctx, blobStoreFrom(undefined, config.home));
          done.push(['models', pushed.map((m) => `${m.model}@${m.version}`).join(', ')]);
        }
      } finally {
        await rt.close();
      }
      if (opts.analytics) {
        const store = await openAnalytics({ clickhouseUrl: config.clickhouseUrl, clickhouseUser: config.clickhouseUser, clickhousePassword: config.clickhousePassword, home: config.home });
        try {
          const result = await migrate(store);
          done.push(['analytics', `${config.clickhouseUrl ?? 'chDB'}: ${JSON.stringify(result)}`]);
        } finally {
          await store.close();
        }
      }
      if (flags.json) console.log(JSON.stringify(Object.fromEntries(done), null, 2));
      else console.log(renderTable(['step', 'result'], done));
    });
}
