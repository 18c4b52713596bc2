/**
 * The chaos harness (STYLE.md habit 9): a Switchyard cluster on the real Kafka broker with
 * every service in its own OS process, load from HTTP clients and a Kafka producer client,
 * real signals, and a judge that reads the whole log afterwards and counts outcomes per
 * request id — not what the load generator happened to see.
 *
 *   const cluster = await ChaosCluster.start({ scenario: 'sink-restart', workers: 2, sink });
 *   const http = startHttpLoad({ url: cluster.gatewayUrl(), ratePerSec: 20, count: 300 });
 *   await cluster.signal('sink', 'SIGKILL'); …; await cluster.restart('sink');
 *   const report = await cluster.judge();
 *   process.stderr.write(formatFigures([figures]));
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { v7 as uuidv7 } from 'uuid';
import { deadLetterPolicy, type DeadLetterPolicy } from '../../lib/events/subscribe.js';
import { openKafkaLog } from '../../lib/log/kafka/index.js';
import type { EventLog, LogRecord } from '../../lib/log/port.js';
import { topicLayout, type TopicName } from '../../lib/log/topics.js';
import { LogBackedRegistry } from '../../lib/registry/log-backed.js';
import { renderTable } from '../../lib/table.js';
import { EventCodec } from '../../schemas/codec.js';
import type { DeadLettered, InferenceRequestedInit, SwitchyardEvent } from '../../schemas/generated/events.js';
import { idempotentRequestId } from '../../services/gateway/idempotency.js';
import { freePort, runSwitchyard, servicesScript, startSwitchyard, type ServiceProcess } from './processes.js';
import { kafkaBrokers, requireKafka, uniqueName, waitFor } from './services.js';

// ---------------------------------------------------------------------------------------
// The cluster

/** Where the sink writes: a ClickHouse server and a database of the scenario's own. */
export interface ChaosSink {
  clickhouseUrl: string;
  database: string;
}

export interface ChaosClusterOptions {
  /** Names the scenario: its topic prefix is `chaos-<scenario>-<unique>.`. */
  scenario: string;
  /** Partitions of `decisions`. @default 8 */
  lanes?: number;
  /** @default 1 */
  gateways?: number;
  /** @default 1 */
  routers?: number;
  /** @default 2 */
  workers?: number;
  /** `switchyard controller` processes. @default 0 */
  controllers?: number;
  /** Run `switchyard sink` into this ClickHouse database. @default no sink */
  sink?: ChaosSink;
  /** Arguments of worker `i` (0-based) after its id and zone. @default the synthetic backend at 10 ms a batch */
  workerArgs?: (i: number) => string[];
  /** @default [] */
  routerArgs?: string[];
  /** @default [] */
  gatewayArgs?: string[];
  /** @default [] */
  controllerArgs?: string[];
  /** Added to every process's environment. */
  env?: Record<string, string>;
  /** The model requests ask for (a shipped model `switchyard init` installs). @default 'sentiment-small' */
  model?: string;
  /** pino level of the services. @default 'warn' */
  logLevel?: string;
  /** How long the cluster may take to boot and serve a request on every worker, ms. @default 60_000 */
  bootTimeoutMs?: number;
}

/** A fault the scenario injected, and when. */
export interface Fault {
  at: number;
  target: string;
  action: NodeJS.Signals | 'restart' | 'broker-down' | 'broker-up' | 'broker-writable';
}

/** The timeline of a broker restart (`ChaosCluster.restartBroker`). */
export interface BrokerRestart {
  /** When `services.sh down kafka` began and ended (the broker refused connections from `downAt`). */
  stoppingAt: number;
  downAt: number;
  /** When a client that never retries could write again. */
  writableAt: number;
  /** When the group coordinator answered for the routers' group again (it loads every group's offsets first). */
  coordinatorAt: number;
  /** When `services.sh up kafka` said healthy. */
  healthyAt: number;
}

const DEFAULT_WORKER_ARGS = () => ['--backend', 'synthetic', '--synthetic-base-ms', '10'];

/** A Switchyard cluster of separate processes on the real broker, under a topic prefix of its own. */
export class ChaosCluster {
  readonly prefix: string;
  readonly home: string;
  readonly env: Record<string, string>;
  readonly layout: ReturnType<typeof topicLayout>;
  readonly model: string;
  readonly faults: Fault[] = [];
  /** The test process's own client of the log (judge, raw writes) and codec. */
  log!: EventLog;
  codec!: EventCodec;
  private readonly procs = new Map<string, ServiceProcess>();
  private readonly gatewayPorts: number[] = [];
  private closed = false;

