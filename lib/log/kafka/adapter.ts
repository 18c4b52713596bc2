import { Kafka, logLevel as KafkaLogLevel, type KafkaConfig, type SASLOptions, PartitionAssigners, type Admin, type Consumer, type Producer, type LogEntry, type Message, type RetryOptions, type ConfigResourceTypes } from 'kafkajs';
import type { KafkaSasl, KafkaTls } from '../../config.js';
import { SwitchyardError, errorMessage } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import { partitionForKey } from '../partitioner.js';
import { resolveRetentionBudget, topicRetention, type RetentionBudget } from '../retention.js';
import type {
  AppendRecord,
  EventLog,
  LogRecord,
  ReadRange,
  RecordPosition,
  SubscribeOptions,
  Subscription,
  TopicPartitions,
  TopicSpec,
} from '../port.js';
import { staticAssigner } from './assigner.js';
import { followPartitions } from './follower.js';
import { createGroupJanitor, type GroupJanitor } from './membership.js';
import { fromKafkaError, withKafkaRetry } from './errors.js';
import { toHeaders } from './headers.js';
import { createRangeReader, type RangeReader } from './reader.js';

/**
 * Options of the Kafka adapter. The retention budget (`retentionBytes`, `maxRetentionMs`) is set
 * as the `retention.bytes` and `retention.ms` configs of the topics this adapter creates; topics
 * that exist already are not altered.
 */
export interface KafkaLogOptions extends RetentionBudget {
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
   * Session timeout of group members in ms: how long the group coordinator waits for a silent
   * member (a killed process) before handing its partitions to the others. Must be within the
   * broker's `group.min.session.timeout.ms`..`group.max.session.timeout.ms`.
   * @default the broker's `group.min.session.timeout.ms`, read once at the first subscribe
   * (6000 on a stock Apache Kafka; 3000 on the broker `scripts/services.sh` runs); 6000 when
   * the broker does not say
   */
  sessionTimeoutMs?: number;
  /**
   * Heartbeat interval of group members in ms; at most a third of the session timeout. A
   * member learns of a rebalance (a dead member's partitions to take over) at its next
   * heartbeat. @default a tenth of the session timeout, within 100..1000
   */
  heartbeatIntervalMs?: number;
  /**
   * Longest backoff between kafkajs' retries (connecting, fetching, producing, committing)
   * and before a crashed consumer restarts, in ms. kafkajs' own cap is 30 s, and a consumer
   * restarted after a broker restart 7–11 s late; with this cap every client tries the broker
   * again at least this often, so it resumes within about this long once the broker is back.
   * @default 1_000
   */
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
  /**
   * Batches of different partitions a subscription handles at once (kafkajs'
   * partitionsConsumedConcurrently); a partition's own batches stay in order. The port promises
   * order within a partition only, as the embedded log (which delivers every partition at once)
   * does. @default 16
   */
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

/** `ConfigResourceTypes.BROKER`: kafkajs' CommonJS build does not expose the enum as an ESM named export. */
const BROKER_RESOURCE = 4 as ConfigResourceTypes;

const toBuffer = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v) : v);

/** `retention.ms` and `retention.bytes` of a topic to create (none for a compacted one or without `retentionMs`: the broker's defaults). */
function retentionConfigs(spec: TopicSpec, budget: Required<RetentionBudget>): { name: string; value: string }[] {
  if (spec.retentionMs === undefined || spec.compacted) return [];
  const { ms, bytes } = topicRetention(spec, budget);
  return [{ name: 'retention.ms', value: String(ms) }, ...(bytes >= 0 ? [{ name: 'retention.bytes', value: String(bytes) }] : [])];
}

/** kafkajs' `ssl` and `sasl` options (the password goes to kafkajs only, never to a log line). */
function kafkaSecurity(tls: KafkaTls | undefined, sasl: KafkaSasl | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) throw new SwitchyardError('SY_ERR_CONFIG', 'kafka log: tls.cert and tls.key go together');
  if (sasl !== undefined && (!sasl.username || typeof sasl.password !== 'string')) throw new SwitchyardError('SY_ERR_CONFIG', `kafka log: sasl ${sasl.mechanism} needs a username and a password`);
  const ssl = tls === undefined ? undefined : { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca !== undefined ? { ca: [tls.ca] } : {}), ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}) };
  return { ...(ssl ? { ssl } : {}), ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions } : {}) };
}

