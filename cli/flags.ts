import { configFromEnv, parseBytes, parseDurationMs, type SwitchyardConfig } from '../lib/config.js';

/** Global flags every command shares; flags win over the environment. */
export interface GlobalFlags {
  brokers?: string;
  home?: string;
  prefix?: string;
  /** Size budget per partition of the expiring topics (`SwitchyardConfig.retentionBytes`). */
  retentionBytes?: string;
  /** Time budget of the expiring topics (`SwitchyardConfig.retentionMs`). */
  retentionMs?: string;
  json?: boolean;
}

export function configFrom(flags: GlobalFlags): SwitchyardConfig {
  return configFromEnv(process.env, {
    ...(flags.brokers !== undefined ? { brokers: flags.brokers.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(flags.home !== undefined ? { home: flags.home } : {}),
    ...(flags.prefix !== undefined ? { topicPrefix: flags.prefix } : {}),
    ...(flags.retentionBytes !== undefined ? { retentionBytes: parseBytes(flags.retentionBytes, '--retention-bytes') } : {}),
    ...(flags.retentionMs !== undefined ? { retentionMs: parseDurationMs(flags.retentionMs, '--retention-ms') } : {}),
  });
}
