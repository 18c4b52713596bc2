import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CachedBlobStore, FsBlobStore, HttpBlobStore, type BlobStore } from '../../lib/blob/index.js';
import { openRuntime } from '../../lib/bootstrap.js';
import { createLogger } from '../../lib/logger.js';
import { renderTable } from '../../lib/table.js';
import { MODEL_KINDS, type ModelKind } from '../../services/worker/backends/format.js';
import { ModelCatalog } from '../../services/worker/catalog.js';
import { ControlReader } from '../../services/worker/control.js';
import { installShippedModels, pushModel, SHIPPED_MODELS_DIR } from '../../services/worker/publish.js';
import { configFrom, type GlobalFlags } from '../flags.js';

/**
 * The blob store a CLI process uses: `--blobs <dir>` (default `<home>/blobs`) or
 * `--blobs http(s)://…` for a blob endpoint (then blobs read are also kept under
 * `<home>/blob-cache`).
 */
export function blobStoreFrom(spec: string | undefined, home: string): BlobStore {
  if (spec !== undefined && /^https?:\/\//.test(spec)) return new CachedBlobStore(new FsBlobStore({ dir: join(home, 'blob-cache') }), new HttpBlobStore({ url: spec }));
  return new FsBlobStore({ dir: spec ?? join(home, 'blobs') });
}

export const blobsOption = () => new Option('--blobs <dir|url>', 'blob store: a directory (default <home>/blobs) or the URL of a blob endpoint').env('SWITCHYARD_BLOBS');

const metadataPair = (v: string, acc: Record<string, string> = {}) => {
  const i = v.indexOf('=');
  if (i < 1) throw new InvalidArgumentError('metadata must be key=value');
  return { ...acc, [v.slice(0, i)]: v.slice(i + 1) };
};

interface PushFlags {
  model: string;
  version: string;
  kind?: ModelKind;
  fallback?: string;
  metadata?: Record<string, string>;
  blobs?: string;
  registeredBy?: string;
}

/** `switchyard models push|list|install`: register model versions and see them. */
export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('model versions: weights in the blob store, registrations in control');

  models
    .command('push <file>')
    .description('store a model file in the blob store, print its digest, and register it as a version (ModelVersionRegistered on control)')
    .requiredOption('--model <name>', 'model name')
    .requiredOption('--version <v>', 'version label, unique per model')
    .addOption(new Option('--kind <kind>', 'what the file must be').choices([...MODEL_KINDS]))
    .option('--fallback <model>', 'model to serve this model\'s requests when it has no healthy capacity')
    .option('--metadata <key=value>', 'free-form metadata (repeatable)', metadataPair)
    .option('--registered-by <who>', 'who registers it (default: $USER)')
    .addOption(blobsOption())
    .action(async (file: string, opts: PushFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const config = configFrom(flags);
      const bytes = await readFile(file);
      const rt = await openRuntime(config, { logger: createLogger('models', config.logLevel) });
      try {
        const pushed = await pushModel(rt.ctx, blobStoreFrom(opts.blobs, config.home), {
          bytes,
          model: opts.model,
          version: opts.version,
          ...(opts.kind !== undefined ? { kind: opts.kind } : {}),
          fallbackModel: opts.fallback ?? null,
          metadata: opts.metadata ?? {},
          registeredBy: opts.registeredBy ?? process.env.USER ?? null,
        });
        if (flags.json) console.log(JSON.stringify({ model: opts.model, version: opts.version, ...pushed }, null, 2));
        else {
          console.log(`sha256:${pushed.digest}`);
          process.stderr.write(
            pushed.registered
              ? `registered ${opts.model} ${opts.version} (${pushed.kind}, ${pushed.sizeBytes} bytes) at control offset ${pushed.offset}\n`
              : `${opts.model} ${opts.version} was already registered with these bytes; nothing appended\n`,
          );
        }
      } finally {
        await rt.close();
      }
    });

  models
    .command('list')
    .description('every registered model version (a fold of control)')
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const config = configFrom(flags);
      const rt = await openRuntime(config, { logger: createLogger('models', config.logLevel) });
      try {
        const catalog = new ModelCatalog();
        await new ControlReader(rt.ctx, (event, record) => catalog.apply(event, record.offset)).catchUp();
        const versions = catalog.list();
        if (flags.json) {
          console.log(JSON.stringify(versions.map((v) => ({ ...v, status: catalog.status(v) })), null, 2));
          return;
        }
        if (versions.length === 0) {
          console.log('no model versions registered (switchyard models push <file> --model <name> --version <v>, or switchyard models install)');
          return;
        }
        console.log(
          renderTable(
            ['model', 'version', 'kind', 'digest', 'size', 'fallback', 'status', 'registered'],
            versions.map((v) => [v.model, v.version, v.kind, `sha256:${v.digest.slice(0, 12)}`, v.sizeBytes, v.fallbackModel, catalog.status(v), new Date(v.registeredAt).toISOString()]),
          ),
        );
      } finally {
        await rt.close();
      }
    });

  models
    .command('install')
    .description(`register the models Switchyard ships (${SHIPPED_MODELS_DIR}, made by scripts/gen-models.ts) that are not registered yet`)
    .option('--dir <dir>', 'directory with manifest.json and the model files', SHIPPED_MODELS_DIR)
    .addOption(blobsOption())
    .action(async (opts: { dir: string; blobs?: string }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const config = configFrom(flags);
      const rt = await openRuntime(config, { logger: createLogger('models', config.logLevel) });
      try {
        const done = await installShippedModels(rt.ctx, blobStoreFrom(opts.blobs, config.home), { dir: opts.dir, producer: 'switchyard-cli' });
        if (flags.json) console.log(JSON.stringify(done, null, 2));
        else console.log(renderTable(['model', 'version', 'kind', 'digest', 'registered now'], done.map((m) => [m.model, m.version, m.kind, `sha256:${m.digest.slice(0, 12)}`, m.registered])));
      } finally {
        await rt.close();
      }
    });
}
