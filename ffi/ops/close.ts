/**
 * close(fd).
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, libcReply, rawReply, type SyscallReply } from "./op.ts";

/** close(2)'s argument. */
export interface CloseArgs {
  fd: number;
}

/** `ret` is 0, or -1 with `errno`. */
export const close: BlockingOp<CloseArgs, SyscallReply> = {
  trampoline: async ({ fd }) => rawReply(await syscall6(sys().close, fd)),
  worker: ({ fd }) => libcReply(libc().close(fd)),
};
