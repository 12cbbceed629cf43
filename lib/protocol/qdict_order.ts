/**
 * QEMU's QDict member order (qemu-ga-behaviour.md §2.7): 512 buckets chosen by tdb_hash of the
 * key's (modified) UTF-8 bytes, iterated in ascending bucket order, and within a bucket the most
 * recently inserted key first. Request validation walks members in this order (§2.5), and the
 * writer emits objects in it.
 *
 * @module
 */

const BUCKETS = 512;
const bucketCache = new Map<string, number>();
const utf8 = new TextEncoder();

/** Modified UTF-8 bytes of a key: U+0000 is C0 80, as QEMU stores it. */
function keyBytes(key: string): Uint8Array {
  if (!key.includes("\0")) return utf8.encode(key);
  const parts = key.split("\0").map((p) => utf8.encode(p));
  const len = parts.reduce((n, p) => n + p.length, 0) + 2 * (parts.length - 1);
  const out = new Uint8Array(len);
  let o = 0;
  parts.forEach((p, i) => {
    if (i > 0) {
      out[o++] = 0xc0;
      out[o++] = 0x80;
    }
    out.set(p, o);
    o += p.length;
  });
  return out;
}

/** tdb_hash(key) mod 512, computed in 32-bit unsigned arithmetic. */
export function qdictBucket(key: string): number {
  const cached = bucketCache.get(key);
  if (cached !== undefined) return cached;
  const bytes = keyBytes(key);
  let v = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    v = (v + ((bytes[i] << ((i * 5) % 24)) >>> 0)) >>> 0;
  }
  const h = (Math.imul(1103515243, v) + 12345) >>> 0;
  const bucket = h % BUCKETS;
  if (bucketCache.size < 4096) bucketCache.set(key, bucket);
  return bucket;
}

/**
 * Orders keys given in insertion order the way a QDict iterates them.
 *
 * @example
 * ```ts
 * qdictOrder(["position", "eof"]); // ["eof", "position"]
 * ```
 */
export function qdictOrder(keys: readonly string[]): string[] {
  if (keys.length < 2) return keys.slice();
  const decorated = keys.map((k, i) => ({ k, i, b: qdictBucket(k) }));
  // Ascending bucket; later insertion first within a bucket (QLIST_INSERT_HEAD).
  decorated.sort((x, y) => x.b - y.b || y.i - x.i);
  return decorated.map((d) => d.k);
}
