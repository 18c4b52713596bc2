import { Admin, ConfigResourceTypes, Consumer, FetchIsolationLevels, ListOffsetTimestamps, Producer, type MessageToProduce } from '@platformatic/kafka';
import type { KafkaSasl, KafkaTls } from '../../config.js';
import { SwitchyardError, errorMessage } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import { partitionForKey } from '../partitioner.js';
import { resolveRetentionBudget, topicRetention, type RetentionBudget } from '../retention.js';
import type { AppendRecord, EventLog, LogRecord, ReadRange, RecordPosition, SubscribeOptions, Subscription, TopicSpec } from '../port.js';
import { baseOptions, retrySchedule, type ClientSettings } from './clients.js';
import { brokerErrors, fromPlatformaticError, isTransient, withRetry } from './errors.js';
import { recordsOf } from './records.js';
import { PlatformaticSubscription } from './subscription.js';

/**
 * Options of the @platformatic/kafka adapter: the kafkajs adapter's (`KafkaLogOptions`), with the
 * same defaults and meaning, so that `SWITCHYARD_KAFKA_CLIENT` switches the client and nothing
 * else. The retention budget (`retentionBytes`, `maxRetentionMs`) is set as the `retention.bytes`
 * and `retention.ms` configs of the topics this adapter creates.
 */
export interface PlatformaticLogOptions extends RetentionBudget {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** @default 'switchyard' */
  clientId?: string;
  /** TLS to the brokers (a SASL_SSL or SSL listener). @default undefined: plaintext */
  tls?: KafkaTls | undefined;
  /** SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). @default undefined: none */
  sasl?: KafkaSasl | undefined;
  /** Replication factor of provisioned topics; -1 takes the broker default. @default -1 */
  replicationFactor?: number;
  /** Most records coalesced into one produce request. @default 10_000 */
  maxProduceBatch?: number;
  /**
   * Most bytes (keys, values, headers) of one partition's records in one produce request: the
   * broker refuses a record batch above its `message.max.bytes` (1,048,588 by default) whole.
   * @default 1_000_000
   */
  maxBatchBytes?: number;
  /**
   * Session timeout of group members in ms. @default the broker's `group.min.session.timeout.ms`,
   * read once at the first subscribe; 6000 when the broker does not say
   */
  sessionTimeoutMs?: number;
  /** Heartbeat interval of group members in ms; at most a third of the session timeout. @default a tenth of the session timeout, within 100..1000 */
  heartbeatIntervalMs?: number;
  /** Longest backoff between retries (the library's and the adapter's own), in ms. @default 1_000 */
  retryMaxMs?: number;
  /**
   * How long an append keeps sending while the failure is transient (the broker restarting or
   * unreachable, leadership moving) before it fails, in ms. Appends queue behind it meanwhile,
   * in order. @default 15_000
   */
  appendRetryMs?: number;
  /** Longest a fetch waits on the broker for new records, in ms. @default 250 */
  maxWaitMs?: number;
  /** How long `subscribe` waits for the first assignment, in ms. @default 30_000 */
  joinTimeoutMs?: number;
  /** Batches of different partitions a subscription hands to `onBatch` at once; a partition's own stay in order. @default 16 */
  partitionConcurrency?: number;
  /** Clock for record timestamps. @default Date.now */
  now?: () => number;
  /** @default a silent logger */
  logger?: Logger;
}

interface PendingAppend {
  records: AppendRecord[];
  resolve: (positions: RecordPosition[]) => void;
  reject: (err: unknown) => void;
}

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer> & { partition: number };

const toBuffer = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v) : v);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Bytes one range-read fetch may return. */
const READ_FETCH_BYTES = 8 * 1024 * 1024;

/** The broker refused the producer's sequence numbers or its id: only a new producer id helps. */
const SEQUENCE_ERRORS = ['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING'];
const isSequenceError = (err: unknown): boolean => {
  const ids = brokerErrors(err);
  return SEQUENCE_ERRORS.some((id) => ids.has(id));
};

