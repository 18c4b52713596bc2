import type { AppendRecord, EventLog } from '../log/port.js';
import type { ServiceContext } from '../runtime.js';
import type { EventCodec } from '../../schemas/codec.js';
import type { SwitchyardEventInit } from '../../schemas/generated/events.js';

/**
 * A copy of `ctx` through which the events a service writes are observed, without a line
 * changed in the service: `summarize` sees every event the service encodes with the context's
 * codec and keeps what a metric needs (or nothing); once an append holding the encoded record
 * has resolved — the event is on the log — `observe` gets that summary. An event encoded but
 * never written (a worker fenced after its eviction, an append that failed) is never observed.
 *
 * Everything else goes to the original log and codec (same instances, same `this`), so a
 * service started on the copy behaves exactly as on `ctx`. The cost per event is one call of
 * `summarize` at encode and a WeakMap lookup per record appended.
 */
export function observeWrites<S>(ctx: ServiceContext, summarize: (event: SwitchyardEventInit) => S | undefined, observe: (summary: S) => void): ServiceContext {
  const written = new WeakMap<Buffer, S>();
  const encode = (event: SwitchyardEventInit): Buffer => {
    const bytes = ctx.codec.encode(event);
    const summary = summarize(event);
    if (summary !== undefined) written.set(bytes, summary);
    return bytes;
  };
  const append = async (records: AppendRecord[]) => {
    const positions = await ctx.log.append(records);
    for (const { value } of records) {
      const summary = value === null ? undefined : written.get(value);
      if (summary === undefined) continue;
      written.delete(value!);
      observe(summary);
    }
    return positions;
  };
  return { ...ctx, codec: overriding<EventCodec>(ctx.codec, { encode }), log: overriding<EventLog>(ctx.log, { append }) };
}

/** `target` with some methods replaced; every other property read from `target`, methods bound to it. */
function overriding<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof T];
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      let fn = bound.get(prop);
      if (fn === undefined) bound.set(prop, (fn = (value as (...args: unknown[]) => unknown).bind(t)));
      return fn;
    },
  });
}
