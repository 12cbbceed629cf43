/**
 * What qemu-ga (built with libudev) asks udev about a block device, answered from the same files
 * libudev reads: the device's sysfs `uevent` (the device node, `DEVNAME`) and udev's database
 * entry `/run/udev/data/b<major>:<minor>` (`ID_SERIAL`, `DM_NAME`). Without udev running the
 * database is absent: nodes are still known, serials and aliases are not — as with qemu-ga.
 *
 * @module
 */

import type { OsFiles } from "../../platform/files.ts";
import { parseUdevDb, udevDbPath } from "../../system/udev_db.ts";
import { devnodeOf, parseUevent } from "../../system/uevent.ts";

/** A device as libudev's `udev_device_new_from_syspath` sees it. */
export interface UdevDevice {
  /** `udev_device_get_devnode`: `/dev/vda`, or undefined. */
  readonly devnode: string | undefined;
  /** `udev_device_get_property_value`: database properties over uevent ones. */
  property(name: string): string | undefined;
}

/**
 * The device at `syspath` (any path leading to its sysfs directory), or undefined where libudev
 * refuses one: the path does not resolve, or resolves under /sys/devices without a `uevent`.
 */
export async function udevDevice(os: OsFiles, syspath: string): Promise<UdevDevice | undefined> {
  let real: string;
  try {
    real = await os.realPath(syspath);
  } catch {
    return undefined;
  }
  return await udevDeviceAt(os, real);
}

/** {@link udevDevice} of a path already resolved (realpath'ed). */
export async function udevDeviceAt(os: OsFiles, real: string): Promise<UdevDevice | undefined> {
  const [ueventData, kind] = await Promise.all([
    os.readFile(`${real}/uevent`).catch(() => undefined),
    subsystemLetter(os, real),
  ]);
  let uevent: Map<string, string>;
  if (ueventData !== undefined) {
    uevent = parseUevent(ueventData);
  } else {
    // libudev requires the file only under /sys/devices; elsewhere nothing is known about it.
    if (real.startsWith("/sys/devices/")) return undefined;
    uevent = new Map();
  }
  const props = new Map(uevent);
  const major = uevent.get("MAJOR");
  const minor = uevent.get("MINOR");
  if (major !== undefined && minor !== undefined && kind !== undefined) {
    try {
      const db = await os.readFile(udevDbPath(kind, Number(major), Number(minor)));
      for (const [k, v] of parseUdevDb(db)) props.set(k, v);
    } catch {
      // no database entry: udev is not running, or has not seen the device
    }
  }
  return { devnode: devnodeOf(uevent), property: (name) => props.get(name) };
}

/** libudev names a device's database entry after its subsystem: `b` for block, `c` otherwise. */
async function subsystemLetter(os: OsFiles, syspath: string): Promise<"b" | "c" | undefined> {
  try {
    const link = await os.readLink(`${syspath}/subsystem`);
    return link.slice(link.lastIndexOf("/") + 1) === "block" ? "b" : "c";
  } catch {
    return undefined; // no subsystem: libudev cannot name the entry
  }
}
