import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { topicLayout, type TopicName } from '../log/topics.js';
import { SwitchyardError } from '../errors.js';
import { DEAD_LETTER_OWNERS, MAX_DEAD_LETTER_VALUE_BYTES, MAX_REQUEST_RECORD_BYTES, deadLetterEventId, deadLetterFor, deadLetterPolicy } from './subscribe.js';

describe('dead-letter ownership', () => {
  const layout = topicLayout({ prefix: 'p.', lanes: 4 });
  const duties = (consumer: Parameters<typeof deadLetterPolicy>[0]) => {
    const policy = deadLetterPolicy(consumer, layout);
    return Object.fromEntries((Object.keys(layout) as TopicName[]).map((t) => [t, policy.duty(layout[t].name)]));
  };

  it('gives every topic exactly one writer: requests the router, decisions the worker, the rest the sink', () => {
    expect(duties('router')).toEqual({ requests: 'write', decisions: 'skip', results: 'skip', heartbeats: 'skip', control: 'skip', sessions: 'skip', deadletter: 'skip' });
    expect(duties('worker')).toEqual({ requests: 'skip', decisions: 'write', results: 'skip', heartbeats: 'skip', control: 'skip', sessions: 'skip', deadletter: 'skip' });
    expect(duties('sink')).toEqual({ requests: 'skip', decisions: 'skip', results: 'write', heartbeats: 'write', control: 'write', sessions: 'write', deadletter: 'write' });
    expect(Object.values(duties('other')).every((d) => d === 'skip')).toBe(true);
    for (const topic of Object.keys(layout) as TopicName[]) {
      const writers = (['router', 'worker', 'sink'] as const).filter((c) => deadLetterPolicy(c, layout).duty(layout[topic].name) === 'write');
      expect(writers, topic).toEqual([DEAD_LETTER_OWNERS[topic]]);
    }
  });

  it('limits the size of requests records only (a decision carries its request and must fit in a log record)', () => {
    const policy = deadLetterPolicy('sink', layout);
    expect(policy.maxRecordBytes(layout.requests.name)).toBe(MAX_REQUEST_RECORD_BYTES);
    expect(policy.maxRecordBytes(layout.decisions.name)).toBe(Number.POSITIVE_INFINITY);
    expect(deadLetterPolicy('router', layout, { maxRequestBytes: 10 }).maxRecordBytes(layout.requests.name)).toBe(10);
  });
});

describe('deadLetterFor', () => {
  const record = (value: Buffer | null) => ({ topic: 'p.requests', partition: 2, offset: 41, key: Buffer.from('k'), value, headers: {}, timestamp: 5 });

  it('names the record by its position only, whoever writes it', () => {
    const a = deadLetterFor(record(Buffer.from('x')), new SwitchyardError('SY_ERR_CODEC_MAGIC', 'bad'), 'router', 'router-1', 1);
    const b = deadLetterFor(record(Buffer.from('x')), new SwitchyardError('SY_ERR_CODEC_MAGIC', 'bad'), 'sink', 'sink-1', 2);
    expect(a.eventId).toBe(b.eventId);
    expect(a.eventId).toBe(deadLetterEventId({ topic: 'p.requests', partition: 2, offset: 41 }));
    expect(a.eventId).not.toBe(deadLetterEventId({ topic: 'p.requests', partition: 2, offset: 42 }));
    expect([a.consumerGroup, b.consumerGroup]).toEqual(['router', 'sink']);
  });

  it('keeps a value that fits whole, and cuts a longer one to fit in a log record, saying so with its length and sha256', () => {
    const fits = Buffer.alloc(MAX_DEAD_LETTER_VALUE_BYTES, 1);
    expect(deadLetterFor(record(fits), new Error('x'), 'g', 'p', 0).originalValue).toBe(fits);
    const long = Buffer.alloc(MAX_DEAD_LETTER_VALUE_BYTES + 10, 2);
    const letter = deadLetterFor(record(long), new SwitchyardError('SY_ERR_CODEC_TOO_LARGE', 'too large'), 'g', 'p', 0);
    expect(letter.originalValue!.length).toBe(MAX_DEAD_LETTER_VALUE_BYTES);
    expect(letter.errorCode).toBe('SY_ERR_CODEC_TOO_LARGE');
    expect(letter.errorMessage).toContain(`${MAX_DEAD_LETTER_VALUE_BYTES + 10} bytes`);
    expect(letter.errorMessage).toContain(createHash('sha256').update(long).digest('hex'));
  });
});
