import { errorMessage, isRetriable } from '../../lib/errors.js';
import type { LogRecord } from '../../lib/log/port.js';
import type { ServiceContext } from '../../lib/runtime.js';
import type { SwitchyardEvent } from '../../schemas/generated/events.js';

/**
 * Reads the single-partition `control` topic forward from where it stopped, decoding each
 * record and handing it to `onEvent` in log order. Used to fold lane claims, model versions
 * and evictions at startup and, polled, while running. A record that does not decode is
 * skipped with a warning (control's consumers that own dead-lettering, like the controller,
 * dead-letter it); a retriable failure (registry unreachable) is thrown so the caller retries.
 */
export class ControlReader {
  /** Next offset to read: every record below it has been folded. */
  position = 0;
  private readonly topic: string;

  constructor(
    private readonly ctx: Pick<ServiceContext, 'log' | 'codec' | 'topics' | 'logger'>,
    private readonly onEvent: (event: SwitchyardEvent, record: LogRecord) => void,
  ) {
    this.topic = ctx.topics.control.name;
  }

  /** The catch-up in progress: one at a time, so that records are folded once and in order. */
  private running: Promise<unknown> = Promise.resolve();

  /**
   * Fold everything up to the current end of control (or at least up to `until`). Returns the
   * new position. Calls made while one runs wait for it and then read on from where it stopped
   * (two at once would interleave at their awaits and could fold a record before the one below it).
   */
  catchUp(until?: number): Promise<number> {
    const run = this.running.then(() => this.readToEnd(until));
    this.running = run.catch(() => {});
    return run;
  }

  private async readToEnd(until?: number): Promise<number> {
    const { log, codec, logger } = this.ctx;
    for (;;) {
      const end = (await log.endOffsets(this.topic))[0] ?? 0;
      const target = Math.max(end, until ?? 0);
      if (this.position >= target) return this.position;
      const records = await log.read({ topic: this.topic, partition: 0, from: this.position, to: target, maxRecords: 5_000 });
      if (records.length === 0) {
        if (this.position >= end) return this.position;
        // Everything in [position, end) was compacted or expired.
        this.position = end;
        continue;
      }
      for (const record of records) {
        if (record.offset < this.position) continue;
        this.position = record.offset + 1;
        if (record.value === null || record.value.length === 0) continue;
        let event: SwitchyardEvent;
        try {
          event = await codec.decode(record.value);
        } catch (err) {
          if (isRetriable(err)) {
            this.position = record.offset;
            throw err;
          }
          logger.warn({ topic: this.topic, offset: record.offset, err: errorMessage(err) }, 'control: skipping a record that does not decode');
          continue;
        }
        this.onEvent(event, record);
      }
    }
  }
}
