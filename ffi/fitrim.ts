/**
 * FITRIM on one mount point, off the event loop (`runBlocking`): what guest-fstrim does per
 * filesystem. A trim can take long (it discards every free extent) or hang with the device; the
 * agent keeps answering meanwhile.
 *
 * The command layer maps failures to qemu-ga's texts (ENOTTY/EOPNOTSUPP from the ioctl: "trim
 * not supported").
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import type { OsPath } from "./libc.ts";
import type { FitrimResult } from "./ops/fitrim.ts";

export type { FitrimResult } from "./ops/fitrim.ts";

/**
 * open(mountpoint, O_RDONLY|O_CLOEXEC), ioctl(FITRIM, {start 0, len UINT64_MAX, minlen}), close.
 * Resolves the bytes trimmed and the minlen the kernel used, or which step failed with its errno.
 *
 * @throws RangeError (as a rejection) when `minlen` is not a u64.
 *
 * @example
 * ```ts
 * async function trimmedBytes(mountpoint: string): Promise<bigint> {
 *   const r = await fitrim(mountpoint, 0n);
 *   return r.ok ? r.trimmed : 0n;
 * }
 * ```
 */
export function fitrim(mountpoint: OsPath, minlen: bigint): Promise<FitrimResult> {
  if (typeof minlen !== "bigint" || minlen < 0n || minlen > 0xffff_ffff_ffff_ffffn) {
    return Promise.reject(new RangeError(`bad minlen ${minlen}`));
  }
  return runBlocking({ op: "fitrim", path: mountpoint, minlen });
}
