/**
 * From a sysfs block device to the GuestDiskAddress list qemu-ga reports for it
 * (`build_guest_fsinfo_for_device` and what it calls, qga/commands-linux.c): device-mapper and
 * other virtual devices are followed through `slaves/`, real ones are decoded from their sysfs
 * path and the driver bound to the PCI function above them, with `dev` and `serial` from udev.
 *
 * Every read goes through the `os` facet given, so unit tests run this walk over fake sysfs trees
 * and the agent runs it over the real /sys.
 *
 * @module
 */

import {
  lookUpKey,
  type OsFiles,
  type OsLookUp,
  type OsLookUpResult,
  toOsFileError,
  withKnown,
} from "../../platform/files.ts";
import { udevDbPath } from "../../system/udev_db.ts";
import {
  ccwAddress,
  hostNumberOfEntry,
  hostOfPath,
  type PciAddress,
  pciNextFunction,
  pciRootFunction,
  scsiTarget,
} from "../../system/sysfs_disk_path.ts";
import type { DiskAddress, DiskBusType } from "./types.ts";
import { udevDeviceAt } from "./udev.ts";

const ENOENT = 2;

/** The PCI drivers qemu-ga knows how to address disks behind. */
const KNOWN_DRIVERS = new Set([
  "ata_piix",
  "sym53c8xx",
  "virtio-pci",
  "ahci",
  "nvme",
  "xhci_hcd",
  "ehci-pci",
]);

/** qemu-ga keeps at most this many host numbers of a controller (`hosts[8]`). */
const MAX_HOSTS = 8;

/** What the walk gathers for one device (qemu-ga fills a GuestFilesystemInfo the same way). */
export interface DeviceWalk {
  /** Basename of the first device's resolved sysfs path (`vda1`, `dm-0`, `loop0`). */
  name?: string;
  /** Addresses found, most recent first (qemu-ga prepends). */
  disks: DiskAddress[];
  /** The first error qemu-ga would have set; fsinfo fails with it, get-disks ignores it. */
  error?: string;
}

interface MutableAddress {
  "pci-controller": { domain: number; bus: number; slot: number; function: number };
  "bus-type": DiskBusType;
  bus: number;
  target: number;
  unit: number;
  serial?: string;
  dev?: string;
  "ccw-address"?: { cssid: number; ssid: number; subchno: number; devno: number };
}

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/**
 * Adds the addresses of the device at `devpath` (a path leading to its sysfs directory, e.g.
 * `/sys/dev/block/254:1` or `/sys/block/dm-0/slaves/vda2`) to `walk`.
 */
export async function walkDevice(os: OsFiles, devpath: string, walk: DeviceWalk): Promise<void> {
  let syspath: string;
  try {
    syspath = await resolveDeviceLink(os, devpath);
  } catch (e) {
    const err = toOsFileError(e, devpath);
    if (err.errno !== ENOENT) {
      walk.error ??= `realpath("${devpath}"): ${err.text}`;
      return;
    }
    // The node may be missing in a container: the name is all qemu-ga reports then.
    walk.name ??= basename(devpath);
    return;
  }
  walk.name ??= basename(syspath);
  if (syspath.includes("/devices/virtual/block/")) {
    await walkVirtualDevice(os, syspath, walk);
  } else {
    await addRealDevice(os, syspath, walk);
  }
}

/**
 * realpath() of a sysfs device link: one readlink when the link's directory is known to hold no
 * symlinks (/sys/dev/block, a resolved device's `slaves/`) and the target is a relative path into
 * /sys/devices, as the kernel makes them; realpath otherwise.
 */
async function resolveDeviceLink(os: OsFiles, path: string): Promise<string> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir === "/sys/dev/block" || (dir.startsWith("/sys/devices/") && dir.endsWith("/slaves"))) {
    const target = await os.readLink(path).catch(() => undefined);
    const resolved = target === undefined ? undefined : sysfsLinkTarget(path, target);
    if (resolved !== undefined) return resolved;
  }
  return await os.realPath(path);
}

/**
 * Where the sysfs link at `path` with target `target` leads, when that needs no look-up: a
 * relative target into /sys/devices, from a directory without symlinks on the way.
 */
