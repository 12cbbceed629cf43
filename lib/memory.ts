/**
 * Memory that comes back: after a burst (big replies, floods of input) the V8 heap keeps its
 * grown spaces and garbage until its next major GC, and glibc keeps freed memory in its arenas.
 * Once the agent is idle again both are handed back to the kernel.
 *
 * @module
 */

import { mallocTrim } from "../ffi/libc.ts";

/** V8's full GC, reachable without a command-line flag; null where that does not work. */
let collect: (() => void) | null | undefined;

async function collector(): Promise<(() => void) | null> {
  if (collect !== undefined) return collect;
  try {
    // Loaded only after a first burst: the Node compatibility modules cost some memory.
    const [v8, vm] = await Promise.all([import("node:v8"), import("node:vm")]);
    v8.setFlagsFromString("--expose-gc");
    const gc: unknown = vm.runInNewContext("gc");
    collect = typeof gc === "function" ? () => gc() : null;
  } catch {
    collect = null;
  }
  return collect;
}

/** Runs a full GC and trims malloc's arenas; never throws. */
export async function releaseMemory(): Promise<void> {
  try {
    (await collector())?.();
  } catch {
    // no GC hook: V8 collects on its own schedule
  }
  try {
    mallocTrim();
  } catch {
    // no glibc: freed memory is merely not returned early
  }
}
