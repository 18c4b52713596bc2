import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderTable } from '../lib/table.js';
import { areaOf, functionOf, type CallFrame } from './profile-summary.js';

/**
 * `npx tsx bench/alloc-summary.ts <file.heapprofile> [--requests N] [--top N] [--json]`: what a
 * server allocated, by area and by function (self), from a V8 sampling heap profile taken with
 * the GC's collected objects counted (bench/heap-sampling.mjs; `npm run bench -- cpu` takes one
 * per variant). With `--requests`, per request: the garbage a request leaves is what the young
 * generation's scavenges and, for what lives long enough to be promoted, the mark-compacts pay for.
 */

export interface HeapSamplingNode {
  callFrame: CallFrame;
  /** Bytes allocated by this frame itself (V8 scales the samples to an estimate of all allocations). */
  selfSize: number;
  children: HeapSamplingNode[];
}
export interface HeapSamplingProfile {
  head: HeapSamplingNode;
}

export interface AllocationSummary {
  totalBytes: number;
  areas: [string, number][];
  functions: [string, number][];
}

/** Bytes allocated, in all and by area and function (self), the `top` largest of each. */
export function summarizeAllocations(profile: HeapSamplingProfile, top: number): AllocationSummary {
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalBytes = 0;
  const stack: HeapSamplingNode[] = [profile.head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    stack.push(...node.children);
    if (node.selfSize === 0) continue;
    totalBytes += node.selfSize;
    const area = areaOf(node.callFrame);
    areas.set(area, (areas.get(area) ?? 0) + node.selfSize);
    const fn = functionOf(node.callFrame);
    functions.set(fn, (functions.get(fn) ?? 0) + node.selfSize);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { totalBytes, areas: sorted(areas), functions: sorted(functions) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { requests: { type: 'string' }, top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: tsx bench/alloc-summary.ts <file.heapprofile> [--requests N] [--top N] [--json]\n');
    process.exit(2);
  }
  const s = summarizeAllocations(JSON.parse(readFileSync(positionals[0]!, 'utf8')) as HeapSamplingProfile, Number(values.top));
  const requests = values.requests === undefined ? undefined : Number(values.requests);
  if (values.json) console.log(JSON.stringify({ ...s, requests }, null, 2));
  else {
    const per = (b: number) => (requests === undefined ? `${(b / 1048576).toFixed(1)} MiB` : `${(b / requests / 1024).toFixed(2)} KB`);
    const unit = requests === undefined ? 'allocated' : 'allocated per request';
    console.log(`allocated: ${per(s.totalBytes)}${requests === undefined ? '' : ' per request'}`);
    console.log(renderTable(['area', unit, 'share'], s.areas.map(([a, b]) => [a, per(b), `${((b / s.totalBytes) * 100).toFixed(1)}%`])));
    console.log(renderTable(['function', unit, 'share'], s.functions.map(([f, b]) => [f, per(b), `${((b / s.totalBytes) * 100).toFixed(1)}%`])));
  }
}