export function sysfsLinkTarget(path: string, target: string): string | undefined {
  if (target.startsWith("/")) return undefined;
  const parts = path.slice(0, path.lastIndexOf("/")).split("/");
  for (const part of target.split("/")) {
    if (part === "..") {
      if (parts.length > 1) parts.pop();
    } else if (part !== "." && part !== "") {
      parts.push(part);
    }
  }
  const resolved = parts.join("/");
  return resolved.startsWith("/sys/devices/") ? resolved : undefined;
}

/**
 * `os` with the files the walks of these devices begin with read ahead, in two look-ups
 * (`OsFiles.lookUp`) whatever the number of devices: first each device's /sys/dev/block link and,
 * through it, its `slaves/`; then, for the devices that are not virtual, their `uevent`,
 * `subsystem` link and udev database entry. Answers are kept under the paths the walk asks for
 * (the link's resolved target); the walk itself is unchanged.
 */
export async function readAhead(
  os: OsFiles,
  devices: readonly { devmajor: number; devminor: number }[],
): Promise<OsFiles> {
  if (os.lookUp === undefined) return os;
  const links = [...new Set(devices.map((d) => `${d.devmajor}:${d.devminor}`))];
  const first = await os.lookUp(links.flatMap((dev): OsLookUp[] => [
    { method: "readLink", path: `/sys/dev/block/${dev}` },
    { method: "readDir", path: `/sys/dev/block/${dev}/slaves` },
  ]));
  const known = new Map<string, OsLookUpResult>();
  const real: { dev: string; syspath: string }[] = [];
  links.forEach((dev, i) => {
    const link = `/sys/dev/block/${dev}`;
    const [self, slaves] = [first[2 * i], first[2 * i + 1]];
    known.set(lookUpKey("readLink", link), self);
    if (self !== undefined && "error" in self && self.error.errno === ENOENT) {
      known.set(lookUpKey("realPath", link), self); // no such link: realpath() fails alike
    }
    if (self === undefined || !("value" in self)) return;
    const syspath = sysfsLinkTarget(link, self.value as string);
    if (syspath === undefined) return;
    if (syspath.includes("/devices/virtual/block/")) {
      known.set(lookUpKey("readDir", `${syspath}/slaves`), slaves);
    } else {
      real.push({ dev, syspath });
    }
  });
  // The `driver` links of the PCI functions on each device's path, which a PCI walk reads.
  const drivers = [...new Set(real.flatMap(({ syspath }) => pciDriverLinks(syspath)))];
  if (real.length > 0) {
    const second = await os.lookUp(
      real.flatMap(({ dev }): OsLookUp[] => {
        const [major, minor] = dev.split(":").map(Number);
        return [
          { method: "readFile", path: `/sys/dev/block/${dev}/uevent` },
          { method: "readLink", path: `/sys/dev/block/${dev}/subsystem` },
          { method: "readFile", path: udevDbPath("b", major, minor) },
        ];
      }).concat(drivers.map((path) => ({ method: "readLink", path }))),
    );
    real.forEach(({ dev, syspath }, i) => {
      const [major, minor] = dev.split(":").map(Number);
      known.set(lookUpKey("readFile", `${syspath}/uevent`), second[3 * i]);
      known.set(lookUpKey("readLink", `${syspath}/subsystem`), second[3 * i + 1]);
      known.set(lookUpKey("readFile", udevDbPath("b", major, minor)), second[3 * i + 2]);
    });
    drivers.forEach((path, i) => {
      known.set(lookUpKey("readLink", path), second[3 * real.length + i]);
    });
  }
  return withKnown(os, known);
}

/** The `driver` link of every PCI function on a device's sysfs path, root first. */
function pciDriverLinks(syspath: string): string[] {
  if (!syspath.includes("/devices/pci")) return [];
  const links: string[] = [];
  for (let f = pciRootFunction(syspath); f !== undefined; f = pciNextFunction(syspath, f.end)) {
    links.push(`${syspath.slice(0, f.end)}/driver`);
  }
  return links;
}

/** The look-ups the last fsinfo made, per file facet: what the next one most likely needs. */
const lastLookUps = new WeakMap<object, { list: readonly OsLookUp[]; mountTable: number }>();