/** `cleanup.policy`, and `retention.ms` and `retention.bytes` of a topic to create (none for a compacted one or without `retentionMs`: the broker's defaults). */
function topicConfigs(spec: TopicSpec, budget: Required<RetentionBudget>): { name: string; value: string }[] {
  const configs = [{ name: 'cleanup.policy', value: spec.compacted ? 'compact' : 'delete' }];
  if (spec.retentionMs === undefined || spec.compacted) return configs;
  const { ms, bytes } = topicRetention(spec, budget);
  return [...configs, { name: 'retention.ms', value: String(ms) }, ...(bytes >= 0 ? [{ name: 'retention.bytes', value: String(bytes) }] : [])];
}

/** A record's share of a record batch, roughly: its key, value and headers plus framing. */
function recordBytes(m: Message): number {
  let n = 32 + (m.key?.length ?? 0) + (m.value?.length ?? 0);
  for (const [k, v] of (m.headers as Map<Buffer, Buffer> | undefined) ?? []) n += 8 + k.length + v.length;
  return n;
}

/**
 * The `EventLog` over Apache Kafka via @platformatic/kafka (pure JavaScript): idempotent producer
 * with acks=all, topic provisioning, consumer groups (`subscription.ts`), static (lane) assignment
 * and offset-range reads — the kafkajs adapter's semantics, passing the same contract suite.
 * Everything goes through the library's public API (range reads use its `Consumer.fetch`).
 */
export async function openPlatformaticLog(options: PlatformaticLogOptions): Promise<EventLog> {
  const log = new PlatformaticLog(options);
  await log.connect();
  return log;
}

class PlatformaticLog implements EventLog {
  readonly kind = 'kafka' as const;
  private readonly client: ClientSettings;
  private readonly admin: Admin;
  /** Range reads and offset lookups: a consumer that never joins a group. */
  private readonly reader: Consumer;
  private producer: Producer;
  /** The producer's sequence numbers may disagree with the broker's: replace it before the next send. */
  private producerStale = false;
  private readonly opts: Required<Omit<PlatformaticLogOptions, 'sessionTimeoutMs' | 'heartbeatIntervalMs' | 'tls' | 'sasl' | keyof RetentionBudget>> &
    Pick<PlatformaticLogOptions, 'sessionTimeoutMs' | 'heartbeatIntervalMs'>;
  private readonly retention: Required<RetentionBudget>;
  private groupTimings: Promise<{ sessionTimeoutMs: number; heartbeatIntervalMs: number }> | undefined;
  private readonly partitionCounts = new Map<string, number>();
  private readonly roundRobin = new Map<string, number>();
  private readonly subscriptions = new Set<PlatformaticSubscription>();
  private queue: PendingAppend[] = [];
  private sending = false;
  private closed = false;

