/**
 * The `disks` facet: statvfs and FITRIM of one mount point, and the SMART log of an NVMe disk,
 * all off the event loop through `ffi/` (a filesystem or controller that stops answering holds
 * only its own call).
 *
 * @module
 */

import type { FitrimResult } from "../../ffi/fitrim.ts";
import type { OsPath } from "../../ffi/libc.ts";
import type { NvmeSmartResult } from "../../ffi/nvme.ts";
import type { StatfsResult } from "../../ffi/statfs.ts";
import { fitrim } from "../../ffi/fitrim.ts";
import { nvmeSmartLog } from "../../ffi/nvme.ts";
import { statfs } from "../../ffi/statfs.ts";
import { lookUp } from "../../ffi/sysfs.ts";

export type { FitrimResult, NvmeSmartResult, StatfsResult };

/** The facet. */
export interface DiskSyscalls {
  /** statfs(path), with statvfs's f_frsize rule. */
  statfs(path: OsPath): Promise<StatfsResult>;
  /**
   * statfs of each path, in path order, in one operation (one native system call chain): what
   * many mounts cost one hop for. Optional: without it, callers use {@link statfs} per path.
   */
  statfsAll?(paths: readonly OsPath[]): Promise<StatfsResult[]>;
  /**
   * open(mountpoint, O_RDONLY|O_CLOEXEC), ioctl(FITRIM, {start 0, len max, minlen}), close; the
   * kernel's updated range: bytes trimmed and the minimum it applied.
   */
  fitrim(mountpoint: OsPath, minlen: bigint): Promise<FitrimResult>;
  /**
   * open(device, O_RDONLY|O_CLOEXEC), NVMe admin command Get Log Page (SMART / Health
   * Information, 512 bytes), close; the raw page.
   */
  nvmeSmart(device: OsPath): Promise<NvmeSmartResult>;
}

/** The real facet (loaded lazily by `systemPlatform`, so the imports above cost nothing early). */
export const diskSyscalls: DiskSyscalls = {
  statfs,
  fitrim,
  nvmeSmart: nvmeSmartLog,
  statfsAll: async (paths) =>
    (await lookUp(paths.map((path) => ({ kind: "statfs", path })))).map((a) => a.statfs!),
};
