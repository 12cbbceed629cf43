/**
 * ftruncate(fd, length), with a 64-bit length.
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, libcReply, rawReply, type SyscallReply } from "./op.ts";

/** ftruncate(2)'s arguments. */
export interface FtruncateArgs {
  fd: number;
  length: bigint;
}

/** `ret` is 0, or -1 with `errno`. */
export const ftruncate: BlockingOp<FtruncateArgs, SyscallReply> = {
  trampoline: async ({ fd, length }) => rawReply(await syscall6(sys().ftruncate, fd, length)),
  worker: ({ fd, length }) => libcReply(libc().ftruncate(fd, length)),
};
