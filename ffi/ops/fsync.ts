/**
 * fsync(fd).
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, libcReply, rawReply, type SyscallReply } from "./op.ts";

/** fsync(2)'s argument. */
export interface FsyncArgs {
  fd: number;
}

/** `ret` is 0, or -1 with `errno`. */
export const fsync: BlockingOp<FsyncArgs, SyscallReply> = {
  trampoline: async ({ fd }) => rawReply(await syscall6(sys().fsync, fd)),
  worker: ({ fd }) => libcReply(libc().fsync(fd)),
};