  constructor({
    brokers,
    clientId = 'switchyard',
    tls,
    sasl,
    replicationFactor = -1,
    maxProduceBatch = 10_000,
    maxBatchBytes = 1_000_000,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    retryMaxMs = 1_000,
    appendRetryMs = 15_000,
    maxWaitMs = 250,
    joinTimeoutMs = 30_000,
    partitionConcurrency = 16,
    now = Date.now,
    logger = silentLogger,
    retentionBytes,
    maxRetentionMs,
  }: PlatformaticLogOptions) {
    if (!Array.isArray(brokers) || brokers.length === 0) {
      throw new SwitchyardError('SY_ERR_CONFIG', 'kafka log (platformatic): at least one broker (host:port) is required');
    }
    for (const [name, v] of Object.entries({ maxProduceBatch, partitionConcurrency, sessionTimeoutMs, heartbeatIntervalMs, retryMaxMs, appendRetryMs, maxBatchBytes })) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new SwitchyardError('SY_ERR_CONFIG', `kafka log (platformatic): ${name} must be a positive integer, got ${v}`);
    }
    if (sessionTimeoutMs !== undefined && heartbeatIntervalMs !== undefined) checkGroupTimings(sessionTimeoutMs, heartbeatIntervalMs);
    this.retention = resolveRetentionBudget({ retentionBytes, maxRetentionMs }, 'kafka log (platformatic)');
    this.opts = { brokers, clientId, replicationFactor, maxProduceBatch, maxBatchBytes, sessionTimeoutMs, heartbeatIntervalMs, retryMaxMs, appendRetryMs, maxWaitMs, joinTimeoutMs, partitionConcurrency, now, logger };
    this.client = { brokers, clientId, tls, sasl, retryMaxMs };
    const base = baseOptions(this.client);
    this.admin = new Admin(base);
    this.reader = new Consumer({ ...base, groupId: `${clientId}-reader`, autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
    this.producer = this.createProducer();
  }

  /**
   * One produce request in flight (the library forces it for an idempotent producer: its
   * sequence numbers advance only when a request succeeds). Its own retries are bounded, as
   * the kafkajs adapter's are; `sendWithRetry` sends the same records again for up to
   * appendRetryMs while the failure is transient.
   */
  private createProducer(): Producer {
    return new Producer({ ...baseOptions(this.client), idempotent: true, acks: -1 });
  }

  async connect(): Promise<void> {
    try {
      // Connects (TLS, SASL) and asks for the brokers, and gets the producer its id: a refused
      // handshake fails here, at open.
      await this.admin.metadata({ topics: [] });
      await this.producer.initIdempotentProducer({});
    } catch (err) {
      await Promise.allSettled([this.admin.close(), this.producer.close(), this.reader.close()]);
      throw fromPlatformaticError(err, `connecting to ${this.opts.brokers.join(',')}`);
    }
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.assertOpen();
    const existing = new Set(await withRetry('listing topics', () => this.admin.listTopics(), this.schedule));
    const missing = specs.filter((s) => !existing.has(s.name));
    if (missing.length === 0) return;
    await Promise.all(
      missing.map(async (s) => {
        try {
          await this.admin.createTopics({ topics: [s.name], partitions: s.partitions, replicas: this.opts.replicationFactor, configs: topicConfigs(s, this.retention) });
        } catch (err) {
          // Another process may have created it between listTopics and createTopics.
          if (!brokerErrors(err).has('TOPIC_ALREADY_EXISTS')) throw fromPlatformaticError(err, `creating topic ${s.name}`);
        }
      }),
    );
    await this.waitForLeaders(missing);
  }

  /** Polls until every partition of the new topics has a leader. */
  private async waitForLeaders(specs: TopicSpec[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const { topics } = await this.admin.metadata({ topics: specs.map((s) => s.name), forceUpdate: true });
        const ready = specs.every((s) => {
          const t = topics.get(s.name);
          return t !== undefined && t.partitionsCount === s.partitions && t.partitions.every((p) => p.leader >= 0);
        });
        if (ready) return;
      } catch (err) {
        const e = fromPlatformaticError(err, 'waiting for topic leaders');
        if (e.code !== 'SY_ERR_LOG_UNKNOWN_TOPIC' && !e.retriable) throw e;
      }
      if (Date.now() > deadline) {
        throw new SwitchyardError('SY_ERR_LOG_BROKER', `topics ${specs.map((s) => s.name).join(', ')} have no leaders after ${timeoutMs} ms`, { retriable: true });
      }
      await sleep(Math.min(10 * 2 ** attempt, 250));
    }
  }

  private get schedule() {
    return retrySchedule(this.opts.retryMaxMs);
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    this.assertOpen();
    const cached = this.partitionCounts.get(topic);
    if (cached !== undefined) return cached;
    try {
      const { topics } = await this.admin.metadata({ topics: [topic] });
      const n = topics.get(topic)?.partitionsCount;
      if (n !== undefined && n > 0) this.partitionCounts.set(topic, n);
      return n;
    } catch (err) {
      const e = fromPlatformaticError(err, `metadata of ${topic}`);
      if (e.code === 'SY_ERR_LOG_UNKNOWN_TOPIC') return undefined;
      throw e;
    }
  }

  private async requirePartitions(topic: string): Promise<number> {
    const n = await this.partitionCount(topic);
    if (n === undefined) throw new SwitchyardError('SY_ERR_LOG_UNKNOWN_TOPIC', `unknown topic ${topic}`, { detail: { topic } });
    return n;
  }

  async append(records: AppendRecord[]): Promise<RecordPosition[]> {
    this.assertOpen();
    if (records.length === 0) return [];
    return new Promise<RecordPosition[]>((resolve, reject) => {
      this.queue.push({ records, resolve, reject });
      if (!this.sending) void this.drain();
    });
  }

