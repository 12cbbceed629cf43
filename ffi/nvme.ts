/**
 * The SMART / Health Information log page of an NVMe disk, off the event loop (`runBlocking`):
 * what guest-get-disks attaches to each NVMe disk as `smart`. The admin command goes to the
 * controller and waits for its completion; a controller that stops answering holds only this
 * call.
 *
 * The command layer decodes the page (lib/system/nvme_smart.ts); any failure means "no smart",
 * as in qemu-ga.
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import type { OsPath } from "./libc.ts";
import type { NvmeSmartResult } from "./ops/nvme_smart.ts";

export type { NvmeSmartResult } from "./ops/nvme_smart.ts";

/**
 * open(device, O_RDONLY|O_CLOEXEC), ioctl(NVME_IOCTL_ADMIN_CMD, Get Log Page 0x02 for nsid
 * 0xffffffff, 512 bytes, cdw10 0x007F8002), close. Resolves the 512-byte page, or which step
 * failed with its errno (or the NVMe status the controller answered).
 *
 * @example
 * ```ts
 * async function criticalWarning(device: string): Promise<number | undefined> {
 *   const r = await nvmeSmartLog(device);
 *   return r.ok ? new Uint8Array(r.log)[0] : undefined;
 * }
 * ```
 */
export function nvmeSmartLog(device: OsPath): Promise<NvmeSmartResult> {
  return runBlocking({ op: "nvmeSmart", path: device });
}
