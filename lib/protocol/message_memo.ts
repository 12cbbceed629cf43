/**
 * Whole messages recognised by their bytes. The lexer and parser are a deterministic function
 * of the bytes of a message that starts with nothing pending, so a message seen before can be
 * handed over again without lexing or parsing it: hosts repeat the same few requests (pings,
 * polls, the same read of the next chunk), and this is what a repeated request costs.
 *
 * @module
 */

/** Longest message remembered; longer ones are rare and costly to compare. */
export const MEMO_MAX_BYTES = 256;
/** Messages remembered, most recently matched first: more than a poll cycle's distinct requests. */
const MEMO_ENTRIES = 16;

/** A remembered message and what it produced. */
export interface MemoEntry<T> {
  readonly bytes: Uint8Array;
  readonly result: T;
}

/**
 * A small set of recent messages.
 *
 * @example
 * ```ts
 * const memo = new MessageMemo<string>();
 * const bytes = new TextEncoder().encode('{"execute":"guest-ping"}\n');
 * memo.remember(bytes, 0, bytes.length - 1, "ping");
 * memo.match(bytes, 0)?.result; // "ping"
 * ```
 */
export class MessageMemo<T> {
  readonly #entries: MemoEntry<T>[] = [];

  /** The remembered message `buf` starts with at `at`, if any. */
  match(buf: Uint8Array, at: number): MemoEntry<T> | undefined {
    const entries = this.#entries;
    const avail = buf.length - at;
    for (let e = 0; e < entries.length; e++) {
      const entry = entries[e];
      const bytes = entry.bytes;
      let k = bytes.length - 1;
      if (k >= avail) continue;
      // From the end: requests share their beginning (`{"execute":"guest-`) and differ late.
      while (k >= 0 && buf[at + k] === bytes[k]) k--;
      if (k >= 0) continue;
      if (e !== 0) {
        entries.splice(e, 1);
        entries.unshift(entry);
      }
      return entry;
    }
    return undefined;
  }

  /** Remembers the message `buf[start..end)` (at most {@link MEMO_MAX_BYTES}) as `result`. */
  remember(buf: Uint8Array, start: number, end: number, result: T): void {
    if (this.#entries.length === MEMO_ENTRIES) this.#entries.pop();
    this.#entries.unshift({ bytes: buf.slice(start, end), result });
  }

  /** Forgets everything. */
  clear(): void {
    this.#entries.length = 0;
  }
}
