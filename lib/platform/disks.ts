/**
 * The `disks` facet: statvfs and FITRIM of one mount point, both off the event loop through
 * `ffi/` (a filesystem that stops answering holds only its own call).
 *
 * @module
 */

import type { OsPath } from "../../ffi/libc.ts";

/** What statfs(2) says about a filesystem (the members statvfs derives from it). */
export type StatfsResult =
  | { ok: true; bsize: bigint; frsize: bigint; blocks: bigint; bfree: bigint; bavail: bigint }
  | { ok: false; errno: number; strerror: string };

/** What open + FITRIM did on one mount point. */
export type FitrimResult =
  | { ok: true; trimmed: bigint; minlen: bigint }
  | { ok: false; stage: "open" | "trim"; errno: number; strerror: string };

/** The facet. */
export interface DiskSyscalls {
  /** statfs(path). */
  statfs(path: OsPath): Promise<StatfsResult>;
  /**
   * open(mountpoint, O_RDONLY|O_CLOEXEC), ioctl(FITRIM, {start 0, len max, minlen}), close; the
   * kernel's updated range: bytes trimmed and the minimum it applied.
   */
  fitrim(mountpoint: OsPath, minlen: bigint): Promise<FitrimResult>;
}

/**
 * The real facet. PLACEHOLDER until ffi/statfs.ts and ffi/fitrim.ts land (branch ffi-registry):
 * every call fails with ENOSYS, so fsinfo omits sizes and fstrim reports every path as failing.
 */
export const diskSyscalls: DiskSyscalls = {
  statfs: () => Promise.resolve({ ok: false, errno: 38, strerror: "Function not implemented" }),
  fitrim: () =>
    Promise.resolve({ ok: false, stage: "trim", errno: 38, strerror: "Function not implemented" }),
};
