/**
 * fchmod(fd, mode).
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, libcReply, rawReply, type SyscallReply } from "./op.ts";

/** fchmod(2)'s arguments. */
export interface FchmodArgs {
  fd: number;
  mode: number;
}

/** `ret` is 0, or -1 with `errno`. */
export const fchmod: BlockingOp<FchmodArgs, SyscallReply> = {
  trampoline: async ({ fd, mode }) => rawReply(await syscall6(sys().fchmod, fd, mode)),
  worker: ({ fd, mode }) => libcReply(libc().fchmod(fd, mode)),
};
