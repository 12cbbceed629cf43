/**
 * The operations `runBlocking` can execute, typed from the registry (`registry.ts`): a request
 * is `{ op: <name>, ...arguments }`, and its reply type follows from the name.
 *
 * @module
 */

import type { BlockingOp } from "./op.ts";
import * as registry from "./registry.ts";

export type { BlockingOp, SyscallReply, TrampolineJob } from "./op.ts";

type Registry = typeof registry;

/** The name of a registered operation. */
export type OpName = keyof Registry;

/** The arguments of operation `K` (its request without `op`). */
export type OpArgs<K extends OpName> = Registry[K] extends BlockingOp<infer A, infer _R> ? A
  : never;

/** What operation `K` resolves with. */
export type OpReply<K extends OpName> = Registry[K] extends BlockingOp<infer _A, infer R> ? R
  : never;

/**
 * A request for operation `K` (by default: for any operation). Distributes over a union of
 * names, so `BlockingRequest` is the union of every operation's request.
 */
export type BlockingRequest<K extends OpName = OpName> = K extends OpName ? { op: K } & OpArgs<K>
  : never;

/** The operation named `name` with its types erased, as the executors handle it. */
export type AnyOp = BlockingOp<object, unknown>;

/**
 * The operation named `name`, or undefined for a name the registry does not hold (a bug in the
 * caller; inherited names such as "toString" are not operations).
 */
export function findOp(name: unknown): AnyOp | undefined {
  if (typeof name !== "string" || !Object.hasOwn(registry, name)) return undefined;
  return registry[name as OpName] as unknown as AnyOp;
}
