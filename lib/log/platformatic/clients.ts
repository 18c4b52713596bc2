import type { BaseOptions, SASLOptions } from '@platformatic/kafka';
import { backoffDelayMs, backoffSchedule, type BackoffSchedule } from '../../backoff.js';
import type { KafkaSasl, KafkaTls } from '../../config.js';
import { SwitchyardError } from '../../errors.js';
import { brokerErrors } from './errors.js';

/** What every @platformatic/kafka client of one log shares: where the brokers are, security, retries. */
export interface ClientSettings {
  brokers: string[];
  clientId: string;
  tls: KafkaTls | undefined;
  sasl: KafkaSasl | undefined;
  /** Longest backoff between the library's retries, ms. */
  retryMaxMs: number;
}

const SASL_MECHANISMS: Record<KafkaSasl['mechanism'], SASLOptions['mechanism']> = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
};

/** The project's backoff schedule (lib/backoff.ts) capped at `retryMaxMs`. */
export const retrySchedule = (retryMaxMs: number): BackoffSchedule => backoffSchedule({ baseMs: Math.min(50, retryMaxMs), factor: 2, capMs: retryMaxMs });

/**
 * The library's `tls` and `sasl` options from the deployment's (the same settings the kafkajs
 * adapter maps to kafkajs' `ssl` and `sasl`). The password goes to the library only, never to a
 * log line. Node's `tls.connect` checks the broker's certificate against the host it connects to.
 */
export function securityOptions(tls: KafkaTls | undefined, sasl: KafkaSasl | undefined): Pick<BaseOptions, 'tls' | 'sasl'> {
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) throw new SwitchyardError('SY_ERR_CONFIG', 'kafka log (platformatic): tls.cert and tls.key go together');
  if (sasl !== undefined && (!sasl.username || typeof sasl.password !== 'string')) {
    throw new SwitchyardError('SY_ERR_CONFIG', `kafka log (platformatic): sasl ${sasl.mechanism} needs a username and a password`);
  }
  const mechanism = sasl === undefined ? undefined : SASL_MECHANISMS[sasl.mechanism];
  if (sasl !== undefined && mechanism === undefined) throw new SwitchyardError('SY_ERR_CONFIG', `kafka log (platformatic): unknown SASL mechanism ${String(sasl.mechanism)}`);
  return {
    ...(tls === undefined ? {} : { tls: { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca !== undefined ? { ca: [tls.ca] } : {}), ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}) } }),
    ...(sasl === undefined || mechanism === undefined ? {} : { sasl: { mechanism, username: sasl.username, password: sasl.password } }),
  };
}

/**
 * Options every client of the log is created with. The library retries an operation `retries`
 * times; the delay is the project's schedule, except after UNKNOWN_TOPIC_OR_PARTITION: a topic
 * that does not exist (the caller asked whether it does) or whose metadata has not reached the
 * broker yet (right after creating it) is asked for again after a few ms, not seconds.
 */
export function baseOptions(s: ClientSettings, retries = 5): BaseOptions {
  const schedule = retrySchedule(s.retryMaxMs);
  return {
    clientId: s.clientId,
    bootstrapBrokers: s.brokers,
    ...securityOptions(s.tls, s.sasl),
    retries,
    retryDelay: (_client, _operation, attempt, _retries, error) =>
      brokerErrors(error).has('UNKNOWN_TOPIC_OR_PARTITION') ? 5 * attempt : backoffDelayMs(schedule, attempt, Math.random()),
    // Metadata (leaders, partition counts) is refreshed at least this often, and at once after
    // a NOT_LEADER or FENCED_LEADER_EPOCH answer.
    metadataMaxAge: 5_000,
    autocreateTopics: false,
  };
}
