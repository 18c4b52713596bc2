/**
 * Kafka's default key partitioner: murmur2 of the key bytes, positive, modulo the
 * partition count. The embedded log uses the same function so that a key lands on the
 * same partition number in both adapters (sessions stay sticky across deployments).
 *
 * Written here rather than imported: kafkajs does not export its murmur2, and the
 * function is the Java client's, fixed by the wire contract.
 */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  const r = 24;
  const seed = 0x9747b28c;
  const length = data.length;
  let h = seed ^ length;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4]! & 0xff) + ((data[i4 + 1]! & 0xff) << 8) + ((data[i4 + 2]! & 0xff) << 16) + ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const index = length4 * 4;
  switch (length & 3) {
    case 3:
      h ^= (data[index + 2]! & 0xff) << 16;
    // falls through
    case 2:
      h ^= (data[index + 1]! & 0xff) << 8;
    // falls through
    case 1:
      h ^= data[index]! & 0xff;
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Partition for a key, as Kafka's Java client and kafkajs' default partitioner choose it. */
export function partitionForKey(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
