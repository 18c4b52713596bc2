import { configFromEnv, type SwitchyardConfig } from '../lib/config.js';

/** Global flags every command shares; flags win over the environment. */
export interface GlobalFlags {
  brokers?: string;
  home?: string;
  prefix?: string;
  json?: boolean;
}

export function configFrom(flags: GlobalFlags): SwitchyardConfig {
  return configFromEnv(process.env, {
    ...(flags.brokers !== undefined ? { brokers: flags.brokers.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(flags.home !== undefined ? { home: flags.home } : {}),
    ...(flags.prefix !== undefined ? { topicPrefix: flags.prefix } : {}),
  });
}
