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
  if (e?.name === 'KafkaJSSASLAuthenticationError') {
    // Wrong credentials or mechanism: retrying with the same ones cannot help.
    return new SwitchyardError('SY_ERR_LOG_AUTH', `${what}: SASL authentication failed: ${e.message ?? ''}`, { cause: err, detail: { kafkaError: e.name, ...detail } });
  }
  return new SwitchyardError('SY_ERR_LOG_BROKER', `${what}: ${e?.message ?? String(err)}`, {
    retriable: e?.retriable ?? true,
    cause: err,
    detail: { kafkaError: e?.name, kafkaType: e?.type, ...detail },
  });
}

/**
 * Retries an admin or fetch call while it fails with an error kafkajs marks retriable
 * (leadership moving, metadata not yet propagated after topic creation), with capped
 * exponential backoff. Anything else, or running out of time, throws the mapped error.
 */
export async function withKafkaRetry<T>(what: string, fn: () => Promise<T>, { timeoutMs = 15_000 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = fromKafkaError(err, what);
      const transient = e.retriable && e.code === 'SY_ERR_LOG_BROKER';
      if (!transient || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** attempt, 500)));
    }
  }
}