/**
 * The `EventLog` over Apache Kafka via kafkajs: idempotent producer with acks=all,
 * topic provisioning, consumer groups, static (lane) assignment and offset-range reads.
 */
export async function openKafkaLog(options: KafkaLogOptions): Promise<EventLog> {
  const log = new KafkaLog(options);
  await log.connect();
  return log;
}

class KafkaLog implements EventLog {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private producer: Producer;
  /** The producer's sequence numbers may disagree with the broker's: replace it before the next send. */
  private producerStale = false;
  private readonly reader: RangeReader;
  private readonly opts: Required<Omit<KafkaLogOptions, 'sessionTimeoutMs' | 'heartbeatIntervalMs' | 'tls' | 'sasl' | keyof RetentionBudget>> & Pick<KafkaLogOptions, 'sessionTimeoutMs' | 'heartbeatIntervalMs'>;
  private readonly retention: Required<RetentionBudget>;
  /** The group timings every subscription uses, resolved at the first subscribe. */
  private groupTimings: Promise<{ sessionTimeoutMs: number; heartbeatIntervalMs: number }> | undefined;
  private readonly retry: RetryOptions;
  /** Open `follow` subscriptions (no consumer group), closed with the log. */
  private readonly followers = new Set<Subscription>();
  private readonly janitor: GroupJanitor;
  private readonly partitionCounts = new Map<string, number>();
  private readonly roundRobin = new Map<string, number>();
  private readonly consumers = new Set<Consumer>();
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
  }: KafkaLogOptions) {
    if (!Array.isArray(brokers) || brokers.length === 0) {
      throw new SwitchyardError('SY_ERR_CONFIG', 'kafka log: at least one broker (host:port) is required');
    }
    if (!Number.isInteger(maxProduceBatch) || maxProduceBatch < 1) {
      throw new SwitchyardError('SY_ERR_CONFIG', `kafka log: maxProduceBatch must be a positive integer, got ${maxProduceBatch}`);
    }
    for (const [name, v] of Object.entries({ sessionTimeoutMs, heartbeatIntervalMs, retryMaxMs, appendRetryMs, maxBatchBytes })) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new SwitchyardError('SY_ERR_CONFIG', `kafka log: ${name} must be a positive integer, got ${v}`);
    }
    if (sessionTimeoutMs !== undefined && heartbeatIntervalMs !== undefined) checkGroupTimings(sessionTimeoutMs, heartbeatIntervalMs);
    if (!Number.isInteger(partitionConcurrency) || partitionConcurrency < 1) {
      throw new SwitchyardError('SY_ERR_CONFIG', `kafka log: partitionConcurrency must be a positive integer, got ${partitionConcurrency}`);
    }
    this.retention = resolveRetentionBudget({ retentionBytes, maxRetentionMs }, 'kafka log');
    this.opts = { brokers, clientId, replicationFactor, maxProduceBatch, maxBatchBytes, sessionTimeoutMs, heartbeatIntervalMs, retryMaxMs, appendRetryMs, maxWaitMs, joinTimeoutMs, partitionConcurrency, now, logger };
    // kafkajs' defaults back off up to 30 s (factor 2 from 300 ms); capped, a client retries a
    // restarted broker at least every retryMaxMs. Five retries (~2.5 s at the default cap) per
    // connect or fetch attempt, after which a consumer crashes and restarts (below).
    this.retry = { initialRetryTime: Math.min(100, retryMaxMs), maxRetryTime: retryMaxMs, retries: 5 };
    this.kafka = new Kafka({
      clientId,
      brokers,
      ...kafkaSecurity(tls, sasl),
      retry: this.retry,
      logLevel: KafkaLogLevel.WARN,
      logCreator: () => (entry: LogEntry) => {
        const { message, ...rest } = entry.log;
        // Bounded on purpose (see the producer below); kafkajs warns about any bound.
        if (message.startsWith('Limiting retries for the idempotent producer')) return;
        const fields = { namespace: entry.namespace, ...rest };
        if (entry.level <= KafkaLogLevel.ERROR) logger.error(fields, message);
        else if (entry.level === KafkaLogLevel.WARN) logger.warn(fields, message);
        else logger.debug(fields, message);
      },
    });
    this.admin = this.kafka.admin();
    // One produce request in flight at a time: kafkajs' idempotent producer assigns
    // sequence numbers per send, and concurrent sends can reach the broker out of order
    // (OUT_OF_ORDER_SEQUENCE_NUMBER). Appends queue up and are coalesced instead.
    // kafkajs' retries are bounded (as its default, 5, was), capped at retryMaxMs; sendWithRetry
    // sends the same records again for up to appendRetryMs while the failure is transient.
    this.producer = this.createProducer();
    this.reader = createRangeReader(this.kafka, maxWaitMs);
    this.janitor = createGroupJanitor(this.kafka);
  }

  async connect(): Promise<void> {
    try {
      await this.admin.connect();
      await this.producer.connect();
    } catch (err) {
      throw fromKafkaError(err, `connecting to ${this.opts.brokers.join(',')}`);
    }
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.assertOpen();
    const existing = new Set(await this.admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.name));
    if (missing.length === 0) return;
    try {
      await this.admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((s) => ({
          topic: s.name,
          numPartitions: s.partitions,
          replicationFactor: this.opts.replicationFactor,
          configEntries: [{ name: 'cleanup.policy', value: s.compacted ? 'compact' : 'delete' }, ...retentionConfigs(s, this.retention)],
        })),
      });
    } catch (err) {
      // Another process may have created them between listTopics and createTopics.
      const errors = (err as { errors?: { type?: string }[] }).errors;
      if (!errors?.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw fromKafkaError(err, 'creating topics');
    }
    await this.waitForLeaders(missing);
  }

  /**
   * kafkajs' own waitForLeaders gives up on the UNKNOWN_TOPIC_OR_PARTITION a broker answers
   * while a new topic's metadata propagates; this polls until every partition has a leader.
   */
  private async waitForLeaders(specs: TopicSpec[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const { topics } = await this.admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
        const ready = specs.every((s) => {
          const partitions = topics.find((t) => t.name === s.name)?.partitions ?? [];
          return partitions.length === s.partitions && partitions.every((p) => p.leader >= 0);
        });
        if (ready) return;
      } catch (err) {
        if (fromKafkaError(err, 'metadata').code !== 'SY_ERR_LOG_UNKNOWN_TOPIC') throw fromKafkaError(err, 'waiting for topic leaders');
      }
      if (Date.now() > deadline) {
        throw new SwitchyardError('SY_ERR_LOG_BROKER', `topics ${specs.map((s) => s.name).join(', ')} have no leaders after ${timeoutMs} ms`, { retriable: true });
      }
      await new Promise((r) => setTimeout(r, Math.min(10 * 2 ** attempt, 250)));
    }
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    this.assertOpen();
    const cached = this.partitionCounts.get(topic);
    if (cached !== undefined) return cached;
    try {
      const { topics } = await this.admin.fetchTopicMetadata({ topics: [topic] });
      const n = topics[0]?.partitions.length;
      if (n !== undefined && n > 0) this.partitionCounts.set(topic, n);
      return n;
    } catch (err) {
      const e = fromKafkaError(err, `metadata of ${topic}`);
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
    // kafkajs puts a request's records for one partition into one record batch, and the broker
    // refuses a batch larger than message.max.bytes (1 MiB by default) whole: records that fit
    // one by one would fail together. Requests are cut so that no partition's batch passes
    // maxBatchBytes (a record larger than that goes alone, for the broker to judge).
    const requests: { entries: { pending: number; index: number; message: Message; topic: string }[] }[] = [];
    let current: (typeof requests)[number] = { entries: [] };
    let bytes = new Map<string, number>();
    placed.forEach(({ pending, partitions }, p) => {
      pending.records.forEach((r, index) => {
        const message: Message = {
          partition: partitions[index]!,
          key: r.key === undefined || r.key === null ? null : toBuffer(r.key),
          value: r.value,
          headers: r.headers,
          timestamp: String(r.timestamp ?? this.opts.now()),
        };
        const k = `${r.topic}\u0000${message.partition}`;
        const size = recordBytes(message);
        const sum = bytes.get(k);
        if (sum !== undefined && sum + size > this.opts.maxBatchBytes) {
          requests.push(current);
          current = { entries: [] };
          bytes = new Map();
        }
        bytes.set(k, (bytes.get(k) ?? 0) + size);
        current.entries.push({ pending: p, index, message, topic: r.topic });
      });
    });
    requests.push(current);

    const positions = placed.map(({ pending }) => new Array<RecordPosition>(pending.records.length));
    const failed = new Map<number, unknown>();
    for (const { entries } of requests) {
      const live = entries.filter((e) => !failed.has(e.pending));
      if (live.length === 0) continue;
      const byTopic = new Map<string, Message[]>();
      for (const e of live) {
        const messages = byTopic.get(e.topic) ?? [];
        byTopic.set(e.topic, messages);
        messages.push(e.message);
      }
      try {
        const metadata = await this.sendWithRetry([...byTopic].map(([topic, messages]) => ({ topic, messages })));
        // kafkajs keeps per-partition order, so each record's offset is its partition's base
        // offset plus its rank among this request's records for that partition.
        const next = new Map<string, number>();
        for (const m of metadata) next.set(`${m.topicName}\u0000${m.partition}`, Number(m.baseOffset));
        for (const e of live) {
          const k = `${e.topic}\u0000${e.message.partition}`;
          const offset = next.get(k)!;
          next.set(k, offset + 1);
          positions[e.pending]![e.index] = { topic: e.topic, partition: e.message.partition!, offset };
        }
      } catch (err) {
        // An append cut across requests whose later part fails is rejected although its
        // earlier part was written: at-least-once, as for any failed append.
        const e = fromKafkaError(err, 'append');
        for (const x of live) failed.set(x.pending, e);
      }
    }
    placed.forEach(({ pending }, p) => (failed.has(p) ? pending.reject(failed.get(p)) : pending.resolve(positions[p]!)));
  }

  private createProducer(): Producer {
    return this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: this.retry });
  }

  /**
   * One produce request, sent again — the same records: where an earlier attempt did land, the
   * idempotent producer's sequence numbers make the copy a duplicate the broker drops — while
   * the failure is transient (the broker unreachable or restarting, leadership moving), for up
   * to appendRetryMs. kafkajs' own retries give up as soon as one reconnect runs out of retries
   * (~2.5 s at the default cap), which a broker restart outlasts.
   *
   * When a request finally fails, kafkajs has rolled back the sequence numbers of every partition
   * in it, although some may have been written (a partial failure): the next records would reuse
   * those numbers and the broker would drop them as duplicates or refuse them
   * (OUT_OF_ORDER_SEQUENCE_NUMBER, for every later send). So the producer is replaced — a new
   * producer id, fresh sequences — before the next send, as it is when the broker refuses its
   * sequence numbers or its id outright.
   */
  private async sendWithRetry(topicMessages: { topic: string; messages: Message[] }[]) {
    const giveUpAt = Date.now() + this.opts.appendRetryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await (await this.readyProducer()).sendBatch({ acks: -1, topicMessages });
      } catch (err) {
        const sequence = isSequenceError(err);
        if (sequence) this.producerStale = true;
        if (this.closed || !(sequence || isTransient(err)) || Date.now() >= giveUpAt) {
          this.producerStale = true;
          throw err;
        }
        this.opts.logger.warn({ err: errorMessage(err), attempt, newProducer: sequence }, 'append: transient failure; sending again');
        await new Promise((r) => setTimeout(r, Math.min(this.opts.retryMaxMs, 100 * 2 ** attempt)));
      }
    }
  }

  /** The producer, replaced first when it is stale (a new one, connected; the old one disconnected). */
  private async readyProducer(): Promise<Producer> {
    if (this.producerStale) {
      const old = this.producer;
      this.producer = this.createProducer();
      this.producerStale = false;
      void old.disconnect().catch(() => {});
      try {
        await this.producer.connect();
      } catch (err) {
        this.producerStale = true;
        throw err;
      }
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

  private async topicOffsets(topic: string): Promise<{ partition: number; low: number; high: number }[]> {
    this.assertOpen();
    await this.requirePartitions(topic);
    const offsets = await withKafkaRetry(`offsets of ${topic}`, () => this.admin.fetchTopicOffsets(topic));
    return offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) })).sort((a, b) => a.partition - b.partition);
  }

  async startOffsets(topic: string): Promise<number[]> {
    return (await this.topicOffsets(topic)).map((o) => o.low);
  }

  async endOffsets(topic: string): Promise<number[]> {
    return (await this.topicOffsets(topic)).map((o) => o.high);
  }

  async read({ topic, partition, from, to, maxRecords = 10_000 }: ReadRange): Promise<LogRecord[]> {
    this.assertOpen();
    const n = await this.requirePartitions(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
      throw new SwitchyardError('SY_ERR_LOG_BAD_PARTITION', `partition ${partition} out of range for ${topic} (${n} partitions)`);
    }
    const end = to ?? (await this.endOffsets(topic))[partition]!;
    return this.reader.read({ topic, partition, from, to: end, maxRecords });
  }

  async committedOffsets(groupId: string, topic: string): Promise<number[]> {
    this.assertOpen();
    const n = await this.requirePartitions(topic);
    const res = await withKafkaRetry(`committed offsets of ${groupId}`, () => this.admin.fetchOffsets({ groupId, topics: [topic] }));
    const out = new Array<number>(n).fill(-1);
    for (const p of res[0]?.partitions ?? []) out[p.partition] = Number(p.offset);
    return out;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const { groupId, topics, fromBeginning = true, assignment = { kind: 'group' }, onBatch, onAssigned, maxBatchRecords = 500 } = options;
    for (const t of topics) await this.requirePartitions(t);
    if (assignment.kind === 'follow') {
      const sub = await followPartitions(this.kafka, {
        name: groupId,
        partitions: assignment.partitions,
        fromBeginning,
        maxBatchRecords,
        maxWaitMs: this.opts.maxWaitMs,
        retryMaxMs: this.opts.retryMaxMs,
        onBatch,
        onAssigned,
        offsets: (topic, which) => (which === 'start' ? this.startOffsets(topic) : this.endOffsets(topic)),
        logger: this.opts.logger,
      });
      this.followers.add(sub);
      return {
        assigned: () => sub.assigned(),
        close: async () => {
          this.followers.delete(sub);
          await sub.close();
        },
      };
    }
    const { sessionTimeoutMs, heartbeatIntervalMs } = await this.resolveGroupTimings();
    const consumer = this.kafka.consumer({
      groupId,
      partitionAssigners: assignment.kind === 'static' ? [staticAssigner(assignment.partitions)] : [PartitionAssigners.roundRobin],
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: heartbeatIntervalMs,
      maxWaitTimeInMs: this.opts.maxWaitMs,
      allowAutoTopicCreation: false,
      // kafkajs restarts a crashed consumer (retries of a fetch or join exhausted, e.g. while
      // the broker restarts) after the last retry's backoff, now at most retryMaxMs; any
      // retriable crash restarts.
      retry: { ...this.retry, restartOnFailure: async () => true },
    });
    this.consumers.add(consumer);
    let stopping = false;
    let memberId: string | undefined;
    let joins = 0;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const fields = { groupId, memberId, err: errorMessage(payload.error), restart: payload.restart };
      if (!payload.restart) {
        this.opts.logger.error(fields, 'kafka consumer crashed on an error kafkajs does not retry; the subscription has stopped');
        return;
      }
      this.opts.logger.warn(fields, 'kafka consumer crashed; kafkajs restarts it as a new member');
      const joinsAtCrash = joins;
      if (memberId !== undefined) void this.leaveForCrashed(groupId, memberId, () => stopping || joins > joinsAtCrash);
      memberId = undefined;
    });
    let assigned: TopicPartitions[] = [];
    let joined: () => void = () => {};
    const firstJoin = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      memberId = payload.memberId;
      joins++;
      this.opts.logger.debug({ groupId, memberId, durationMs: payload.duration }, 'kafka consumer joined its group');
      assigned = Object.entries(payload.memberAssignment)
        .map(([topic, partitions]) => ({ topic, partitions: [...partitions].sort((a, b) => a - b) }))
        .filter((tp) => tp.partitions.length > 0);
      onAssigned?.(assigned);
      joined();
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning });
      await consumer.run({
        partitionsConsumedConcurrently: this.opts.partitionConcurrency,
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary }) => {
          const records: LogRecord[] = [];
          for (const m of batch.messages) {
            if ((m as { isControlRecord?: boolean }).isControlRecord) continue;
            records.push({
              topic: batch.topic,
              partition: batch.partition,
              offset: Number(m.offset),
              key: m.key ?? null,
              value: m.value ?? null,
              headers: toHeaders(m.headers),
              timestamp: Number(m.timestamp),
            });
          }
          const highWatermark = Number(batch.highWatermark);
          for (let i = 0; i < records.length; i += maxBatchRecords) {
            const chunk = records.slice(i, i + maxBatchRecords);
            for (let attempt = 0; ; attempt++) {
              if (stopping || !isRunning() || isStale()) return;
              // kafkajs heartbeats only between batches (the Java client has a thread for it,
              // KIP-62); with a session of a few seconds a slower handler (the sink waiting on
              // ClickHouse, a worker on its backend) would lose its partitions mid-batch. A
              // rebalance a heartbeat reports is met by the runner's own heartbeat afterwards.
              const keepAlive = setInterval(() => void heartbeat().catch(() => {}), heartbeatIntervalMs);
              try {
                await onBatch({ topic: batch.topic, partition: batch.partition, records: chunk, highWatermark });
                break;
              } catch (err) {
                this.opts.logger.warn({ err: errorMessage(err), groupId, topic: batch.topic, partition: batch.partition, attempt }, 'batch handler failed; redelivering');
                await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 2_000)));
                await heartbeat();
              } finally {
                clearInterval(keepAlive);
              }
            }
            const last = chunk[chunk.length - 1]!.offset;
            resolveOffset(String(last));
            // Through the batch's own committer: consumer.commitOffsets() silently does nothing
            // once close() has begun stopping the consumer, and the batch in hand must commit.
            await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(last + 1) }] }] });
            if (!stopping) await heartbeat();
          }
        },
      });
      await Promise.race([
        firstJoin,
        new Promise((_, reject) =>
          setTimeout(
            () => reject(new SwitchyardError('SY_ERR_GROUP_REBALANCE', `group ${groupId}: no assignment within ${this.opts.joinTimeoutMs} ms`, { retriable: true })),
            this.opts.joinTimeoutMs,
          ).unref(),
        ),
      ]);
    } catch (err) {
      this.consumers.delete(consumer);
      await consumer.disconnect().catch(() => {});
      throw fromKafkaError(err, `subscribing ${groupId}`);
    }
    return {
      assigned: () => assigned,
      close: async () => {
        if (!this.consumers.has(consumer)) return;
        stopping = true;
        this.consumers.delete(consumer);
        await consumer.disconnect();
      },
    };
  }

  /**
   * Leaves `groupId` on behalf of `memberId`, the member a crashed consumer was, so that the
   * restarted consumer's join does not wait a session timeout for it (see `membership.ts`).
   * Tries every retryMaxMs while the broker is away, until the coordinator answers or `done()`
   * (the consumer joined again, which means the old member is gone, or it is closing).
   */
  private async leaveForCrashed(groupId: string, memberId: string, done: () => boolean): Promise<void> {
    const giveUpAt = Date.now() + 5 * 60_000;
    while (!this.closed && !done() && Date.now() < giveUpAt) {
      try {
        const outcome = await this.janitor.leave(groupId, memberId);
        this.opts.logger.debug({ groupId, memberId, outcome }, 'kafka consumer: left the group for the member a crash abandoned');
        return;
      } catch (err) {
        this.opts.logger.debug({ groupId, memberId, err: errorMessage(err) }, 'kafka consumer: cannot leave for the abandoned member yet');
        await new Promise((r) => setTimeout(r, this.opts.retryMaxMs).unref());
      }
    }
  }

  /**
   * The session timeout and heartbeat interval of every group member: as configured, else the
   * broker's minimum session timeout (`group.min.session.timeout.ms`, the fastest failover the
   * broker allows), asked once.
   */
  private resolveGroupTimings(): Promise<{ sessionTimeoutMs: number; heartbeatIntervalMs: number }> {
    this.groupTimings ??= (async () => {
      const sessionTimeoutMs = this.opts.sessionTimeoutMs ?? (await this.brokerMinSessionTimeout());
      const heartbeatIntervalMs = this.opts.heartbeatIntervalMs ?? Math.min(1_000, Math.max(100, Math.floor(sessionTimeoutMs / 10)));
      checkGroupTimings(sessionTimeoutMs, heartbeatIntervalMs);
      this.opts.logger.debug({ sessionTimeoutMs, heartbeatIntervalMs, retryMaxMs: this.opts.retryMaxMs }, 'kafka consumer group timings');
      return { sessionTimeoutMs, heartbeatIntervalMs };
    })();
    // A failure (a bad configured pair) is not cached: the next subscribe fails the same way.
    this.groupTimings.catch(() => (this.groupTimings = undefined));
    return this.groupTimings;
  }

  private async brokerMinSessionTimeout(): Promise<number> {
    const fallback = 6_000; // Apache Kafka's default group.min.session.timeout.ms
    try {
      const { brokers } = await this.admin.describeCluster();
      const node = brokers[0]?.nodeId;
      if (node === undefined) return fallback;
      const { resources } = await this.admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: BROKER_RESOURCE, name: String(node), configNames: ['group.min.session.timeout.ms'] }],
      });
      const value = Number(resources[0]?.configEntries.find((e) => e.configName === 'group.min.session.timeout.ms')?.configValue);
      return Number.isInteger(value) && value > 0 ? value : fallback;
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err), fallback }, 'kafka log: could not read the broker\'s group.min.session.timeout.ms; using the Apache Kafka default');
      return fallback;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.disconnect().catch(() => {})));
    this.consumers.clear();
    await Promise.all([...this.followers].map((f) => f.close().catch(() => {})));
    this.followers.clear();
    // Let queued appends finish before the producer goes.
    while (this.sending || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await Promise.all([this.producer.disconnect(), this.admin.disconnect(), this.reader.close(), this.janitor.close()]);
  }

  private assertOpen(): void {
    if (this.closed) throw new SwitchyardError('SY_ERR_LOG_CLOSED', 'the kafka log is closed');
  }
}

