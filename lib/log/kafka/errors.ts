import { SwitchyardError } from '../../errors.js';

/**
 * Wraps a kafkajs error in a SwitchyardError, keeping kafkajs' own `retriable` verdict
 * (its retry module already knows which protocol errors are transient).
 */
export function fromKafkaError(err: unknown, what: string, detail: Record<string, unknown> = {}): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const e = err as { name?: string; type?: string; message?: string; retriable?: boolean } | null;
  if (e?.type === 'UNKNOWN_TOPIC_OR_PARTITION') {
    return new SwitchyardError('SY_ERR_LOG_UNKNOWN_TOPIC', `${what}: unknown topic or partition`, { cause: err, detail });
  }
  if (e?.type === 'OFFSET_OUT_OF_RANGE') {
    return new SwitchyardError('SY_ERR_LOG_OFFSET_OUT_OF_RANGE', `${what}: offset out of range`, { cause: err, detail });
  }
  return new SwitchyardError('SY_ERR_LOG_BROKER', `${what}: ${e?.message ?? String(err)}`, {
    retriable: e?.retriable ?? true,
    cause: err,
    detail: { kafkaError: e?.name, kafkaType: e?.type, ...detail },
  });
}
