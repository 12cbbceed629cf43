/**
 * Do nothing, on an executor (latency measurements; proving an executor still answers while
 * another call is stuck).
 *
 * @module
 */

import type { BlockingOp, SyscallReply } from "./op.ts";

/** noop takes no arguments. */
export type NoopArgs = Record<never, never>;

/** Always `{ ret: 0, errno: 0 }`. */
export const noop: BlockingOp<NoopArgs, SyscallReply> = {
  trampoline: () => Promise.resolve({ ret: 0, errno: 0 }),
  worker: () => ({ ret: 0, errno: 0 }),
};
