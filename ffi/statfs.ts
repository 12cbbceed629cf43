/**
 * statfs(2) of one path, off the event loop (`runBlocking`): what guest-get-fsinfo needs for a
 * filesystem's sizes. A statfs on a hung network or FUSE filesystem may sleep in the kernel; the
 * agent keeps answering meanwhile.
 *
 * From the result, qemu-ga computes `used = (blocks - bfree) * frsize`,
 * `total = (used + bavail) * frsize` and the privileged total `blocks * frsize`.
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import type { OsPath } from "./libc.ts";
import type { StatfsResult } from "./ops/statfs.ts";

export type { StatfsResult } from "./ops/statfs.ts";

/**
 * Block size and block counts of the filesystem holding `path`; a failure (ENOENT, EACCES, …)
 * resolves `{ ok: false, errno, strerror }`.
 *
 * @example
 * ```ts
 * const r = await statfs("/");
 * if (r.ok) console.log(`${(r.blocks - r.bfree) * r.frsize} bytes used`);
 * ```
 */
export function statfs(path: OsPath): Promise<StatfsResult> {
  return runBlocking({ op: "statfs", path });
}
