import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdersOf, summarizeHeap, type HeapSnapshot } from './heap-summary.js';

/**
 * A real snapshot of a small process holding known objects: 5,000 `Kept` objects in a `Shelf`,
 * each with a string and a 129-byte Buffer of its own.
 */
const dir = mkdtempSync(join(tmpdir(), 'sy-heap-summary-'));
let snapshot: HeapSnapshot;

beforeAll(() => {
  const file = join(dir, 'kept.heapsnapshot');
  const script = `
    const v8 = require('node:v8');
    class Kept { constructor(i) { this.id = 'kept-' + String(i).padStart(8, '0'); this.bytes = Buffer.allocUnsafeSlow(129); } }
    class Shelf { constructor() { this.items = Array.from({ length: 5000 }, (_, i) => new Kept(i)); } }
    globalThis.shelf = new Shelf();
    v8.writeHeapSnapshot(${JSON.stringify(file)});`;
  execFileSync(process.execPath, ['-e', script]);
  snapshot = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('heap summary', () => {
  it('counts every object by kind and constructor, native ArrayBuffer data included', () => {
    const { totalBytes, groups } = summarizeHeap(snapshot, Number.MAX_SAFE_INTEGER);
    const kept = groups.find((g) => g.kind === 'object' && g.name === 'Kept');
    expect(kept?.count).toBe(5_000);
    const data = groups.find((g) => g.name === 'system / JSArrayBufferData');
    expect(data!.count).toBeGreaterThanOrEqual(5_000);
    expect(data!.bytes).toBeGreaterThanOrEqual(5_000 * 129);
    // Strings are one group whatever their contents.
    expect(groups.filter((g) => g.kind === 'string')).toHaveLength(1);
    expect(totalBytes).toBe(groups.reduce((n, g) => n + g.bytes, 0));
    expect(groups.map((g) => g.bytes)).toEqual([...groups.map((g) => g.bytes)].sort((a, b) => b - a));
  });

  it('groups the objects of one name by who holds them', () => {
    const held = holdersOf(snapshot, 'Kept', 3, 5);
    expect(held[0]!.count).toBe(5_000);
    expect(held[0]!.path).toBe('[i]<-object:Array | items<-object:Shelf | shelf<-object:global');
    // The Buffers' bytes: held by a view, held by a Kept.
    const data = holdersOf(snapshot, 'system / JSArrayBufferData', 3, 5);
    const ofKept = data.find((h) => h.path.endsWith('bytes<-object:Kept'));
    expect(ofKept?.count).toBe(5_000);
    expect(ofKept?.bytes).toBe(5_000 * 129);
  });
});
