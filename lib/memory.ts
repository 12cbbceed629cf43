/**
 * Memory that comes back: after a burst (big replies, floods of input) the V8 heap keeps its
 * grown spaces and garbage until its next major GC, and glibc keeps freed memory in its arenas.
 * Once the agent is idle again both are handed back to the kernel.
 *
 * @module
 */

import { mallocTrim } from "../ffi/libc.ts";

/** Options of V8's `gc()` (its gc extension). */
interface GcOptions {
  type?: "major" | "minor";
  execution?: "sync" | "async";
  /** "last-resort" collects repeatedly, shrinks the heap's spaces and frees pooled pages. */
  flavor?: "regular" | "last-resort";
}
type Gc = (options?: GcOptions) => void;

/** V8's full GC; null where that does not work. */
let collect: Gc | null | undefined;

async function collector(): Promise<Gc | null> {
  if (collect !== undefined) return collect;
  // `--v8-flags=--expose-gc` (lib/run_flags.ts) puts it on the global object for free.
  const exposed: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === "function") return collect = exposed as Gc;
  try {
    // Started without the flag: the Node compatibility modules can expose it, at the cost of
    // loading them, so only after a first burst.
    const [v8, vm] = await Promise.all([import("node:v8"), import("node:vm")]);
    v8.setFlagsFromString("--expose-gc");
    const gc: unknown = vm.runInNewContext("gc");
    collect = typeof gc === "function" ? gc as Gc : null;
  } catch {
    collect = null;
  }
  return collect;
}

/** Runs a full GC and trims malloc's arenas; never throws. */
export async function releaseMemory(): Promise<void> {
  try {
    (await collector())?.({ type: "major", execution: "sync", flavor: "last-resort" });
  } catch {
    // no GC hook: V8 collects on its own schedule
  }
  try {
    mallocTrim();
  } catch {
    // no glibc: freed memory is merely not returned early
  }
}
