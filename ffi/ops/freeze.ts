/**
 * open(path, O_RDONLY|O_CLOEXEC), ioctl(FIFREEZE), close (qemu-ga-behaviour.md §3.4).
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { cString, errno, FIFREEZE, libc, O_CLOEXEC, O_RDONLY, type OsPath } from "../libc.ts";
import { AT_FDCWD, syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, failed, isError, type SyscallReply } from "./op.ts";

/** The mount point to freeze. */
export interface FreezeArgs {
  path: OsPath;
}

/** `ret` 0, or -1 with `errno` and the step that failed. */
export interface FreezeReply extends SyscallReply {
  /** Which step set `errno`. */
  stage?: "open" | "freeze";
}

// qemu-ga: qga_open_cloexec(dirname, O_RDONLY, 0) (§3.4; O_CLOEXEC keeps the fd out of
// guest-exec children, §4.2).
const FLAGS = O_RDONLY | O_CLOEXEC;

/** FIFREEZE on the filesystem holding `path`. */
export const freeze: BlockingOp<FreezeArgs, FreezeReply> = {
  async trampoline({ path }, job) {
    const nr = sys();
    const fd = await syscall6(nr.openat, AT_FDCWD, cString(path), FLAGS, 0);
    if (isError(fd)) return failed(-1, Number(-fd), { stage: "open" as const });
    // Abandoned by shutdown() while opening: the caller was told it failed, so do not freeze.
    const ret = job.abandoned ? 0n : await syscall6(nr.ioctl, fd, FIFREEZE, 0);
    await syscall6(nr.close, fd);
    return isError(ret)
      ? failed(-1, Number(-ret), { stage: "freeze" as const })
      : { ret: 0, errno: 0 };
  },

  worker({ path }) {
    const c = libc();
    const fd = c.open(cString(path), FLAGS, 0);
    if (fd === -1) return failed(-1, errno(), { stage: "open" as const });
    const ret = c.ioctl(fd, BigInt(FIFREEZE), 0n);
    const e = ret === -1 ? errno() : 0; // before close(), which may overwrite errno
    c.close(fd);
    return e === 0 ? { ret: 0, errno: 0 } : failed(-1, e, { stage: "freeze" as const });
  },
};
