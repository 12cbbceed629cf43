/**
 * open(path, flags, mode).
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { cString, libc, type OsPath } from "../libc.ts";
import { AT_FDCWD, syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, libcReply, rawReply, type SyscallReply } from "./op.ts";

/** open(2)'s arguments. */
export interface OpenArgs {
  path: OsPath;
  flags: number;
  mode: number;
}

/** `ret` is the new fd, or -1 with `errno`. */
export const open: BlockingOp<OpenArgs, SyscallReply> = {
  // libc's open() is openat(AT_FDCWD, …) on both architectures; the kernel adds O_LARGEFILE
  // itself on 64-bit, as glibc would.
  trampoline: async ({ path, flags, mode }) =>
    rawReply(await syscall6(sys().openat, AT_FDCWD, cString(path), flags, mode)),
  worker: ({ path, flags, mode }) => libcReply(libc().open(cString(path), flags, mode)),
  // Nobody will ever see the fd of an abandoned open: close it rather than leak it.
  release(reply) {
    if (reply.errno === 0) syscall6(sys().close, reply.ret).catch(() => {});
  },
};
