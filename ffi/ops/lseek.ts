/**
 * lseek(fd, offset, whence), with 64-bit offsets.
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { errno, libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, failed, isError, type SyscallReply } from "./op.ts";

/** lseek(2)'s arguments. */
export interface LseekArgs {
  fd: number;
  offset: bigint;
  whence: number;
}

/** `ret` is the new offset, or -1n with `errno`. */
export const lseek: BlockingOp<LseekArgs, SyscallReply<bigint>> = {
  async trampoline({ fd, offset, whence }) {
    const pos = await syscall6(sys().lseek, fd, offset, whence);
    return isError(pos) ? failed(-1n, Number(-pos)) : { ret: pos, errno: 0 };
  },
  worker({ fd, offset, whence }) {
    const pos = libc().lseek(fd, offset, whence);
    return pos === -1n ? failed(-1n, errno()) : { ret: pos, errno: 0 };
  },
};
