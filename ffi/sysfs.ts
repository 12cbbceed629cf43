/**
 * Many small file-system look-ups in one blocking call (`ffi/ops/chain.ts`): on the trampoline one
 * native syscall chain, one thread hand-off for the whole list.
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import type { ChainAnswer, ChainItem } from "./ops/chain.ts";

export type { ChainAnswer, ChainItem } from "./ops/chain.ts";

/**
 * The answers to `items`, in item order: each carries its data or its errno, or says it is
 * `incomplete` (ask again the ordinary way).
 *
 * @example
 * ```ts
 * const [link, uevent] = await lookUp([
 *   { kind: "readlink", path: "/sys/dev/block/7:0" },
 *   { kind: "read", path: "/sys/dev/block/7:0/uevent" },
 * ]);
 * ```
 */
export function lookUp(items: ChainItem[]): Promise<ChainAnswer[]> {
  return runBlocking({ op: "chain", items });
}
