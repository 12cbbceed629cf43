/**
 * open(path, O_RDONLY|O_CLOEXEC), ioctl(FITHAW) until it fails, close (qemu-ga-behaviour.md
 * §3.4).
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { cString, errno, FITHAW, libc, O_CLOEXEC, O_RDONLY, type OsPath } from "../libc.ts";
import { AT_FDCWD, syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, failed, isError, type SyscallReply } from "./op.ts";

/** The mount point to thaw. */
export interface ThawArgs {
  path: OsPath;
}

/**
 * `ret` is the number of FITHAW calls that succeeded; `errno` that of the call that ended it
 * (the open, or the final FITHAW: normally EINVAL, "not frozen").
 */
export interface ThawReply extends SyscallReply {
  /** Which step set `errno`. */
  stage: "open" | "thaw";
}

const FLAGS = O_RDONLY | O_CLOEXEC;

// qemu-ga repeats FITHAW until it fails: nested FIFREEZEs by others each need one FITHAW, and the
// final error means the fs is thawed (§3.4). The kernel's freeze count is bounded, so this ends.
// Not cut short by shutdown(): thawing is always the safe direction.

/** FITHAW on the filesystem holding `path`, until it is thawed. */
export const thaw: BlockingOp<ThawArgs, ThawReply> = {
  async trampoline({ path }) {
    const nr = sys();
    const fd = await syscall6(nr.openat, AT_FDCWD, cString(path), FLAGS, 0);
    if (isError(fd)) return failed(0, Number(-fd), { stage: "open" as const });
    let successes = 0;
    let ret: bigint;
    while (!isError(ret = await syscall6(nr.ioctl, fd, FITHAW, 0))) successes++;
    await syscall6(nr.close, fd);
    return failed(successes, Number(-ret), { stage: "thaw" as const });
  },

  worker({ path }) {
    const c = libc();
    const fd = c.open(cString(path), FLAGS, 0);
    if (fd === -1) return failed(0, errno(), { stage: "open" as const });
    let successes = 0;
    while (c.ioctl(fd, BigInt(FITHAW), 0n) === 0) successes++;
    const e = errno();
    c.close(fd);
    return failed(successes, e, { stage: "thaw" as const });
  },
};
