/**
 * Which leftover argument qemu-ga names in `Parameter '<name>' is unexpected` when there are
 * several (§2.6). QEMU's input visitor copies the argument names into a GLib GHashTable
 * (g_str_hash), removes each member as it is decoded, and reports the first key the table's
 * iterator yields. This replays GLib's open-addressing table (8 slots to start, index =
 * hash × 11 mod a prime, quadratic probing, tombstones, resize at 15/16 full or below 1/4)
 * closely enough to name the same key.
 *
 * @module
 */

const MIN_SHIFT = 3;
const PRIME_MOD = [
  1,
  2,
  3,
  7,
  13,
  31,
  61,
  127,
  251,
  509,
  1021,
  2039,
  4093,
  8191,
  16381,
  32749,
  65521,
];
const UNUSED = 0;
const TOMBSTONE = 1;
const utf8 = new TextEncoder();

/** g_str_hash (djb2 over signed chars), adjusted to GLib's "real hash" range (≥ 2). */
function strHash(key: string): number {
  let h = 5381;
  for (const b of utf8.encode(key)) h = (Math.imul(h, 33) + ((b << 24) >> 24)) >>> 0;
  return h < 2 ? 2 : h;
}

class GHashSet {
  #shift = MIN_SHIFT;
  #hashes: number[] = new Array(1 << MIN_SHIFT).fill(UNUSED);
  #keys: (string | undefined)[] = new Array(1 << MIN_SHIFT).fill(undefined);
  #nnodes = 0;
  #noccupied = 0;

  get #size(): number {
    return 1 << this.#shift;
  }

  #index(hash: number): number {
    // guint arithmetic: the product wraps at 32 bits before the modulo.
    return (Math.imul(hash, 11) >>> 0) % PRIME_MOD[this.#shift];
  }

  #lookup(key: string, hash: number): number {
    const mask = this.#size - 1;
    let i = this.#index(hash);
    let step = 0;
    let tombstone = -1;
    while (this.#hashes[i] !== UNUSED) {
      if (this.#hashes[i] === hash && this.#keys[i] === key) return i;
      if (this.#hashes[i] === TOMBSTONE && tombstone < 0) tombstone = i;
      i = (i + ++step) & mask;
    }
    return tombstone >= 0 ? tombstone : i;
  }

  insert(key: string): void {
    const hash = strHash(key);
    const i = this.#lookup(key, hash);
    if (this.#hashes[i] >= 2) return;
    const wasUnused = this.#hashes[i] === UNUSED;
    this.#hashes[i] = hash;
    this.#keys[i] = key;
    this.#nnodes++;
    if (wasUnused) this.#noccupied++;
    this.#maybeResize();
  }

  remove(key: string): void {
    const i = this.#lookup(key, strHash(key));
    if (this.#hashes[i] < 2) return;
    this.#hashes[i] = TOMBSTONE;
    this.#keys[i] = undefined;
    this.#nnodes--;
    this.#maybeResize();
  }

  #maybeResize(): void {
    const size = this.#size;
    const occ = this.#noccupied;
    if ((size > this.#nnodes * 4 && size > 1 << MIN_SHIFT) || size <= occ + Math.floor(occ / 16)) {
      this.#resize();
    }
  }

  /** GLib's in-place rehash: walk old slots in order, evicting entries into their new home. */
  #resize(): void {
    const oldSize = this.#size;
    let n = Math.floor(this.#nnodes * 1.333);
    let shift = 0;
    while (n) {
      n >>= 1;
      shift++;
    }
    this.#shift = Math.max(shift, MIN_SHIFT);
    const size = this.#size;
    const mask = size - 1;
    const big = Math.max(size, oldSize);
    while (this.#hashes.length < big) {
      this.#hashes.push(UNUSED);
      this.#keys.push(undefined);
    }
    const moved = new Array<boolean>(big).fill(false);
    for (let i = 0; i < oldSize; i++) {
      let hash = this.#hashes[i];
      if (hash < 2) {
        this.#hashes[i] = UNUSED;
        continue;
      }
      if (moved[i]) continue;
      this.#hashes[i] = UNUSED;
      let key = this.#keys[i];
      this.#keys[i] = undefined;
      for (;;) {
        let j = this.#index(hash);
        let step = 0;
        while (moved[j]) j = (j + ++step) & mask;
        moved[j] = true;
        const replacedHash = this.#hashes[j];
        const replacedKey = this.#keys[j];
        this.#hashes[j] = hash;
        this.#keys[j] = key;
        if (replacedHash < 2) break;
        hash = replacedHash;
        key = replacedKey;
      }
    }
    this.#hashes.length = size;
    this.#keys.length = size;
    this.#noccupied = this.#nnodes;
  }

  first(): string | undefined {
    for (let i = 0; i < this.#size; i++) if (this.#hashes[i] >= 2) return this.#keys[i];
    return undefined;
  }
}

/**
 * The leftover key qemu-ga reports: `inserted` in the request object's own (QDict) order,
 * `consumed` in the order the decoder visited them.
 *
 * @example
 * ```ts
 * firstLeftover(["handle", "count", "zzz"], []); // what GLib's iterator yields first
 * ```
 */
export function firstLeftover(
  inserted: readonly string[],
  consumed: readonly string[],
): string | undefined {
  const set = new GHashSet();
  for (const k of inserted) set.insert(k);
  for (const k of consumed) set.remove(k);
  return set.first();
}