function checkGroupTimings(sessionTimeoutMs: number, heartbeatIntervalMs: number): void {
  if (heartbeatIntervalMs * 3 > sessionTimeoutMs) {
    throw new SwitchyardError('SY_ERR_CONFIG', `kafka log: heartbeatIntervalMs (${heartbeatIntervalMs}) must be at most a third of sessionTimeoutMs (${sessionTimeoutMs})`);
  }
}

/** A record's share of a record batch, roughly: its key, value and headers plus framing. */
function recordBytes(m: Message): number {
  let n = 32 + (m.key?.length ?? 0) + (m.value === null ? 0 : m.value.length);
  for (const [name, v] of Object.entries(m.headers ?? {})) n += 8 + Buffer.byteLength(name) + (typeof v === 'string' ? Buffer.byteLength(v) : Buffer.isBuffer(v) ? v.length : 0);
  return n;
}

const UNREACHABLE = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSNoBrokerAvailableError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound']);

/** The broker refused the producer's sequence numbers or its id: only a new producer id helps. */
const SEQUENCE_ERRORS = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING']);

function causes(err: unknown): { name?: string; type?: string; retriable?: boolean }[] {
  const out: { name?: string; type?: string; retriable?: boolean }[] = [];
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && typeof e === 'object' && depth < 8; e = e.cause as typeof e, depth++) out.push(e as (typeof out)[number]);
  return out;
}

const isSequenceError = (err: unknown): boolean => causes(err).some((e) => e.type !== undefined && SEQUENCE_ERRORS.has(e.type));

/**
 * Worth sending the same records again: the broker unreachable, or an error kafkajs itself
 * calls retriable (leadership moving, the broker still loading) somewhere in the cause chain —
 * kafkajs wraps the last one in a non-retriable "retries exceeded" error.
 */
const isTransient = (err: unknown): boolean => isBrokerUnreachable(err) || causes(err).some((e) => e.retriable === true);

/**
 * Whether a kafkajs error, or any error in its cause chain, says the broker could not be
 * reached. kafkajs wraps a reconnect whose retries ran out in a non-retriable error whose cause
 * is the connection error.
 */
function isBrokerUnreachable(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (typeof e.name === 'string' && UNREACHABLE.has(e.name)) return true;
  }
  return false;
}