/** Most look-ups of the last poll read ahead with the mount table. */
const SPECULATE_AT_MOST = 64;

/** The mount table fsinfo reads (the `mounts` facet's). */
const MOUNTINFO = "/proc/self/mountinfo";

/**
 * `os` with the mount table and everything the last fsinfo looked up read in one look-up; a
 * walk then asks only what that did not cover. Nothing is kept from one poll to the next but
 * the list of paths: every answer is read anew.
 */
export async function readAheadAsLastTime(os: OsFiles): Promise<OsFiles> {
  if (os.lookUp === undefined) return os;
  const last = lastLookUps.get(os);
  // The table's size last time, with room to grow: one read takes it all. Past a few devices
  // the hop saved no longer pays for answering every walk through one more layer.
  const size = Math.max(16384, 2 * (last?.mountTable ?? 0));
  const list: OsLookUp[] = (last?.list.length ?? 0) > SPECULATE_AT_MOST
    ? []
    : [{ method: "readFile", path: MOUNTINFO, size }, ...last?.list ?? []];
  const answers = list.length > 0 ? await os.lookUp(list) : [];
  const known = new Map<string, OsLookUpResult>();
  list.forEach((l, i) => known.set(lookUpKey(l.method, l.path), answers[i]));
  const table = answers[0];
  const mountTable = table !== undefined && "value" in table
    ? (table.value as Uint8Array).length
    : last?.mountTable ?? 0;
  const ahead = withKnown(os, known);
  const asked: OsLookUp[] = [];
  lastLookUps.set(os, { list: asked, mountTable });
  return {
    ...ahead,
    lookUp: (more) => {
      asked.push(...more);
      return ahead.lookUp!(more);
    },
  };
}

/** A virtual device (dm, md, loop, partitions of them): its `slaves/` symlinks, in turn. */
async function walkVirtualDevice(os: OsFiles, syspath: string, walk: DeviceWalk): Promise<void> {
  const dir = `${syspath}/slaves`;
  let names: string[];
  try {
    names = await os.readDir(dir);
  } catch (e) {
    const err = toOsFileError(e, dir);
    if (err.errno !== ENOENT) walk.error ??= `opendir("${dir}"): ${err.text}`;
    return;
  }
  for (const name of names) {
    const path = `${dir}/${name}`;
    if (!await isSymlink(os, path)) continue;
    await walkDevice(os, path, walk);
    if (walk.error !== undefined) return;
  }
}

async function isSymlink(os: OsFiles, path: string): Promise<boolean> {
  try {
    return (await os.lstat(path)).isSymlink;
  } catch {
    return false;
  }
}

/** A real device: one address, kept when anything about it is known. */
async function addRealDevice(os: OsFiles, syspath: string, walk: DeviceWalk): Promise<void> {
  const disk: MutableAddress = {
    "pci-controller": { domain: -1, bus: -1, slot: -1, function: -1 },
    "bus-type": "unknown",
    bus: 0,
    target: 0,
    unit: 0,
  };
  const udev = await udevDeviceAt(os, syspath);
  if (udev !== undefined) {
    if (udev.devnode !== undefined) disk.dev = udev.devnode;
    const serial = udev.property("ID_SERIAL");
    if (serial !== undefined && serial !== "") disk.serial = serial;
  }
  let known: boolean;
  if (syspath.includes("/devices/pci")) {
    known = await decodePciDisk(os, syspath, disk, walk);
  } else if (syspath.includes("/devices/css")) {
    known = decodeCcwDisk(syspath, disk);
  } else if (syspath.includes("/virtio")) {
    known = decodeNonPciVirtio(syspath, disk);
  } else {
    known = false;
  }
  if (known || disk.dev !== undefined || disk.serial !== undefined) walk.disks.unshift(disk);
}

/** The driver bound to the PCI function whose sysfs directory is `dir`. */
async function pciDriver(os: OsFiles, dir: string): Promise<string | undefined> {
  try {
    return basename(await os.readLink(`${dir}/driver`));
  } catch {
    return undefined;
  }
}

