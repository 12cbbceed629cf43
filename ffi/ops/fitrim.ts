/**
 * open(path, O_RDONLY|O_CLOEXEC), ioctl(FITRIM), close: discard the unused blocks of the
 * filesystem holding `path` (guest-fstrim).
 *
 * @module
 */

import { arch } from "../arch/mod.ts";
import {
  cString,
  errno,
  FITRIM,
  libc,
  O_CLOEXEC,
  O_RDONLY,
  type OsPath,
  strerror,
} from "../libc.ts";
import { AT_FDCWD, syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, isError } from "./op.ts";

/** The mount point to trim and the smallest free extent worth discarding. */
export interface FitrimArgs {
  path: OsPath;
  /** Bytes; the kernel may raise it to the device's discard granularity. */
  minlen: bigint;
}

/** What FITRIM did. */
export type FitrimResult =
  | {
    ok: true;
    /** Bytes discarded: the `len` the kernel wrote back. */
    trimmed: bigint;
    /** The `minlen` the kernel used (written back, possibly raised). */
    minlen: bigint;
  }
  | { ok: false; stage: "open" | "trim"; errno: number; strerror: string };

// Like qemu-ga's guest-fstrim: qga_open_cloexec(mount, O_RDONLY, 0).
const FLAGS = O_RDONLY | O_CLOEXEC;

/** `struct fstrim_range { start 0, len UINT64_MAX, minlen }`: the whole filesystem. */
function range(minlen: bigint): Uint8Array<ArrayBuffer> {
  const at = arch().layout.fstrimRange;
  const buf = new Uint8Array(at.size);
  const v = new DataView(buf.buffer);
  v.setBigUint64(at.start, 0n, true);
  v.setBigUint64(at.len, 0xffff_ffff_ffff_ffffn, true);
  v.setBigUint64(at.minlen, minlen, true);
  return buf;
}

function trimmed(buf: Uint8Array<ArrayBuffer>): FitrimResult {
  const at = arch().layout.fstrimRange;
  const v = new DataView(buf.buffer);
  return {
    ok: true,
    trimmed: v.getBigUint64(at.len, true),
    minlen: v.getBigUint64(at.minlen, true),
  };
}

function failure(stage: "open" | "trim", e: number): FitrimResult {
  return { ok: false, stage, errno: e, strerror: strerror(e) };
}

/** FITRIM on the filesystem holding `path`. */
export const fitrim: BlockingOp<FitrimArgs, FitrimResult> = {
  async trampoline({ path, minlen }, job) {
    const nr = arch().sys;
    const buf = range(minlen); // before the open: a bad minlen throws with no fd to leak
    const fd = await syscall6(nr.openat, AT_FDCWD, cString(path), FLAGS, 0);
    if (isError(fd)) return failure("open", Number(-fd));
    // Abandoned by shutdown() while opening: the caller was told it failed, so do not trim.
    const ret = job.abandoned ? 0n : await syscall6(nr.ioctl, fd, FITRIM, buf);
    await syscall6(nr.close, fd);
    return isError(ret) ? failure("trim", Number(-ret)) : trimmed(buf);
  },

  worker({ path, minlen }) {
    const c = libc();
    const buf = range(minlen);
    const fd = c.open(cString(path), FLAGS, 0);
    if (fd === -1) return failure("open", errno());
    const ret = c.ioctl_buffer(fd, BigInt(FITRIM), buf);
    const e = ret === -1 ? errno() : 0; // before close(), which may overwrite errno
    c.close(fd);
    return e === 0 ? trimmed(buf) : failure("trim", e);
  },
};
