/**
 * One shared string per distinct value of a low-cardinality identifier (model name, version,
 * digest, worker id, content type, producer…). A decoded event holds fresh copies of these,
 * and the bounded memories that keep events' fields for minutes (the gateway's results tracker,
 * the controller's outcomes) would otherwise hold hundreds of thousands of equal strings: in a
 * soak's heap snapshot, ~620k of its 1.2M strings were copies of eight values, each one more
 * object for every old-generation mark.
 *
 * Bounded: past `max` distinct values the table starts again, so hostile or high-cardinality
 * input costs at most `max` entries and a miss, never growth. Equal strings stay equal whether
 * interned or not: nothing may rely on identity.
 */
export class Interner {
  private readonly table = new Map<string, string>();

  constructor(private readonly max = 4_096) {}

  intern(s: string): string {
    const known = this.table.get(s);
    if (known !== undefined) return known;
    if (s.length > 256) return s; // identifiers are short; a long string is not worth a slot
    if (this.table.size >= this.max) this.table.clear();
    this.table.set(s, s);
    return s;
  }

  get size(): number {
    return this.table.size;
  }
}

/** The process's table of event identifiers (the event codec and the gateway share it). */
export const identifiers = new Interner();

/** Fields of Switchyard events whose values come from a small set (not ids of requests or events). */
export const IDENTIFIER_FIELDS = [
  'producer',
  'model',
  'requestedModel',
  'modelVersion',
  'modelDigest',
  'workerId',
  'previousWorkerId',
  'contentType',
  'reason',
  'errorCode',
  'zone',
  'pool',
  'tenant',
  'controllerId',
] as const;

/**
 * Replaces each identifier field of a decoded record with its shared string, in place. `fields`:
 * the identifier fields its schema has (the codec finds them once per schema), else all of them.
 */
export function internIdentifiers(record: Record<string, unknown>, table: Interner = identifiers, fields: readonly string[] = IDENTIFIER_FIELDS): void {
  for (const field of fields) {
    const v = record[field];
    if (typeof v === 'string') record[field] = table.intern(v);
  }
}
