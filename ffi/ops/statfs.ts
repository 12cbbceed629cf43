/**
 * statfs(path): block size and counts of the filesystem holding `path` (guest-get-fsinfo's used
 * and total bytes).
 *
 * @module
 */

import { arch } from "../arch/mod.ts";
import { cString, errno, libc, type OsPath, strerror } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, isError } from "./op.ts";

/** The path whose filesystem to describe. */
export interface StatfsArgs {
  path: OsPath;
}

/** What statfs reports (all counts in units of `frsize`, except as noted). */
export type StatfsResult =
  | {
    ok: true;
    /** f_type: the filesystem's magic number (e.g. 0xEF53 for ext2/3/4). */
    type: number;
    /** f_bsize: the optimal transfer block size. */
    bsize: bigint;
    /** f_frsize, or f_bsize when the kernel reports 0 (glibc's statvfs rule). */
    frsize: bigint;
    /** f_blocks: size of the filesystem. */
    blocks: bigint;
    /** f_bfree: free blocks. */
    bfree: bigint;
    /** f_bavail: free blocks available to unprivileged users. */
    bavail: bigint;
  }
  | { ok: false; errno: number; strerror: string };

/** Size of the `struct statfs` buffer (ffi/ops/chain.ts fills some too). */
export const STATFS_SIZE = (): number => arch().layout.statfs.size;

/** Decodes the `struct statfs` both halves fill in (the kernel's and glibc's are one layout). */
export function decodeStatfs(buf: Uint8Array<ArrayBuffer>): StatfsResult {
  const at = arch().layout.statfs;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bsize = v.getBigUint64(at.bsize, true);
  const frsize = v.getBigUint64(at.frsize, true);
  return {
    ok: true,
    type: Number(v.getBigUint64(at.type, true) & 0xffffffffn),
    bsize,
    // glibc's statvfs: f_frsize = statfs's f_frsize if set, else f_bsize (old kernels left it 0).
    frsize: frsize !== 0n ? frsize : bsize,
    blocks: v.getBigUint64(at.blocks, true),
    bfree: v.getBigUint64(at.bfree, true),
    bavail: v.getBigUint64(at.bavail, true),
  };
}

/** A failed statfs. */
export function statfsFailure(e: number): StatfsResult {
  return { ok: false, errno: e, strerror: strerror(e) };
}

/** statfs(2) of `path`. */
export const statfs: BlockingOp<StatfsArgs, StatfsResult> = {
  async trampoline({ path }) {
    const buf = new Uint8Array(arch().layout.statfs.size);
    const ret = await syscall6(arch().sys.statfs, cString(path), buf);
    return isError(ret) ? statfsFailure(Number(-ret)) : decodeStatfs(buf);
  },

  worker({ path }) {
    const buf = new Uint8Array(arch().layout.statfs.size);
    return libc().statfs(cString(path), buf) === -1 ? statfsFailure(errno()) : decodeStatfs(buf);
  },
};