/**
 * A device below a PCI function: the address is the first function (walking down through
 * bridges) whose driver qemu-ga knows; the bus type and unit come from that driver and the SCSI
 * target or ATA/SCSI host in the path.
 */
async function decodePciDisk(
  os: OsFiles,
  syspath: string,
  disk: MutableAddress,
  walk: DeviceWalk,
): Promise<boolean> {
  const root = pciRootFunction(syspath);
  if (root === undefined) return false;
  let pci: PciAddress = root.pci;
  let end = root.end;
  let driver: string | undefined;
  for (;;) {
    driver = await pciDriver(os, syspath.slice(0, end));
    if (driver !== undefined && KNOWN_DRIVERS.has(driver)) break;
    const next = pciNextFunction(syspath, end);
    if (next === undefined) return false;
    ({ pci, end } = next);
  }

  const target = scsiTarget(syspath);
  const host = hostOfPath(syspath);
  let hosts: number[] = [];
  if (host?.host !== undefined) {
    const listed = await hostNumbers(os, host.dir, host.ata);
    if (typeof listed === "string") {
      walk.error ??= listed;
      return false;
    }
    hosts = listed;
  }
  const hostIndex = host?.host === undefined ? -1 : hosts.indexOf(host.host);
  // The address is set even when the driver's checks below fail.
  disk["pci-controller"] = { domain: pci[0], bus: pci[1], slot: pci[2], function: pci[3] };

  switch (driver) {
    case "ata_piix": // a host per IDE bus; target*:0:<unit>:0
      if (target === undefined || hostIndex === -1) return false;
      disk["bus-type"] = "ide";
      disk.bus = hostIndex;
      disk.unit = target[1];
      return true;
    case "sym53c8xx": // LSI Logic SCSI: target*:0:<unit>:0
      if (target === undefined) return false;
      disk["bus-type"] = "scsi";
      disk.unit = target[1];
      return true;
    case "virtio-pci":
      if (target !== undefined) { // virtio-scsi: target*:0:0:<unit>
        disk["bus-type"] = "scsi";
        disk.unit = target[2];
      } else { // virtio-blk: one disk per device
        disk["bus-type"] = "virtio";
      }
      return true;
    case "ahci": // one host per unit
      if (target === undefined || hostIndex === -1) return false;
      disk["bus-type"] = "sata";
      disk.unit = hostIndex;
      return true;
    case "nvme":
      disk["bus-type"] = "nvme";
      return true;
    default: // xhci_hcd, ehci-pci
      disk["bus-type"] = "usb";
      return true;
  }
}

/**
 * qemu-ga's `build_hosts`: the `ata<N>` or `host<N>` numbers among the first entries of `dir`
 * (at most eight, in directory order), sorted; the error text when `dir` cannot be listed.
 */
async function hostNumbers(os: OsFiles, dir: string, ata: boolean): Promise<number[] | string> {
  let names: string[];
  try {
    names = await os.readDir(dir);
  } catch (e) {
    return `opendir("${dir}"): ${toOsFileError(e, dir).text}`;
  }
  const hosts: number[] = [];
  for (const name of names) {
    if (hosts.length === MAX_HOSTS) break;
    const n = hostNumberOfEntry(name, ata);
    if (n !== undefined) hosts.push(n);
  }
  return hosts.sort((a, b) => a - b);
}

/** An s390x channel-I/O device: its CCW address, plus the virtio decoding when it is one. */
function decodeCcwDisk(syspath: string, disk: MutableAddress): boolean {
  const found = ccwAddress(syspath);
  if (found === undefined) return false;
  disk["ccw-address"] = { ...found.ccw };
  if (found.rest.includes("/virtio")) decodeNonPciVirtio(syspath, disk);
  return true;
}

/** A virtio device not on PCI (virtio-mmio, CCW). */
function decodeNonPciVirtio(syspath: string, disk: MutableAddress): boolean {
  if (!syspath.includes("/virtio") || !syspath.includes("/block")) return false;
  const target = scsiTarget(syspath);
  if (target !== undefined) { // virtio-scsi: target*:0:<target>:<unit>
    disk["bus-type"] = "scsi";
    [disk.bus, disk.target, disk.unit] = target;
  } else {
    disk["bus-type"] = "virtio";
  }
  return true;
}
