/**
 * lib/system/sysfs_disk_path.ts: qemu-ga's strstr + sscanf readings of sysfs device paths, on
 * the paths in tests/fixtures/sysfs_disk_path/paths.txt (real layouts and odd ones).
 */

import { assertEquals } from "../assert.ts";
import {
  ccwAddress,
  hostNumberOfEntry,
  hostOfPath,
  pciNextFunction,
  pciRootFunction,
  scanf,
  scsiTarget,
} from "../../lib/system/sysfs_disk_path.ts";

const PATHS = Deno.readTextFileSync(
  new URL("../fixtures/sysfs_disk_path/paths.txt", import.meta.url),
).split("\n").filter((l) => l.startsWith("/"));

/** Everything the module reads out of one path, with PCI functions walked like qemu-ga. */
function reading(path: string) {
  const root = pciRootFunction(path);
  const functions = [];
  for (let f = root; f !== undefined; f = pciNextFunction(path, f.end)) {
    functions.push(f.pci.join(","));
  }
  return {
    functions,
    rest: root === undefined ? undefined : path.slice(root.end),
    target: scsiTarget(path),
    host: hostOfPath(path),
    ccw: ccwAddress(path)?.ccw,
  };
}

const PCI0 = "/sys/devices/pci0000:00";

Deno.test("sysfs paths: each fixture path read as qemu-ga reads it", () => {
  assertEquals(PATHS.map(reading), [
    { // virtio-blk
      functions: ["0,0,2,0"],
      rest: "/virtio1/block/vda",
      target: undefined,
      host: undefined,
      ccw: undefined,
    },
    { // virtio-scsi: channel 0, target 1, lun 3; SCSI host 2
      functions: ["0,0,5,0"],
      rest: "/virtio2/host2/target2:0:1/2:0:1:3/block/sdb",
      target: [0, 1, 3],
      host: { ata: false, dir: `${PCI0}/0000:00:05.0/virtio2`, host: 2 },
      ccw: undefined,
    },
    { // AHCI partition: ATA port 3
      functions: ["0,0,31,2"],
      rest: "/ata3/host2/target2:0:0/2:0:0:0/block/sda/sda1",
      target: [0, 0, 0],
      host: { ata: true, dir: `${PCI0}/0000:00:1f.2`, host: 3 },
      ccw: undefined,
    },
    { // behind a PCIe root port: both functions, qemu-ga picks by driver
      functions: ["0,0,28,0", "0,1,0,0"],
      rest: "/0000:01:00.0/virtio4/block/vde",
      target: undefined,
      host: undefined,
      ccw: undefined,
    },
    { // USB storage on a second root bus
      functions: ["0,16,29,0"],
      rest: "/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdd",
      target: [0, 0, 0],
      host: {
        ata: false,
        dir: "/sys/devices/pci0000:10/0000:10:1d.0/usb2/2-1/2-1:1.0",
        host: 6,
      },
      ccw: undefined,
    },
    { // s390x CCW
      functions: [],
      rest: undefined,
      target: undefined,
      host: undefined,
      ccw: { cssid: 0, ssid: 0, subchno: 2, devno: 3 },
    },
    { // virtio-mmio: nothing PCI
      functions: [],
      rest: undefined,
      target: undefined,
      host: undefined,
      ccw: undefined,
    },
    { // odd: %x takes a 0x prefix, %u a sign (stored unsigned), /ata wins over /host
      functions: ["0,0,31,2"],
      rest: "/ata-1/host/block/sdz",
      target: undefined,
      host: { ata: true, dir: `${PCI0}/0000:00:0x1f.2`, host: 4294967295 },
      ccw: undefined,
    },
    { // device-mapper
      functions: [],
      rest: undefined,
      target: undefined,
      host: undefined,
      ccw: undefined,
    },
  ]);
});

Deno.test("sysfs paths: host numbers of sibling entries", () => {
  assertEquals(hostNumberOfEntry("ata1", true), 1);
  assertEquals(hostNumberOfEntry("ata12", true), 12);
  assertEquals(hostNumberOfEntry("ata 3", true), 3); // %d skips blanks
  assertEquals(hostNumberOfEntry("ata", true), undefined);
  assertEquals(hostNumberOfEntry("atab", true), undefined);
  assertEquals(hostNumberOfEntry("host0", true), undefined);
  assertEquals(hostNumberOfEntry("host7", false), 7);
  assertEquals(hostNumberOfEntry("ata1", false), undefined);
});

Deno.test("sysfs paths: a missing /ata number does not fall back to /host", () => {
  assertEquals(hostOfPath("/sys/devices/x/ata/host2/block/sda"), {
    ata: true,
    dir: "/sys/devices/x",
    host: undefined,
  });
});

Deno.test("scanf: stops at the first mismatch, %n only when reached", () => {
  assertEquals(scanf("1:2/3", 0, "%u:%u:%u"), { values: [1, 2], n: undefined });
  assertEquals(scanf("ff.1x", 0, "%x.%x%n"), { values: [255, 1], n: 4 });
  assertEquals(scanf("99999999999999999999999", 0, "%u").values, [4294967295]);
  assertEquals(scanf("-2", 0, "%u").values, [4294967294]);
});
