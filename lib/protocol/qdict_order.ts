/**
 * QEMU's QDict member order (qemu-ga-behaviour.md §2.7) for a list of keys: buckets ascending,
 * within a bucket the most recently inserted key first. Request validation walks members in
 * this order (§2.5); the writer emits objects in it (same hash, `bucketOf`).
 *
 * @module
 */

import { bucketOf } from "./writer.ts";

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
  const decorated = keys.map((k, i) => ({ k, i, b: bucketOf(k) }));
  decorated.sort((x, y) => x.b - y.b || y.i - x.i);
  return decorated.map((d) => d.k);
}
