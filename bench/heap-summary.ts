import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderTable } from '../lib/table.js';

/**
 * `npx tsx bench/heap-summary.ts <file.heapsnapshot> [--top N] [--holders <name>] [--depth N] [--json]`:
 * what a process's live memory is, from a V8 heap snapshot (`node --heapsnapshot-signal=SIGUSR1`,
 * then `kill -USR1 <pid>`; the snapshot is taken after a full GC). Sums self sizes by kind and
 * constructor — native ArrayBuffer data (`system / JSArrayBufferData`) included, so Buffers held
 * outside V8's heap are counted — and, with `--holders`, groups the objects of one name (or kind:
 * `string`, `native`, …) by their chain of retainers, `--depth` edges up, so "580k strings" turns
 * into "150k held by the router's decided LRU, 100k by the tracker's keys".
 */

interface SnapshotMeta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}
export interface HeapSnapshot {
  snapshot: { meta: SnapshotMeta };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapGroup {
  kind: string;
  name: string;
  count: number;
  bytes: number;
}
export interface HolderGroup {
  /** Retainers from the object up: `edge<-kind:name`, the first (strong) retainer at each step. */
  path: string;
  count: number;
  bytes: number;
}

/** Strings, numbers and code are grouped by kind alone: their names are their contents. */
const BY_KIND_ONLY = new Set(['string', 'concatenated string', 'sliced string', 'number', 'code']);

class Graph {
  readonly n: number;
  private readonly nf: number;
  private readonly ef: number;
  private readonly at: Record<'type' | 'name' | 'size' | 'edges' | 'eType' | 'eName' | 'eTo', number>;
  private readonly kinds: string[];
  private readonly edgeKinds: string[];

  constructor(readonly s: HeapSnapshot) {
    const { node_fields, node_types, edge_fields, edge_types } = s.snapshot.meta;
    this.nf = node_fields.length;
    this.ef = edge_fields.length;
    this.n = s.nodes.length / this.nf;
    this.at = {
      type: node_fields.indexOf('type'),
      name: node_fields.indexOf('name'),
      size: node_fields.indexOf('self_size'),
      edges: node_fields.indexOf('edge_count'),
      eType: edge_fields.indexOf('type'),
      eName: edge_fields.indexOf('name_or_index'),
      eTo: edge_fields.indexOf('to_node'),
    };
    this.kinds = node_types[0];
    this.edgeKinds = edge_types[0];
  }

  kind(i: number): string {
    return this.kinds[this.s.nodes[i * this.nf + this.at.type]!]!;
  }
  name(i: number): string {
    return this.s.strings[this.s.nodes[i * this.nf + this.at.name]!]!;
  }
  size(i: number): number {
    return this.s.nodes[i * this.nf + this.at.size]!;
  }
  label(i: number): string {
    const kind = this.kind(i);
    return BY_KIND_ONLY.has(kind) ? kind : `${kind}:${this.name(i).slice(0, 60)}`;
  }

  /**
   * For each node, its first strong retainer and the edge's name (weak edges are skipped).
   * Edges V8 marks `internal` (an array's backing store holding its elements, say) count only
   * for a node nothing else retains: an object in an array is retained both by the array and by
   * its elements store, and which of the two comes first in the snapshot varies from run to run.
   */
  firstRetainers(): { from: Int32Array; edge: string[] } {
    const from = new Int32Array(this.n).fill(-1);
    const edge: string[] = new Array<string>(this.n);
    const { nodes, edges, strings } = this.s;
    for (const internal of [false, true]) {
      let e = 0;
      for (let i = 0; i < this.n; i++) {
        const count = nodes[i * this.nf + this.at.edges]!;
        for (let k = 0; k < count; k++, e += this.ef) {
          const kind = this.edgeKinds[edges[e + this.at.eType]!]!;
          if (kind === 'weak' || (kind === 'internal') !== internal) continue;
          const to = edges[e + this.at.eTo]! / this.nf;
          if (from[to] !== -1) continue;
          from[to] = i;
          edge[to] = kind === 'element' || kind === 'hidden' ? '[i]' : String(strings[edges[e + this.at.eName]!]);
        }
      }
    }
    return { from, edge };
  }
}

/** Live bytes by kind and constructor name, largest first; the total over every node. */
export function summarizeHeap(s: HeapSnapshot, top: number): { totalBytes: number; groups: HeapGroup[] } {
  const g = new Graph(s);
  const groups = new Map<string, HeapGroup>();
  let totalBytes = 0;
  for (let i = 0; i < g.n; i++) {
    const kind = g.kind(i);
    const name = BY_KIND_ONLY.has(kind) ? '' : g.name(i).slice(0, 60);
    const key = `${kind}\0${name}`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = { kind, name, count: 0, bytes: 0 }));
    group.count++;
    group.bytes += g.size(i);
    totalBytes += g.size(i);
  }
  return { totalBytes, groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top) };
}

/**
 * The objects named `target` (a constructor name, or a kind such as `string`), grouped by the
 * chain of their first retainers `depth` steps up; largest groups first.
 */
export function holdersOf(s: HeapSnapshot, target: string, depth: number, top: number): HolderGroup[] {
  const g = new Graph(s);
  const { from, edge } = g.firstRetainers();
  const groups = new Map<string, HolderGroup>();
  for (let i = 0; i < g.n; i++) {
    if (g.kind(i) !== target && g.name(i) !== target) continue;
    const steps: string[] = [];
    for (let cur = i, d = 0; d < depth && from[cur]! !== -1; d++) {
      const up = from[cur]!;
      steps.push(`${edge[cur]}<-${g.label(up)}`);
      cur = up;
    }
    const path = steps.join(' | ') || '(no retainer)';
    let group = groups.get(path);
    if (group === undefined) groups.set(path, (group = { path, count: 0, bytes: 0 }));
    group.count++;
    group.bytes += g.size(i);
  }
  return [...groups.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count).slice(0, top);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' }, holders: { type: 'string' }, depth: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) {
    process.stderr.write('usage: tsx bench/heap-summary.ts <file.heapsnapshot> [--top N] [--holders <name>] [--depth N] [--json]\n');
    process.exit(2);
  }
  process.stderr.write(`reading ${positionals[0]}…\n`);
  const snapshot = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as HeapSnapshot;
  const top = Number(values.top);
  const mib = (b: number) => (b / 1048576).toFixed(2);
  if (values.holders !== undefined) {
    const groups = holdersOf(snapshot, values.holders, Number(values.depth), top);
    if (values.json) console.log(JSON.stringify(groups, null, 2));
    else console.log(renderTable(['MiB', 'objects', `held by (${values.holders} <- … )`], groups.map((h) => [mib(h.bytes), h.count, h.path])));
  } else {
    const s = summarizeHeap(snapshot, top);
    if (values.json) console.log(JSON.stringify(s, null, 2));
    else {
      console.log(`live: ${mib(s.totalBytes)} MiB`);
      console.log(renderTable(['MiB', 'objects', 'bytes each', 'kind', 'name'], s.groups.map((h) => [mib(h.bytes), h.count, Math.round(h.bytes / h.count), h.kind, h.name])));
    }
  }
}
