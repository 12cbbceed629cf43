/**
 * The disk family's return types, member for member as newest qemu-ga's schema declares them
 * (qemu-ga-behaviour.md §1.3); the writer puts the members in QEMU's order.
 *
 * @module
 */

import { type Returned, t } from "../../dispatch/schema.ts";

/** GuestDiskBusType. */
export const guestDiskBusType = t.enumOf("GuestDiskBusType", [
  "ide",
  "fdc",
  "scsi",
  "virtio",
  "xen",
  "usb",
  "uml",
  "sata",
  "sd",
  "unknown",
  "ieee1394",
  "ssa",
  "fibre",
  "raid",
  "iscsi",
  "sas",
  "mmc",
  "virtual",
  "file-backed-virtual",
  "nvme",
]);

/** GuestPCIAddress (-1 in every member: unknown). */
export const guestPciAddress = t.struct("GuestPCIAddress", [
  { name: "domain", type: t.int },
  { name: "bus", type: t.int },
  { name: "slot", type: t.int },
  { name: "function", type: t.int },
]);

/** GuestCCWAddress (s390x). */
export const guestCcwAddress = t.struct("GuestCCWAddress", [
  { name: "cssid", type: t.int },
  { name: "ssid", type: t.int },
  { name: "subchno", type: t.int },
  { name: "devno", type: t.int },
]);

/** GuestDiskAddress. */
export const guestDiskAddress = t.struct("GuestDiskAddress", [
  { name: "pci-controller", type: guestPciAddress },
  { name: "bus-type", type: guestDiskBusType },
  { name: "bus", type: t.int },
  { name: "target", type: t.int },
  { name: "unit", type: t.int },
  { name: "serial", type: t.str, optional: true },
  { name: "dev", type: t.str, optional: true },
  { name: "ccw-address", type: guestCcwAddress, optional: true },
]);

const uint64 = <N extends string>(name: N) => ({ name, type: t.uint64 });

/**
 * GuestDiskSmart: a union on `type` whose only branch, `nvme`, flattens GuestNVMeSmart; declared
 * as that branch's struct.
 */
export const guestDiskSmart = t.struct("GuestDiskSmart", [
  { name: "type", type: guestDiskBusType },
  { name: "critical-warning", type: t.int },
  { name: "temperature", type: t.int },
  { name: "available-spare", type: t.int },
  { name: "available-spare-threshold", type: t.int },
  { name: "percentage-used", type: t.int },
  uint64("data-units-read-lo"),
  uint64("data-units-read-hi"),
  uint64("data-units-written-lo"),
  uint64("data-units-written-hi"),
  uint64("host-read-commands-lo"),
  uint64("host-read-commands-hi"),
  uint64("host-write-commands-lo"),
  uint64("host-write-commands-hi"),
  uint64("controller-busy-time-lo"),
  uint64("controller-busy-time-hi"),
  uint64("power-cycles-lo"),
  uint64("power-cycles-hi"),
  uint64("power-on-hours-lo"),
  uint64("power-on-hours-hi"),
  uint64("unsafe-shutdowns-lo"),
  uint64("unsafe-shutdowns-hi"),
  uint64("media-errors-lo"),
  uint64("media-errors-hi"),
  uint64("number-of-error-log-entries-lo"),
  uint64("number-of-error-log-entries-hi"),
]);

/** GuestDiskInfo. */
export const guestDiskInfo = t.struct("GuestDiskInfo", [
  { name: "name", type: t.str },
  { name: "partition", type: t.bool },
  { name: "dependencies", type: t.list(t.str), optional: true },
  { name: "address", type: guestDiskAddress, optional: true },
  { name: "alias", type: t.str, optional: true },
  { name: "smart", type: guestDiskSmart, optional: true },
]);

/** GuestFilesystemInfo. */
export const guestFilesystemInfo = t.struct("GuestFilesystemInfo", [
  { name: "name", type: t.str },
  { name: "mountpoint", type: t.str },
  { name: "type", type: t.str },
  { name: "used-bytes", type: t.uint64, optional: true },
  { name: "total-bytes", type: t.uint64, optional: true },
  { name: "total-bytes-privileged", type: t.uint64, optional: true },
  { name: "disk", type: t.list(guestDiskAddress) },
]);

/** GuestFilesystemTrimResult. */
export const guestFilesystemTrimResult = t.struct("GuestFilesystemTrimResult", [
  { name: "path", type: t.str },
  { name: "trimmed", type: t.int, optional: true },
  { name: "minimum", type: t.int, optional: true },
  { name: "error", type: t.str, optional: true },
]);

/** GuestFilesystemTrimResponse. */
export const guestFilesystemTrimResponse = t.struct("GuestFilesystemTrimResponse", [
  { name: "paths", type: t.list(guestFilesystemTrimResult) },
]);

/** A GuestDiskAddress as the commands return it. */
export type DiskAddress = Returned<typeof guestDiskAddress>;
/** A GuestDiskBusType value. */
export type DiskBusType = Returned<typeof guestDiskBusType>;
/** A GuestDiskSmart as guest-get-disks returns it. */
export type DiskSmart = Returned<typeof guestDiskSmart>;
/** A GuestDiskInfo as guest-get-disks returns it. */
export type DiskInfo = Returned<typeof guestDiskInfo>;
/** A GuestFilesystemInfo as guest-get-fsinfo returns it. */
export type FilesystemInfo = Returned<typeof guestFilesystemInfo>;
/** A GuestFilesystemTrimResult as guest-fstrim returns it. */
export type TrimResult = Returned<typeof guestFilesystemTrimResult>;