  private constructor(readonly options: ChaosClusterOptions) {
    this.prefix = `${uniqueName(`chaos-${options.scenario}`)}.`;
    this.home = mkdtempSync(join(tmpdir(), `sy-chaos-${options.scenario}-`));
    this.model = options.model ?? 'sentiment-small';
    const lanes = options.lanes ?? 8;
    this.layout = topicLayout({ prefix: this.prefix, lanes });
    this.env = {
      SWITCHYARD_BROKERS: kafkaBrokers().join(','),
      SWITCHYARD_TOPIC_PREFIX: this.prefix,
      SWITCHYARD_HOME: this.home,
      SWITCHYARD_LANES: String(lanes),
      SWITCHYARD_LOG_LEVEL: options.logLevel ?? 'warn',
      ...options.env,
    };
  }

  /**
   * Provisions topics, schemas and models (`switchyard init`), starts the workers, routers,
   * controllers, gateways and the sink, and returns once every gateway is ready and every
   * worker has answered a request through the first gateway.
   */
  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    await requireKafka();
    const c = new ChaosCluster(options);
    try {
      await c.boot();
    } catch (err) {
      const why = `${err instanceof Error ? err.message : String(err)}\n${c.diagnostics()}`;
      await c.close();
      throw new Error(`chaos cluster ${options.scenario} did not start: ${why}`, { cause: err });
    }
    return c;
  }

  private async boot(): Promise<void> {
    const o = this.options;
    await runSwitchyard(['init', '--no-analytics'], this.env, this.home);
    this.log = await openKafkaLog({ brokers: kafkaBrokers() });
    this.codec = await EventCodec.create({ registry: await LogBackedRegistry.open({ log: this.log, topic: `${this.prefix}_schemas` }), register: false });
    const workerArgs = o.workerArgs ?? DEFAULT_WORKER_ARGS;
    for (let i = 0; i < (o.workers ?? 2); i++) this.start(`worker-${i + 1}`, ['worker', '--id', `worker-${i + 1}`, '--zone', `zone-${i % 2 === 0 ? 'a' : 'b'}`, ...workerArgs(i)]);
    for (let i = 0; i < (o.routers ?? 1); i++) this.start(`router-${i + 1}`, ['router', '--router-id', `router-${i + 1}`, ...(o.routerArgs ?? [])]);
    for (let i = 0; i < (o.controllers ?? 0); i++) this.start(`controller-${i + 1}`, ['controller', '--controller-id', `controller-${i + 1}`, ...(o.controllerArgs ?? [])]);
    for (let i = 0; i < (o.gateways ?? 1); i++) {
      const port = await freePort();
      this.gatewayPorts.push(port);
      this.start(`gateway-${i + 1}`, ['gateway', '--port', String(port), '--instance-id', `gateway-${i + 1}`, ...(o.gatewayArgs ?? [])]);
    }
    if (o.sink) {
      this.start('sink', ['sink', '--clickhouse', o.sink.clickhouseUrl, '--database', o.sink.database]);
    }
    const bootTimeoutMs = o.bootTimeoutMs ?? 60_000;
    for (let i = 0; i < this.gatewayPorts.length; i++) {
      await waitFor(async () => this.anyExited() || (await fetch(`${this.gatewayUrl(i)}/readyz`).catch(() => undefined))?.ok === true, {
        timeoutMs: bootTimeoutMs,
        intervalMs: 100,
        what: `gateway-${i + 1} to be ready`,
      });
    }
    // Every worker answers before the scenario starts, so the routers' views hold them all.
    const servedBy = new Set<string>();
    let n = 0;
    await waitFor(
      async () => {
        if (this.anyExited()) throw new Error('a process exited during boot');
        const res = await fetch(`${this.gatewayUrl()}/v1/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `warmup-${this.prefix}${n++}` },
          body: JSON.stringify({ model: this.model, input: { text: `warm up ${n}` }, deadlineMs: 5_000 }),
        }).catch(() => undefined);
        const body = (await res?.json().catch(() => undefined)) as { workerId?: string } | undefined;
        if (res?.status === 200 && body?.workerId) servedBy.add(body.workerId);
        return servedBy.size === (o.workers ?? 2);
      },
      { timeoutMs: bootTimeoutMs, intervalMs: 50, what: `every worker to serve a request (served by ${[...servedBy].join(', ') || 'none'})` },
    );
  }

  private start(name: string, args: string[]): ServiceProcess {
    const p = startSwitchyard(name, args, this.env, this.home);
    this.procs.set(name, p);
    return p;
  }

  private anyExited(): boolean {
    return [...this.procs.values()].some((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  }

  /** Base URL of gateway `i` (0-based). */
  gatewayUrl(i = 0): string {
    return `http://127.0.0.1:${this.gatewayPorts[i]}`;
  }

  /** The running process named `name` (`worker-1`, `router-1`, `gateway-1`, `controller-1`, `sink`). */
  process(name: string): ServiceProcess {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process ${name} in this cluster (${[...this.procs.keys()].join(', ')})`);
    return p;
  }

  names(): string[] {
    return [...this.procs.keys()];
  }

  /** Sends `signal` to a process and records the fault; SIGKILL and SIGTERM wait until it has exited. */
  async signal(name: string, signal: NodeJS.Signals): Promise<Fault> {
    const p = this.process(name);
    const fault: Fault = { at: Date.now(), target: name, action: signal };
    if (!p.signal(signal)) throw new Error(`${name} is not running; cannot send ${signal}`);
    this.faults.push(fault);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await p.exited;
    return fault;
  }

  /** Starts a process again with the same arguments (killing what is left of it first). */
  async restart(name: string): Promise<Fault> {
    const old = this.process(name);
    if (old.child.exitCode === null && old.child.signalCode === null) {
      old.signal('SIGCONT');
      await old.kill('SIGKILL');
    }
    const fault: Fault = { at: Date.now(), target: name, action: 'restart' };
    this.start(name, old.args);
    this.faults.push(fault);
    return fault;
  }

  /**
   * Stops the shared broker (SIGTERM, data kept), keeps it down for `downMs`, and starts it
   * again; resolves once it is healthy. Whatever fails, the broker is started again.
   */
  async restartBroker({ downMs = 0 }: { downMs?: number } = {}): Promise<BrokerRestart> {
    const stoppingAt = Date.now();
    this.faults.push({ at: stoppingAt, target: 'kafka', action: 'broker-down' });
    let healthyAt = 0;
    let writableAt = 0;
    // Writes go to a topic of the harness's own: no service reads it.
    const probeTopic = `${this.prefix}chaos-probe`;
    await this.log.ensureTopics([{ name: probeTopic, partitions: 1 }]);
    const probeClient = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 500 });
    const probe = probeClient.producer();
    try {
      await servicesScript('down', 'kafka');
      const downAt = Date.now();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      const up = servicesScript('up', 'kafka').then(() => (healthyAt = Date.now()));
      while (writableAt === 0) {
        try {
          await probe.connect();
          await probe.send({ topic: probeTopic, messages: [{ value: Buffer.from('probe') }] });
          writableAt = Date.now();
        } catch {
          await probe.disconnect().catch(() => {});
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      this.faults.push({ at: writableAt, target: 'kafka', action: 'broker-writable' });
      let coordinatorAt = 0;
      while (coordinatorAt === 0) {
        const admin = probeClient.admin();
        try {
          await admin.connect();
          await admin.describeCluster(); // loads the broker pool describeGroups needs
          await admin.describeGroups([`${this.prefix}router`]); // throws while the coordinator loads
          coordinatorAt = Date.now();
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        } finally {
          await admin.disconnect().catch(() => {});
        }
      }
      await up;
      this.faults.push({ at: healthyAt, target: 'kafka', action: 'broker-up' });
      return { stoppingAt, downAt, writableAt, coordinatorAt, healthyAt };
    } finally {
      await probe.disconnect().catch(() => {});
      if (healthyAt === 0) await servicesScript('up', 'kafka');
    }
  }

  /**
   * Judges the log until every accepted request has a terminal outcome (or `timeoutMs`
   * passes) and returns the last report: a scenario asserts on it, it does not wait on it.
   */
  async settle({ timeoutMs = 30_000, options = {} }: { timeoutMs?: number; options?: JudgeOptions } = {}): Promise<JudgeReport> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const report = await this.judge(options);
      if (report.withoutTerminal.length === 0 || Date.now() > deadline) return report;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Whether the sink's group has committed every record of every topic it reads. */
  async sinkCaughtUp(group = `${this.prefix}sink`): Promise<boolean> {
    for (const { name } of Object.values(this.layout)) {
      const [ends, committed] = await Promise.all([this.log.endOffsets(name), this.log.committedOffsets(group, name)]);
      if (ends.some((end, p) => end > 0 && committed[p] !== end)) return false;
    }
    return true;
  }

  /** Reads the whole log and judges it (`judgeLog`). */
  judge(options: JudgeOptions = {}): Promise<JudgeReport> {
    return judgeLog(this.log, this.codec, this.layout, options);
  }

  /** The last lines of every process's output. */
  diagnostics(lines = 15): string {
    return [...this.procs.values()].map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.tail(lines)}`).join('\n');
  }

  /** Stops every process (a stopped one is continued first), closes the log client and removes the home. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [...this.procs.values()].map(async (p) => {
        p.signal('SIGCONT');
        const killer = setTimeout(() => p.signal('SIGKILL'), 10_000);
        await p.kill('SIGTERM');
        clearTimeout(killer);
      }),
    );
    await this.log?.close().catch(() => {});
    await this.deleteTopics().catch((err: Error) => process.stderr.write(`[chaos] could not delete the topics of ${this.prefix}: ${err.message}\n`));
    // SWITCHYARD_CHAOS_LOGS=<dir> keeps every process's output (CI artifacts, debugging).
    const keep = process.env.SWITCHYARD_CHAOS_LOGS;
    if (keep) {
      const dir = join(keep, this.prefix.replace(/\.$/, ''));
      mkdirSync(dir, { recursive: true });
      for (const p of this.procs.values()) cpSync(p.logFile, join(dir, basename(p.logFile)));
    }
    rmSync(this.home, { recursive: true, force: true });
  }

  /**
   * Deletes the scenario's topics: the shared broker keeps every topic it ever had, and its
   * restart time grows with them (tens of seconds with a few thousand partitions).
   */
  private async deleteTopics(): Promise<void> {
    const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const mine = (await admin.listTopics()).filter((t) => t.startsWith(this.prefix));
      if (mine.length > 0) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
    } finally {
      await admin.disconnect();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Load

/** A load generator running: its outcomes so far, a way to stop early, and all outcomes once every request has ended. */
export interface LoadRun<T> {
  readonly outcomes: T[];
  stop(): void;
  done: Promise<T[]>;
}

export interface HttpLoadOptions {
  /** Gateway base URL. */
  url: string;
  ratePerSec: number;
  /** Most requests sent. */
  count: number;
  /** Stop sending after this long, ms. @default unbounded (count bounds it) */
  durationMs?: number;
  /** The request's deadline (`deadlineMs`). @default 10_000 */
  deadlineMs?: number;
  /** @default 'sentiment-small' */
  model?: string;
  /** Idempotency keys are `<keyPrefix><i>`, so every request id is known before the answer. @default a unique prefix */
  keyPrefix?: string;
  /** Extra body fields of request `i` (sessionId, priority…). */
  body?: (i: number) => Record<string, unknown>;
}

export interface HttpOutcome {
  index: number;
  key: string;
  /** The gateway's id for the key (UUIDv5 of the key), known before sending. */
  requestId: string;
  sentAt: number;
  deadlineAt: number;
  /** HTTP status; 0 when no response came (connection refused, reset, client timeout). */
  status: number;
  latencyMs: number;
  /** `error.code` of an error response, or the client error. */
  code?: string;
  workerId?: string;
}

/**
 * An open-loop HTTP client: request `i` is sent at `start + i / rate` whether or not earlier
 * ones were answered (a closed loop would slow down with the system and hide the outage).
 */
export function startHttpLoad(o: HttpLoadOptions): LoadRun<HttpOutcome> {
  const deadlineMs = o.deadlineMs ?? 10_000;
  const keyPrefix = o.keyPrefix ?? `${uniqueName('http')}-`;
  return openLoop<HttpOutcome>(o.ratePerSec, o.count, o.durationMs, async (index) => {
    const key = `${keyPrefix}${index}`;
    const sentAt = Date.now();
    const outcome: HttpOutcome = { index, key, requestId: idempotentRequestId(null, key), sentAt, deadlineAt: sentAt + deadlineMs, status: 0, latencyMs: 0 };
    try {
      const res = await fetch(`${o.url}/v1/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ model: o.model ?? 'sentiment-small', input: { text: `chaos request ${index}` }, deadlineMs, ...o.body?.(index) }),
        signal: AbortSignal.timeout(deadlineMs + 30_000),
      });
      outcome.status = res.status;
      const body = (await res.json().catch(() => ({}))) as { workerId?: string; error?: { code?: string } };
      if (body.workerId) outcome.workerId = body.workerId;
      if (body.error?.code) outcome.code = body.error.code;
    } catch (err) {
      outcome.code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    }
    outcome.latencyMs = Date.now() - sentAt;
    return outcome;
  });
}

export interface KafkaLoadOptions {
  /** The cluster's requests topic and codec. */
  topic: string;
  codec: EventCodec;
  ratePerSec: number;
  count: number;
  durationMs?: number;
  /** `deadlineAt` = send time + this. @default 10_000 */
  deadlineMs?: number;
  /** @default 'sentiment-small' */
  model?: string;
  /** Request ids are `<idPrefix><i>`. @default a unique prefix */
  idPrefix?: string;
}

export interface KafkaOutcome {
  index: number;
  requestId: string;
  sentAt: number;
  deadlineAt: number;
  /** The broker acknowledged the record. */
  acked: boolean;
  error?: string;
}

/**
 * A Kafka producer client writing `InferenceRequested` straight to `requests` in the Confluent
 * wire format (as DESIGN.md's Kafka clients do), open loop; its outcomes are read from the log.
 */
export function startKafkaLoad(o: KafkaLoadOptions): LoadRun<KafkaOutcome> {
  const deadlineMs = o.deadlineMs ?? 10_000;
  const idPrefix = o.idPrefix ?? `${uniqueName('kafka-client')}-`;
  const producer: Producer = new Kafka({ clientId: 'chaos-kafka-client', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING, retry: { retries: 10, maxRetryTime: 1_000 } }).producer();
  const connected = producer.connect();
  const run = openLoop<KafkaOutcome>(o.ratePerSec, o.count, o.durationMs, async (index) => {
    const requestId = `${idPrefix}${index}`;
    const sentAt = Date.now();
    const outcome: KafkaOutcome = { index, requestId, sentAt, deadlineAt: sentAt + deadlineMs, acked: false };
    const event: InferenceRequestedInit = {
      type: 'InferenceRequested',
      eventId: uuidv7(),
      occurredAt: sentAt,
      requestId,
      producer: 'chaos-kafka-client',
      model: o.model ?? 'sentiment-small',
      input: Buffer.from(JSON.stringify({ text: `kafka client request ${index}` })),
      contentType: 'application/json',
      deadlineAt: sentAt + deadlineMs,
      source: 'KAFKA_CLIENT',
    };
    try {
      await connected;
      await producer.send({ topic: o.topic, messages: [{ key: requestId, value: o.codec.encode(event) }] });
      outcome.acked = true;
    } catch (err) {
      outcome.error = (err as Error).message;
    }
    return outcome;
  });
  return { ...run, done: run.done.finally(() => producer.disconnect().catch(() => {})) };
}

function openLoop<T>(ratePerSec: number, count: number, durationMs: number | undefined, send: (i: number) => Promise<T>): LoadRun<T> {
  if (!(ratePerSec > 0) || !Number.isInteger(count) || count < 0) throw new Error(`bad load: ${ratePerSec}/s, ${count} requests`);
  const outcomes: T[] = [];
  const inFlight: Promise<void>[] = [];
  const start = Date.now();
  let stopped = false;
  const done = (async () => {
    for (let i = 0; i < count && !stopped; i++) {
      const at = start + (i * 1_000) / ratePerSec;
      if (durationMs !== undefined && at - start > durationMs) break;
      const wait = at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stopped) break;
      inFlight.push(send(i).then((o) => void outcomes.push(o)));
    }
    await Promise.all(inFlight);
    return outcomes;
  })();
  return { outcomes, stop: () => void (stopped = true), done };
}

// ---------------------------------------------------------------------------------------
// The judge

export interface JudgeOptions {
  /**
   * The terminal outcomes that are not client-visible because a later event marks them
   * superseded (issue 10 §5). @default the `supersededEventId` of every ResultSuperseded on `results`
   */
  superseded?: (results: { event: SwitchyardEvent; record: LogRecord }[]) => Set<string>;
  /** Which records are bad (not accepted): the consumers' own rules. @default deadLetterPolicy('other', layout) */
  policy?: DeadLetterPolicy;
}

export type TerminalType = 'InferenceCompleted' | 'InferenceFailed' | 'RequestRejected';

export interface TerminalOutcome {
  type: TerminalType;
  eventId: string;
  /** The rejection's reason or the failure's errorCode. */
  reason: string | null;
  /**
   * When it was on the log, at the earliest: the largest record timestamp at or before it in its
   * `results` partition. A record's own timestamp is when its producer created it, which can be
   * long before it became readable (a producer retrying through a broker outage); a partition's
   * records are appended in order, so it was appended no earlier than any record before it.
   */
  at: number;
  partition: number;
  offset: number;
  workerId: string | null;
  superseded: boolean;
}

export interface RequestVerdict {
  requestId: string;
  /** Record timestamp of its first InferenceRequested. */
  acceptedAt: number;
  /** InferenceRequested records (a producer retry or a repeated key adds copies). */
  requestRecords: number;
  deadlineAt: number | null;
  routed: { attempt: number; workerId: string; reason: string; at: number }[];
  /** Distinct terminal outcomes in results-partition order. */
  terminals: TerminalOutcome[];
  /** The first terminal outcome not superseded: what a client sees. */
  visible: TerminalOutcome | undefined;
}

export interface DeadLetterGroup {
  /** `topic/partition/offset` of the bad record. */
  position: string;
  /** DeadLettered records naming it, and their distinct event ids. */
  records: number;
  eventIds: number;
  letters: DeadLettered[];
}

export interface JudgeReport {
  /** Records read per logical topic. */
  records: Record<'requests' | 'decisions' | 'results' | 'control' | 'deadletter', number>;
  accepted: number;
  routedAttempts: number;
  redispatched: number;
  terminal: { completed: number; failed: number; rejected: number; byReason: Record<string, number> };
  /** Request ids with a client-visible outcome. */
  answered: number;
  superseded: number;
  /** Accepted request ids with no terminal outcome. */
  withoutTerminal: string[];
  /** Request ids with more than one client-visible (not superseded) terminal outcome. */
  duplicated: string[];
  /** Records of `requests` that are bad (do not decode, or too large). */
  badRequests: { position: string; bytes: number; why: string }[];
  deadLetters: DeadLetterGroup[];
  requests: Map<string, RequestVerdict>;
  /** Every decoded event of the topics read, with its record. */
  events: { topic: TopicName; event: SwitchyardEvent; record: LogRecord }[];
}

const TERMINAL = new Set<string>(['InferenceCompleted', 'InferenceFailed', 'RequestRejected']);
const JUDGED: ('requests' | 'decisions' | 'results' | 'control' | 'deadletter')[] = ['requests', 'decisions', 'results', 'control', 'deadletter'];

/** Every record of one topic, every partition, from its start to its end now. */
export async function readTopic(log: EventLog, topic: string): Promise<LogRecord[]> {
  const [starts, ends] = await Promise.all([log.startOffsets(topic), log.endOffsets(topic)]);
  const out: LogRecord[] = [];
  for (let p = 0; p < ends.length; p++) {
    for (let from = starts[p]!; from < ends[p]!; ) {
      const page = await log.read({ topic, partition: p, from, to: ends[p]!, maxRecords: 10_000 });
      if (page.length === 0) break;
      out.push(...page);
      from = page[page.length - 1]!.offset + 1;
    }
  }
  return out;
}

/**
 * Reads `requests`, `decisions`, `results`, `control` and `deadletter` whole and counts, per
 * request id: accepted (InferenceRequested), routed attempts, terminal outcomes
 * (InferenceCompleted / InferenceFailed / RequestRejected), the client-visible one (the first in
 * results-partition order that is not superseded), requests with none, ids with more than one;
 * and dead letters per original position.
 */
export async function judgeLog(log: EventLog, codec: EventCodec, layout: ReturnType<typeof topicLayout>, options: JudgeOptions = {}): Promise<JudgeReport> {
  const policy = options.policy ?? deadLetterPolicy('other', layout);
  const events: JudgeReport['events'] = [];
  const records = {} as JudgeReport['records'];
  const badRequests: JudgeReport['badRequests'] = [];
  for (const name of JUDGED) {
    const topic = layout[name].name;
    const read = await readTopic(log, topic);
    records[name] = read.length;
    for (const record of read) {
      const position = `${record.topic}/${record.partition}/${record.offset}`;
      if (name === 'requests' && (record.value?.length ?? 0) > policy.maxRecordBytes(topic)) {
        badRequests.push({ position, bytes: record.value!.length, why: 'too large' });
        continue;
      }
      if (record.value === null || record.value.length === 0) {
        if (name === 'requests') badRequests.push({ position, bytes: 0, why: 'no value' });
        continue;
      }
      try {
        events.push({ topic: name, event: await codec.decode(record.value), record });
      } catch (err) {
        if (name === 'requests') badRequests.push({ position, bytes: record.value.length, why: (err as { code?: string }).code ?? 'undecodable' });
      }
    }
  }

  const supersededIds = (options.superseded ?? defaultSuperseded)(events.filter((e) => e.topic === 'results'));
  const requests = new Map<string, RequestVerdict>();
  const seenTerminal = new Set<string>();
  let routedAttempts = 0;
  let redispatched = 0;
  const terminal = { completed: 0, failed: 0, rejected: 0, byReason: {} as Record<string, number> };
  const byPosition = new Map<string, DeadLetterGroup>();
  const sorted = [...events].sort((a, b) => a.record.partition - b.record.partition || a.record.offset - b.record.offset);
  // Per results partition, the largest record timestamp up to each offset (see TerminalOutcome.at).
  const resultTimes = new Map<number, { offset: number; at: number }[]>();
  for (const { topic, record } of sorted) {
    if (topic !== 'results') continue;
    const list = resultTimes.get(record.partition) ?? [];
    resultTimes.set(record.partition, list);
    list.push({ offset: record.offset, at: Math.max(record.timestamp, list.at(-1)?.at ?? 0) });
  }
  const onLogBy = (record: LogRecord): number => resultTimes.get(record.partition)?.find((x) => x.offset === record.offset)?.at ?? record.timestamp;
  for (const { topic, event, record } of sorted) {
    if (topic === 'deadletter' && event.type === 'DeadLettered') {
      const position = `${event.originalTopic}/${event.originalPartition}/${event.originalOffset}`;
      const g = byPosition.get(position) ?? { position, records: 0, eventIds: 0, letters: [] };
      byPosition.set(position, g);
      g.records++;
      if (!g.letters.some((l) => l.eventId === event.eventId)) g.eventIds++;
      g.letters.push(event);
      continue;
    }
    const id = event.requestId;
    if (id === null || id === undefined || id === '') continue;
    if (topic === 'requests' && event.type === 'InferenceRequested') {
      const v = requests.get(id);
      if (v) v.requestRecords++;
      else requests.set(id, { requestId: id, acceptedAt: record.timestamp, requestRecords: 1, deadlineAt: event.deadlineAt, routed: [], terminals: [], visible: undefined });
    }
  }
  for (const { topic, event, record } of sorted) {
    const id = event.requestId;
    if (id === null || id === undefined) continue;
    const v = requests.get(id);
    if (topic === 'decisions' && event.type === 'RequestRouted') {
      routedAttempts++;
      if (event.attempt > 1) redispatched++;
      v?.routed.push({ attempt: event.attempt, workerId: event.workerId, reason: event.reason, at: record.timestamp });
    }
    if (topic === 'results' && TERMINAL.has(event.type) && !seenTerminal.has(event.eventId)) {
      seenTerminal.add(event.eventId);
      const reason = event.type === 'RequestRejected' ? event.reason : event.type === 'InferenceFailed' ? event.errorCode : null;
      if (event.type === 'InferenceCompleted') terminal.completed++;
      else if (event.type === 'InferenceFailed') terminal.failed++;
      else terminal.rejected++;
      if (reason !== null) terminal.byReason[`${event.type}:${reason}`] = (terminal.byReason[`${event.type}:${reason}`] ?? 0) + 1;
      const workerId = 'workerId' in event && typeof event.workerId === 'string' ? event.workerId : null;
      const outcome: TerminalOutcome = { type: event.type as TerminalType, eventId: event.eventId, reason, at: onLogBy(record), partition: record.partition, offset: record.offset, workerId, superseded: supersededIds.has(event.eventId) };
      if (v) {
        v.terminals.push(outcome);
        if (!outcome.superseded) v.visible ??= outcome;
      }
    }
  }
  const all = [...requests.values()];
  return {
    records,
    accepted: requests.size,
    routedAttempts,
    redispatched,
    terminal,
    answered: all.filter((v) => v.visible !== undefined).length,
    superseded: all.reduce((n, v) => n + v.terminals.filter((t) => t.superseded).length, 0),
    withoutTerminal: all.filter((v) => v.terminals.length === 0).map((v) => v.requestId),
    duplicated: all.filter((v) => v.terminals.filter((t) => !t.superseded).length > 1).map((v) => v.requestId),
    badRequests,
    deadLetters: [...byPosition.values()],
    requests,
    events,
  };
}

function defaultSuperseded(results: { event: SwitchyardEvent }[]): Set<string> {
  const ids = new Set<string>();
  for (const { event } of results) if (event.type === 'ResultSuperseded') ids.add(event.supersededEventId);
  return ids;
}

// ---------------------------------------------------------------------------------------
// Figures

/** What each scenario prints, and what docs/RELIABILITY.md lists per scenario. */
export interface ScenarioFigures {
  scenario: string;
  /** Offered load, e.g. "20 req/s HTTP + 10 req/s Kafka for 20 s". */
  load: string;
  /** Requests sent by the clients (HTTP + Kafka), and accepted on the log. */
  sent: number;
  accepted: number;
  /** Accepted requests with no terminal outcome. */
  lost: number;
  /** Request ids with more than one client-visible outcome. */
  duplicated: number;
  /** From the fault to the first request served after it, ms (when the scenario measures it). */
  recoveryMs?: number | undefined;
  /** Anything else the scenario measured. */
  extra?: Record<string, string | number>;
}

/** The figures of a judged run: sent, accepted, lost, duplicated. */
export function figuresOf(scenario: string, load: string, sent: number, report: JudgeReport, more: Partial<ScenarioFigures> = {}): ScenarioFigures {
  return { scenario, load, sent, accepted: report.accepted, lost: report.withoutTerminal.length, duplicated: report.duplicated.length, ...more };
}

/** A terminal table of the figures, one row per scenario. */
export function formatFigures(figures: ScenarioFigures[]): string {
  const extraKeys = [...new Set(figures.flatMap((f) => Object.keys(f.extra ?? {})))];
  return renderTable(
    ['scenario', 'load', 'sent', 'accepted', 'lost', 'duplicated', 'time to recover', ...extraKeys],
    figures.map((f) => [f.scenario, f.load, f.sent, f.accepted, f.lost, f.duplicated, f.recoveryMs === undefined ? '' : `${(f.recoveryMs / 1000).toFixed(2)} s`, ...extraKeys.map((k) => f.extra?.[k])]),
  );
}

/** The same figures as Markdown table rows, for docs/RELIABILITY.md. */
export function figuresMarkdown(figures: ScenarioFigures[]): string {
  const extraKeys = [...new Set(figures.flatMap((f) => Object.keys(f.extra ?? {})))];
  const head = ['scenario', 'load', 'sent', 'accepted', 'lost', 'duplicated', 'time to recover', ...extraKeys];
  const rows = figures.map((f) => [f.scenario, f.load, f.sent, f.accepted, f.lost, f.duplicated, f.recoveryMs === undefined ? '' : `${(f.recoveryMs / 1000).toFixed(2)} s`, ...extraKeys.map((k) => f.extra?.[k] ?? '')]);
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** Prints a scenario's figures and the judge's counts to stderr (vitest shows them). */
export function printFigures(figures: ScenarioFigures, report?: JudgeReport): void {
  const lines = [`[chaos] ${figures.scenario}`, formatFigures([figures]), figuresMarkdown([figures])];
  if (report) {
    lines.push(
      renderTable(
        ['accepted', 'routed attempts', 're-dispatched', 'completed', 'failed', 'rejected', 'answered', 'superseded', 'without outcome', 'duplicated', 'bad requests', 'dead letters'],
        [[report.accepted, report.routedAttempts, report.redispatched, report.terminal.completed, report.terminal.failed, report.terminal.rejected, report.answered, report.superseded, report.withoutTerminal.length, report.duplicated.length, report.badRequests.length, report.deadLetters.length]],
      ),
    );
    if (Object.keys(report.terminal.byReason).length > 0) lines.push(`  reasons: ${Object.entries(report.terminal.byReason).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}
