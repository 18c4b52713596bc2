/**
 * The query pack: one named, parameterised SQL file per question (`<name>.sql`), each with a
 * header comment that `lib/analytics/pack.ts` reads:
 *
 *   -- One line saying what the query answers.
 *   --
 *   -- More explanation (how it counts, what it deduplicates).
 *   --
 *   -- @param since DateTime = -24h   a parameter, its ClickHouse type, an optional default, a description
 *   -- @param model String            no default: the caller must give it
 *   -- @column bucket  start of the time bucket (UTC)
 *
 * Placeholders in the SQL are `{name:Type}` and must match the `@param` lines. Every query
 * runs on ClickHouse 18.16 and on chDB: no window functions, no `toStartOfInterval`, JOINs
 * with `USING`, `LIMIT` only as `LIMIT {limit:UInt32}` (inlined as a checked integer, since
 * 18.16 takes only a literal there), and every base table read with `FINAL` so re-inserted
 * events count once.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The directory holding the `.sql` files: this one when running from source, the source tree's
 * when running compiled from `dist/` (tsc does not copy `.sql` files).
 */
export const QUERY_DIR: string = [here, resolve(here, '../../../../schemas/clickhouse/queries')].find(
  (d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.sql')),
) ?? join(here);