  /** Sends queued appends, coalesced, one produce request at a time, until the queue is empty. */
  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const taken: PendingAppend[] = [];
        let count = 0;
        while (this.queue.length > 0 && (taken.length === 0 || count + this.queue[0]!.records.length <= this.opts.maxProduceBatch)) {
          const next = this.queue.shift()!;
          taken.push(next);
          count += next.records.length;
        }
        await this.sendCoalesced(taken);
      }
    } finally {
      this.sending = false;
    }
  }

  private async sendCoalesced(taken: PendingAppend[]): Promise<void> {
    // Resolve partitions first so that bad input fails only its own append.
    const placed: { pending: PendingAppend; partitions: number[] }[] = [];
    for (const pending of taken) {
      try {
        const partitions: number[] = [];
        for (const r of pending.records) partitions.push(await this.placeRecord(r));
        placed.push({ pending, partitions });
      } catch (err) {
        pending.reject(err);
      }
    }
    if (placed.length === 0) return;
    // One record batch per partition per request, which the broker refuses whole above its
    // message.max.bytes: requests are cut so that no partition's batch passes maxBatchBytes (a
    // record larger than that goes alone, for the broker to judge).
    const requests: { pending: number; index: number; message: Message }[][] = [];
    let current: (typeof requests)[number] = [];
    let bytes = new Map<string, number>();
    const now = this.opts.now;
    placed.forEach(({ pending, partitions }, p) => {
      pending.records.forEach((r, index) => {
        const message: Message = {
          topic: r.topic,
          partition: partitions[index]!,
          key: r.key === undefined || r.key === null ? undefined : toBuffer(r.key),
          // A null value is a tombstone; the library writes a missing value as null.
          value: r.value ?? undefined,
          headers: new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [Buffer.from(k), toBuffer(v)])),
          timestamp: BigInt(r.timestamp ?? now()),
        };
        const k = `${r.topic}\u0000${message.partition}`;
        const size = recordBytes(message);
        const sum = bytes.get(k);
        if (sum !== undefined && sum + size > this.opts.maxBatchBytes) {
          requests.push(current);
          current = [];
          bytes = new Map();
        }
        bytes.set(k, (bytes.get(k) ?? 0) + size);
        current.push({ pending: p, index, message });
      });
    });
    requests.push(current);

    const positions = placed.map(({ pending }) => new Array<RecordPosition>(pending.records.length));
    const failed = new Map<number, unknown>();
    for (const entries of requests) {
      const live = entries.filter((e) => !failed.has(e.pending));
      if (live.length === 0) continue;
      try {
        const result = await this.sendWithRetry(live.map((e) => e.message));
        // The library writes a partition's records of one request as one record batch, in
        // order, so each record's offset is its partition's base offset plus its rank.
        const next = new Map<string, number>();
        for (const o of result.offsets ?? []) next.set(`${o.topic}\u0000${o.partition}`, Number(o.offset));
        for (const e of live) {
          const k = `${e.message.topic}\u0000${e.message.partition}`;
          const offset = next.get(k);
          if (offset === undefined) throw new SwitchyardError('SY_ERR_LOG_BROKER', `append: no offset for ${e.message.topic}/${e.message.partition} in the produce response`);
          next.set(k, offset + 1);
          positions[e.pending]![e.index] = { topic: e.message.topic, partition: e.message.partition, offset };
        }
      } catch (err) {
        // An append cut across requests whose later part fails is rejected although its
        // earlier part was written: at-least-once, as for any failed append.
        const e = fromPlatformaticError(err, 'append');
        for (const x of live) failed.set(x.pending, e);
      }
    }
    placed.forEach(({ pending }, p) => (failed.has(p) ? pending.reject(failed.get(p)) : pending.resolve(positions[p]!)));
  }

  /**
   * One produce request, sent again — the same records, with the same sequence numbers, so that
   * where an earlier attempt did land the broker drops the copy — while the failure is transient,
   * for up to appendRetryMs. When it finally fails, or the broker refuses the producer's sequence
   * numbers or id, the producer is replaced (a new producer id, fresh sequences) before the next
   * send: the records of a failed request may have been written, and reusing their sequence
   * numbers for other records would have the broker drop those as duplicates.
   */
  private async sendWithRetry(messages: Message[]) {
    const giveUpAt = Date.now() + this.opts.appendRetryMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await (await this.readyProducer()).send({ messages });
      } catch (err) {
        const sequence = isSequenceError(err);
        if (this.closed || !(sequence || isTransient(err)) || Date.now() >= giveUpAt) {
          this.producerStale = true;
          throw err;
        }
        if (sequence) this.producerStale = true;
        this.opts.logger.warn({ err: errorMessage(err), attempt, newProducer: sequence }, 'append: transient failure; sending again');
        await sleep(Math.min(this.opts.retryMaxMs, 100 * 2 ** (attempt - 1)));
      }
    }
  }

  private async readyProducer(): Promise<Producer> {
    if (this.producerStale) {
      const old = this.producer;
      this.producer = this.createProducer();
      this.producerStale = false;
      void old.close().catch(() => {});
      this.opts.logger.warn({}, 'append: replaced the idempotent producer (new producer id) after a failed send');
    }
    return this.producer;
  }

  private async placeRecord(r: AppendRecord): Promise<number> {
    const n = await this.requirePartitions(r.topic);
    if (r.partition !== undefined) {
      if (!Number.isInteger(r.partition) || r.partition < 0 || r.partition >= n) {
        throw new SwitchyardError('SY_ERR_LOG_BAD_PARTITION', `partition ${r.partition} out of range for ${r.topic} (${n} partitions)`, {
          detail: { topic: r.topic, partition: r.partition, partitions: n },
        });
      }
      return r.partition;
    }
    if (r.key !== undefined && r.key !== null) return partitionForKey(toBuffer(r.key), n);
    const rr = this.roundRobin.get(r.topic) ?? 0;
    this.roundRobin.set(r.topic, rr + 1);
    return rr % n;
  }

  private async listOffsets(topic: string, which: 'earliest' | 'latest'): Promise<number[]> {
    const timestamp = which === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST;
    const offsets = await withRetry(`${which} offsets of ${topic}`, () => this.reader.listOffsets({ topics: [topic], timestamp }), this.schedule);
    return (offsets.get(topic) ?? []).map(Number);
  }

  async startOffsets(topic: string): Promise<number[]> {
    this.assertOpen();
    await this.requirePartitions(topic);
    return this.listOffsets(topic, 'earliest');
  }

  async endOffsets(topic: string): Promise<number[]> {
    this.assertOpen();
    await this.requirePartitions(topic);
    return this.listOffsets(topic, 'latest');
  }

  /**
   * Offset-range reads for replay and bootstrap: Fetch requests straight to the partition leader
   * through the library's public `Consumer.fetch`, with no group.
   */
  async read({ topic, partition, from, to, maxRecords = 10_000 }: ReadRange): Promise<LogRecord[]> {
    this.assertOpen();
    const n = await this.requirePartitions(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
      throw new SwitchyardError('SY_ERR_LOG_BAD_PARTITION', `partition ${partition} out of range for ${topic} (${n} partitions)`);
    }
    const end = to ?? (await this.endOffsets(topic))[partition]!;
    const out: LogRecord[] = [];
    let offset = from;
    while (offset < end && out.length < maxRecords) {
      const fetched = await withRetry(`reading ${topic}/${partition} from ${offset}`, () => this.fetchOnce(topic, partition, offset), this.schedule).catch((err: unknown) => {
        throw fromPlatformaticError(err, `reading ${topic}/${partition} from ${offset}`, { topic, partition, offset });
      });
      if (fetched === undefined) break;
      const { records, next } = recordsOf(topic, partition, fetched, offset, end);
      for (const r of records) {
        if (out.length >= maxRecords) break;
        out.push(r);
      }
      if (next <= offset) break;
      offset = next;
    }
    return out;
  }

  private async fetchOnce(topic: string, partition: number, offset: number) {
    const metadata = await this.reader.metadata({ topics: [topic] });
    const t = metadata.topics.get(topic)!;
    const leader = t.partitions[partition]?.leader;
    if (leader === undefined || leader < 0) {
      this.reader.clearMetadata();
      throw new SwitchyardError('SY_ERR_LOG_BROKER', `no leader for ${topic}/${partition}`, { retriable: true });
    }
    try {
      const res = await this.reader.fetch({
        node: leader,
        maxWaitTime: this.opts.maxWaitMs,
        minBytes: 1,
        maxBytes: READ_FETCH_BYTES,
        topics: [{ topicId: t.id, partitions: [{ partition, fetchOffset: BigInt(offset), partitionMaxBytes: READ_FETCH_BYTES, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
      });
      return res.responses[0]?.partitions.find((p) => p.partitionIndex === partition);
    } catch (err) {
      // Leadership may have moved: the next attempt asks for fresh metadata.
      this.reader.clearMetadata();
      throw err;
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<number[]> {
    this.assertOpen();
    const n = await this.requirePartitions(topic);
    const partitionIndexes = Array.from({ length: n }, (_, i) => i);
    const res = await withRetry(`committed offsets of ${groupId}`, () => this.admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: [{ name: topic, partitionIndexes }] }] }), this.schedule);
    const out = new Array<number>(n).fill(-1);
    for (const t of res[0]?.topics ?? []) {
      if (t.name !== topic) continue;
      for (const p of t.partitions) if (p.partitionIndex < n) out[p.partitionIndex] = Number(p.committedOffset);
    }
    return out;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    for (const t of options.topics) await this.requirePartitions(t);
    const { sessionTimeoutMs, heartbeatIntervalMs } = await this.resolveGroupTimings();
    const sub = new PlatformaticSubscription(
      {
        client: this.client,
        logger: this.opts.logger,
        sessionTimeoutMs,
        heartbeatIntervalMs,
        maxWaitMs: this.opts.maxWaitMs,
        joinTimeoutMs: this.opts.joinTimeoutMs,
        partitionConcurrency: this.opts.partitionConcurrency,
        committedOffsets: (groupId, topic) => this.committedOffsets(groupId, topic),
        listOffsets: (topic, which) => this.listOffsets(topic, which),
      },
      options,
    );
    await sub.start();
    this.subscriptions.add(sub);
    return {
      assigned: () => sub.assigned(),
      close: async () => {
        this.subscriptions.delete(sub);
        await sub.close();
      },
    };
  }

  /**
   * The session timeout and heartbeat interval of every group member: as configured, else the
   * broker's minimum session timeout (`group.min.session.timeout.ms`), asked once.
   */
  private resolveGroupTimings(): Promise<{ sessionTimeoutMs: number; heartbeatIntervalMs: number }> {
    this.groupTimings ??= (async () => {
      const sessionTimeoutMs = this.opts.sessionTimeoutMs ?? (await this.brokerMinSessionTimeout());
      const heartbeatIntervalMs = this.opts.heartbeatIntervalMs ?? Math.min(1_000, Math.max(100, Math.floor(sessionTimeoutMs / 10)));
      checkGroupTimings(sessionTimeoutMs, heartbeatIntervalMs);
      this.opts.logger.debug({ sessionTimeoutMs, heartbeatIntervalMs, retryMaxMs: this.opts.retryMaxMs }, 'kafka consumer group timings (platformatic)');
      return { sessionTimeoutMs, heartbeatIntervalMs };
    })();
    this.groupTimings.catch(() => (this.groupTimings = undefined));
    return this.groupTimings;
  }

  private async brokerMinSessionTimeout(): Promise<number> {
    const fallback = 6_000; // Apache Kafka's default group.min.session.timeout.ms
    try {
      const { brokers } = await this.admin.metadata({ topics: [] });
      const node = [...brokers.keys()][0];
      if (node === undefined) return fallback;
      const described = await this.admin.describeConfigs({
        resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: String(node), configurationKeys: ['group.min.session.timeout.ms'] }],
      });
      const value = Number(described[0]?.configs.find((c) => c.name === 'group.min.session.timeout.ms')?.value);
      return Number.isInteger(value) && value > 0 ? value : fallback;
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err), fallback }, "kafka log (platformatic): could not read the broker's group.min.session.timeout.ms; using the Apache Kafka default");
      return fallback;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()));
    this.subscriptions.clear();
    // Let queued appends finish before the producer goes.
    while (this.sending || this.queue.length > 0) await sleep(5);
    await Promise.allSettled([this.producer.close(), this.admin.close(), this.reader.close()]);
  }

  private assertOpen(): void {
    if (this.closed) throw new SwitchyardError('SY_ERR_LOG_CLOSED', 'the kafka log is closed');
  }
}

function checkGroupTimings(sessionTimeoutMs: number, heartbeatIntervalMs: number): void {
  if (heartbeatIntervalMs * 3 > sessionTimeoutMs) {
    throw new SwitchyardError('SY_ERR_CONFIG', `kafka log (platformatic): heartbeatIntervalMs (${heartbeatIntervalMs}) must be at most a third of sessionTimeoutMs (${sessionTimeoutMs})`);
  }
}
