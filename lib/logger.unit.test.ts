import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

/** Collects what a logger writes, one parsed JSON object per line. */
function sink(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

describe('the process logger: one JSON shape for every service', () => {
  it('writes JSON lines with the service, the instance, an ISO time and the line’s fields, so a central store can join them', async () => {
    const { stream, lines } = sink();
    const log = createLogger('controller', 'info', stream);
    log.info({ requestId: 'r-1', workerId: 'w-2', epoch: 3 }, 'controller: re-dispatching');
    log.debug({ requestId: 'r-2' }, 'below the level');
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ service: 'controller', name: 'controller', requestId: 'r-1', workerId: 'w-2', epoch: 3, msg: 'controller: re-dispatching', level: 30 });
    expect(lines[0]!['instance']).toMatch(/:\d+$/);
    expect(new Date(lines[0]!['time'] as string).toISOString()).toBe(lines[0]!['time']);
  });

  it('never writes credentials, at the top or one level down', async () => {
    const { stream, lines } = sink();
    const log = createLogger('gateway', 'info', stream);
    log.info({ password: 'p', sasl: { mechanism: 'scram-sha-256', password: 'secret' }, headers: { authorization: 'Bearer k', 'x-api-key': 'k2' }, config: { adminToken: 't' } }, 'start');
    await new Promise((r) => setImmediate(r));
    const text = JSON.stringify(lines[0]);
    for (const secret of ['"p"', 'secret', 'Bearer k', '"k2"', '"t"']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ password: '[redacted]', sasl: { mechanism: 'scram-sha-256', password: '[redacted]' }, headers: { authorization: '[redacted]', 'x-api-key': '[redacted]' }, config: { adminToken: '[redacted]' } });
  });
});
