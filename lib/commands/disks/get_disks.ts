/**
 * guest-get-disks (§3.9; qemu-ga's `qmp_guest_get_disks` with libudev): every `/sys/block` entry
 * of non-zero size as its device node, its udev alias (`DM_NAME`), its address when it is not a
 * virtual device, its `slaves/` as dependencies, then its partitions (`<disk>N`, `<disk>pN`)
 * with the disk as their dependency. The list comes out newest first, as qemu-ga prepends.
 *
 * A disk whose address says bus type `nvme` also gets its SMART / Health log page as `smart`
 * (read through the `disks` facet); when that fails qemu-ga only logs it, so `smart` is omitted.
 *
 * @module
 */

import { genericError } from "../../errors.ts";
import type { DiskSyscalls } from "../../platform/disks.ts";
import {
  ATTRIBUTE_READ_AHEAD,
  DT_DIR,
  DT_LNK,
  type OsDirEntry,
  type OsFiles,
  toOsFileError,
  withLookedUp,
} from "../../platform/files.ts";
import { parseNvmeSmartLog } from "../../system/nvme_smart.ts";
import { walkDevice } from "./address.ts";
import type { DiskAddress, DiskInfo, DiskSmart } from "./types.ts";
import { udevDevice } from "./udev.ts";

const decoder = new TextDecoder();

interface MutableDiskInfo {
  name: string;
  partition: boolean;
  dependencies?: string[];
  address?: DiskAddress;
  alias?: string;
  smart?: DiskSmart;
}

/** The whole reply. */
export async function listDisks(fs: OsFiles, syscalls: DiskSyscalls): Promise<DiskInfo[]> {
  let entries: OsDirEntry[];
  try {
    entries = await fs.readDirEntries("/sys/block");
  } catch (e) {
    const text = toOsFileError(e, "/sys/block").text;
    throw genericError(`Can't open directory "/sys/block": ${text}`);
  }
  const names = entries.filter((e) => e.type === DT_LNK).map((e) => e.name);
  // Every size in one look-up: a guest may have hundreds of (mostly empty) loop devices.
  const os = await withLookedUp(
    fs,
    names.map((name) => ({
      method: "readFile",
      path: `/sys/block/${name}/size`,
      size: ATTRIBUTE_READ_AHEAD,
    })),
  );
  const list: MutableDiskInfo[] = [];
  for (const name of names) {
    let size: string;
    try {
      size = decoder.decode(await os.readFile(`/sys/block/${name}/size`));
    } catch {
      continue;
    }
    if (size === "0\n") continue;
    const diskDir = `/sys/block/${name}`;
    const udev = await udevDevice(os, diskDir);
    if (udev?.devnode === undefined) continue;
    const disk: MutableDiskInfo = { name: udev.devnode, partition: false };
    const alias = udev.property("DM_NAME");
    if (alias !== undefined && alias !== "") disk.alias = alias;
    list.unshift(disk);

    if (!await isVirtual(os, diskDir)) {
      const walk = { disks: [] };
      // Errors are only logged by qemu-ga; whatever address was found is kept.
      await walkDevice(os, diskDir, walk);
      disk.address = walk.disks[0];
    }
    disk.dependencies = await dependencies(os, diskDir);
    if (disk.address?.["bus-type"] === "nvme") disk.smart = await nvmeSmart(syscalls, disk.name);
    list.unshift(...(await partitions(os, name, diskDir, udev.devnode)).toReversed());
  }
  return list;
}

/** The disk's SMART log page as GuestDiskSmart; undefined when it cannot be read. */
async function nvmeSmart(syscalls: DiskSyscalls, device: string): Promise<DiskSmart | undefined> {
  const r = await syscalls.nvmeSmart(device);
  if (!r.ok) return undefined;
  const log = parseNvmeSmartLog(new Uint8Array(r.log));
  return {
    type: "nvme",
    "critical-warning": log.criticalWarning,
    temperature: log.temperature,
    "available-spare": log.availableSpare,
    "available-spare-threshold": log.availableSpareThreshold,
    "percentage-used": log.percentageUsed,
    "data-units-read-lo": log.dataUnitsRead.lo,
    "data-units-read-hi": log.dataUnitsRead.hi,
    "data-units-written-lo": log.dataUnitsWritten.lo,
    "data-units-written-hi": log.dataUnitsWritten.hi,
    "host-read-commands-lo": log.hostReadCommands.lo,
    "host-read-commands-hi": log.hostReadCommands.hi,
    "host-write-commands-lo": log.hostWriteCommands.lo,
    "host-write-commands-hi": log.hostWriteCommands.hi,
    "controller-busy-time-lo": log.controllerBusyTime.lo,
    "controller-busy-time-hi": log.controllerBusyTime.hi,
    "power-cycles-lo": log.powerCycles.lo,
    "power-cycles-hi": log.powerCycles.hi,
    "power-on-hours-lo": log.powerOnHours.lo,
    "power-on-hours-hi": log.powerOnHours.hi,
    "unsafe-shutdowns-lo": log.unsafeShutdowns.lo,
    "unsafe-shutdowns-hi": log.unsafeShutdowns.hi,
    "media-errors-lo": log.mediaErrors.lo,
    "media-errors-hi": log.mediaErrors.hi,
    "number-of-error-log-entries-lo": log.numberOfErrorLogEntries.lo,
    "number-of-error-log-entries-hi": log.numberOfErrorLogEntries.hi,
  };
}

/** A device under /sys/devices/virtual/block; one whose path cannot be resolved counts too. */
async function isVirtual(os: OsFiles, path: string): Promise<boolean> {
  try {
    return (await os.realPath(path)).includes("/devices/virtual/block/");
  } catch {
    return true;
  }
}

/** The device nodes of `slaves/`, newest first; undefined when there is no such directory. */
async function dependencies(os: OsFiles, diskDir: string): Promise<string[] | undefined> {
  const dir = `${diskDir}/slaves`;
  let names: string[];
  try {
    names = await os.readDir(dir);
  } catch {
    return undefined;
  }
  const deps: string[] = [];
  for (const name of names) {
    const node = (await udevDevice(os, `${dir}/${name}`))?.devnode;
    if (node !== undefined) deps.unshift(node);
  }
  return deps;
}

/** The partitions of a disk, in directory order. */
async function partitions(
  os: OsFiles,
  diskName: string,
  diskDir: string,
  diskNode: string,
): Promise<MutableDiskInfo[]> {
  let entries: OsDirEntry[];
  try {
    entries = await os.readDirEntries(diskDir);
  } catch {
    return [];
  }
  const found: MutableDiskInfo[] = [];
  for (const { name, type } of entries) {
    // qemu-ga's test of d_type, a bit block devices and sockets share.
    if ((type & DT_DIR) === 0 || !isPartitionName(diskName, name)) continue;
    const dir = `${diskDir}/${name}`;
    const node = (await udevDevice(os, dir))?.devnode;
    if (node === undefined) continue;
    found.push({ name: node, partition: true, dependencies: [diskNode] });
  }
  return found;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

/** `<disk><digit>…` or `<disk>p<digit>…`. */
export function isPartitionName(diskName: string, name: string): boolean {
  if (!name.startsWith(diskName)) return false;
  const rest = name.slice(diskName.length);
  return isDigit(rest[0]) || (rest[0] === "p" && isDigit(rest[1]));
}
