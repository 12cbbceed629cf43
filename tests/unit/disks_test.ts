/**
 * guest-get-fsinfo, guest-get-disks and guest-fstrim over fake sysfs trees (tests/fixtures/
 * fake_sysfs.ts) laid out like real virtio-blk, virtio-scsi, AHCI, IDE, LSI SCSI, NVMe, USB,
 * device-mapper, loop, virtio-mmio and CCW devices, with fake statfs/FITRIM: the family's real
 * code through `osFiles(root)`. Never touches the host's disks.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { guestFstrim, guestGetDisks, guestGetFsinfo } from "../../lib/commands/disks/mod.ts";
import { isPartitionName } from "../../lib/commands/disks/get_disks.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import type { DiskSyscalls, FitrimResult, StatfsResult } from "../../lib/platform/disks.ts";
import { osFiles } from "../../lib/platform/files.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import type { MountEntry } from "../../lib/system/mounts.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import type { ReplyValue } from "../../lib/protocol/value.ts";
import { FakeSysfs } from "../fixtures/fake_sysfs.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function mount(dirname: string, devtype: string, devmajor: number, devminor: number): MountEntry {
  return { dirname, path: enc.encode(dirname), devtype, devmajor, devminor };
}

function agentOver(
  root: string,
  mounts: MountEntry[],
  disks: Partial<DiskSyscalls> = {},
): Agent {
  return new Agent({
    table: commandTable(),
    options: { blockedRpcs: [] },
    state: { dir: "/nonexistent" } as never,
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({
      os: osFiles(root),
      mounts: () => Promise.resolve(mounts),
      disks: {
        statfs: disks.statfs ?? (() => Promise.reject(new Error("statfs not expected"))),
        fitrim: disks.fitrim ?? (() => Promise.reject(new Error("fitrim not expected"))),
        // By default every NVMe disk's log page is unreadable, so `smart` is omitted.
        nvmeSmart: disks.nvmeSmart ??
          (() =>
            Promise.resolve({
              ok: false,
              stage: "ioctl",
              errno: 25,
              strerror: "Inappropriate ioctl for device",
            })),
      },
    }),
  });
}

const PCI = "/sys/devices/pci0000:00";
const VDA = `${PCI}/0000:00:02.0/virtio1/block/vda`;
const VDB = `${PCI}/0000:00:06.0/virtio3/block/vdb`;
const VDC = `${PCI}/0000:00:09.0/virtio5/block/vdc`;
const SDB_SCSI = `${PCI}/0000:00:05.0/virtio2/host2/target2:0:1/2:0:1:3/block/sdb`;
const SDA_AHCI = `${PCI}/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda`;
const SDC_IDE = `${PCI}/0000:00:01.1/ata2/host1/target1:0:1/1:0:1:0/block/sdc`;
const SDG_LSI = `${PCI}/0000:00:03.0/host7/target7:0:4/7:0:4:0/block/sdg`;
const NVME = `${PCI}/0000:00:04.0/nvme/nvme0/nvme0n1`;
const SDD_USB = `${PCI}/0000:00:1d.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdd`;
const SDE_UNKNOWN = `${PCI}/0000:00:07.0/host3/target3:0:0/3:0:0:0/block/sde`;
const SDF_LSI_NO_TARGET = `${PCI}/0000:00:08.0/host4/port-4:0/block/sdf`;
const VDE_BRIDGE = `${PCI}/0000:00:1c.0/0000:01:00.0/virtio4/block/vde`;
const VDF_MMIO = "/sys/devices/platform/a003e00.virtio_mmio/virtio0/block/vdf";
const VDG_CCW = "/sys/devices/css0/0.0.0002/0.0.0003/virtio1/block/vdg";
const DM0 = "/sys/devices/virtual/block/dm-0";
const DM1 = "/sys/devices/virtual/block/dm-1";
const LOOP0 = "/sys/devices/virtual/block/loop0";
const LOOP1 = "/sys/devices/virtual/block/loop1";

/** Every kind of device in one tree. */
async function fakeTree(): Promise<FakeSysfs> {
  const fs = await FakeSysfs.create();
  fs.driver(`${PCI}/0000:00:02.0`, "virtio-pci")
    .block({ path: VDA, major: 254, minor: 0, udev: { ID_SERIAL: "disk-a" } })
    .block({
      path: `${VDA}/vda1`,
      major: 254,
      minor: 1,
      devtype: "partition",
      udev: { ID_SERIAL: "disk-a", ID_PART_ENTRY_NUMBER: "1" },
    })
    .block({ path: `${VDA}/vda2`, major: 254, minor: 2, devtype: "partition" })
    .driver(`${PCI}/0000:00:06.0`, "virtio-pci")
    .block({ path: VDB, major: 254, minor: 16 })
    .block({ path: `${VDB}/vdb2`, major: 254, minor: 18, devtype: "partition" })
    .driver(`${PCI}/0000:00:09.0`, "virtio-pci")
    .block({ path: VDC, major: 254, minor: 32, udev: { ID_SERIAL: "" } })
    .driver(`${PCI}/0000:00:05.0`, "virtio-pci")
    .block({ path: SDB_SCSI, major: 8, minor: 16, udev: { ID_SERIAL: "0QEMU_QEMU_HARDDISK_sdb" } })
    .driver(`${PCI}/0000:00:1f.2`, "ahci");
  for (const n of [1, 2, 3, 4, 5, 6]) fs.dir(`${PCI}/0000:00:1f.2/ata${n}`);
  fs.block({ path: SDA_AHCI, major: 8, minor: 0 })
    .driver(`${PCI}/0000:00:01.1`, "ata_piix").dir(`${PCI}/0000:00:01.1/ata1`)
    .block({ path: SDC_IDE, major: 8, minor: 32 })
    .driver(`${PCI}/0000:00:03.0`, "sym53c8xx")
    .block({ path: SDG_LSI, major: 8, minor: 96 })
    .driver(`${PCI}/0000:00:04.0`, "nvme")
    .block({ path: NVME, major: 259, minor: 0 })
    .driver(`${PCI}/0000:00:1d.0`, "xhci_hcd")
    .block({ path: SDD_USB, major: 8, minor: 48, udev: { ID_SERIAL: "QEMU_HARDDISK_1-0000" } })
    .driver(`${PCI}/0000:00:07.0`, "megaraid_sas")
    .block({ path: SDE_UNKNOWN, major: 8, minor: 64 })
    .driver(`${PCI}/0000:00:08.0`, "sym53c8xx")
    .block({ path: SDF_LSI_NO_TARGET, major: 8, minor: 80 })
    .driver(`${PCI}/0000:00:1c.0`, "pcieport")
    .driver(`${PCI}/0000:00:1c.0/0000:01:00.0`, "virtio-pci")
    .block({ path: VDE_BRIDGE, major: 254, minor: 64 })
    .block({ path: VDF_MMIO, major: 254, minor: 80 })
    .block({ path: VDG_CCW, major: 254, minor: 96 })
    .block({ path: DM0, major: 253, minor: 0, slaves: [`${VDB}/vdb2`], udev: { DM_NAME: "vg-a" } })
    .block({ path: DM1, major: 253, minor: 1, slaves: [DM0, VDC], udev: { DM_NAME: "" } })
    .block({ path: LOOP0, major: 7, minor: 0, size: 0, slaves: [] })
    .block({ path: LOOP1, major: 7, minor: 1, slaves: [] })
    .block({ path: `${LOOP1}/loop1p1`, major: 259, minor: 1, devtype: "partition" });
  return fs;
}

const NO_PCI = { domain: -1, bus: -1, slot: -1, function: -1 };
const pci = (slot: number, fn = 0) => ({ domain: 0, bus: 0, slot, function: fn });
const addr = (
  busType: string,
  pciController: typeof NO_PCI,
  dev: string,
  more: Record<string, unknown> = {},
) => ({
  "pci-controller": pciController,
  "bus-type": busType,
  bus: 0,
  target: 0,
  unit: 0,
  dev,
  ...more,
});

/** What qemu-ga reports for each device (in fsinfo's `disk` and get-disks' `address`). */
const ADDRESS: Record<string, ReturnType<typeof addr>> = {
  vda: addr("virtio", pci(2), "/dev/vda", { serial: "disk-a" }),
  vda1: addr("virtio", pci(2), "/dev/vda1", { serial: "disk-a" }),
  vdb: addr("virtio", pci(6), "/dev/vdb"),
  vdb2: addr("virtio", pci(6), "/dev/vdb2"),
  vdc: addr("virtio", pci(9), "/dev/vdc"),
  sdb: addr("scsi", pci(5), "/dev/sdb", { unit: 3, serial: "0QEMU_QEMU_HARDDISK_sdb" }),
  sda: addr("sata", pci(0x1f, 2), "/dev/sda", { unit: 2 }),
  sdc: addr("ide", pci(1, 1), "/dev/sdc", { bus: 1, unit: 1 }),
  sdg: addr("scsi", pci(3), "/dev/sdg", { unit: 4 }),
  nvme0n1: addr("nvme", pci(4), "/dev/nvme0n1"),
  sdd: addr("usb", pci(0x1d), "/dev/sdd", { serial: "QEMU_HARDDISK_1-0000" }),
  sde: addr("unknown", NO_PCI, "/dev/sde"),
  // The driver is known but the path lacks a target: the PCI address stays, the type does not.
  sdf: addr("unknown", pci(8), "/dev/sdf"),
  vde: addr("virtio", { domain: 0, bus: 1, slot: 0, function: 0 }, "/dev/vde"),
  vdf: addr("virtio", NO_PCI, "/dev/vdf"),
  vdg: addr("virtio", NO_PCI, "/dev/vdg", {
    "ccw-address": { cssid: 0, ssid: 0, subchno: 2, devno: 3 },
  }),
};

/** JSON with bigints as numbers, for comparing replies with plain expectations. */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => typeof x === "bigint" ? Number(x) : x));
}

function readDirOrder(root: string, path: string): string[] {
  return [...Deno.readDirSync(root + path)].map((e) => e.name);
}

const STATFS: StatfsResult = {
  ok: true,
  type: 0xEF53,
  bsize: 4096n,
  frsize: 4096n,
  blocks: 1000n,
  bfree: 600n,
  bavail: 550n,
};

Deno.test("fsinfo: one entry per mount, reversed, each device kind decoded", async () => {
  const fs = await fakeTree();
  try {
    const cases: [MountEntry, string, unknown[]][] = [
      [mount("/", "ext4", 254, 1), "vda1", [ADDRESS.vda1]],
      [mount("/scsi", "xfs", 8, 16), "sdb", [ADDRESS.sdb]],
      [mount("/ahci", "ext4", 8, 0), "sda", [ADDRESS.sda]],
      [mount("/ide", "ext4", 8, 32), "sdc", [ADDRESS.sdc]],
      [mount("/lsi", "ext4", 8, 96), "sdg", [ADDRESS.sdg]],
      [mount("/nvme", "ext4", 259, 0), "nvme0n1", [ADDRESS.nvme0n1]],
      [mount("/usb", "vfat", 8, 48), "sdd", [ADDRESS.sdd]],
      [mount("/unknown", "ext4", 8, 64), "sde", [ADDRESS.sde]],
      [mount("/lsi-no-target", "ext4", 8, 80), "sdf", [ADDRESS.sdf]],
      [mount("/bridge", "ext4", 254, 64), "vde", [ADDRESS.vde]],
      [mount("/mmio", "ext4", 254, 80), "vdf", [ADDRESS.vdf]],
      [mount("/ccw", "ext4", 254, 96), "vdg", [ADDRESS.vdg]],
      [mount("/loop", "ext4", 7, 0), "loop0", []],
      [mount("/loop-part", "ext4", 259, 1), "loop1p1", []],
      // No /sys/dev/block link (a container): the numbers are the name.
      [mount("/container", "ext4", 8, 112), "8:112", []],
    ];
    const agent = agentOver(fs.root, cases.map(([m]) => m), {
      statfs: () => Promise.resolve(STATFS),
    });
    const reply = plain(await guestGetFsinfo.run({}, agent));
    const expected = cases.map(([m, name, disk]) => ({
      name,
      mountpoint: m.dirname,
      type: m.devtype,
      "used-bytes": 400 * 4096,
      "total-bytes": 950 * 4096,
      "total-bytes-privileged": 1000 * 4096,
      disk,
    })).toReversed();
    assertEquals(reply, expected);
  } finally {
    await fs.dispose();
  }
});

Deno.test("fsinfo: device-mapper is followed through slaves/, nested, newest slave first", async () => {
  const fs = await fakeTree();
  try {
    const agent = agentOver(fs.root, [mount("/", "ext4", 253, 1)], {
      statfs: () => Promise.resolve(STATFS),
    });
    const [entry] = plain(await guestGetFsinfo.run({}, agent)) as { name: string; disk: unknown }[];
    // dm-1 → (dm-0 → vdb2), vdc: each address prepended in the order slaves/ lists them.
    const disks: unknown[] = [];
    for (const slave of readDirOrder(fs.root, `${DM1}/slaves`)) {
      disks.unshift(ADDRESS[slave === "dm-0" ? "vdb2" : slave]);
    }
    assertEquals(entry.name, "dm-1");
    assertEquals(entry.disk, disks);
  } finally {
    await fs.dispose();
  }
});

Deno.test("fsinfo: statfs failure omits the sizes; sizes wrap like unsigned long", async () => {
  const fs = await fakeTree();
  try {
    const failing = agentOver(fs.root, [mount("/", "ext4", 254, 0)], {
      statfs: () => Promise.resolve({ ok: false, errno: 13, strerror: "Permission denied" }),
    });
    assertEquals(plain(await guestGetFsinfo.run({}, failing)), [
      { name: "vda", mountpoint: "/", type: "ext4", disk: [ADDRESS.vda] },
    ]);
    const huge = agentOver(fs.root, [mount("/", "ext4", 254, 0)], {
      statfs: () =>
        Promise.resolve({
          ok: true,
          type: 0xEF53,
          bsize: 4096n,
          frsize: 4096n,
          blocks: 2n ** 62n,
          bfree: 0n,
          bavail: 0n,
        }),
    });
    const [entry] = await guestGetFsinfo.run({}, huge) as { "used-bytes": bigint }[];
    assertEquals(entry["used-bytes"], BigInt.asUintN(64, 2n ** 62n * 4096n));
  } finally {
    await fs.dispose();
  }
});

Deno.test("fsinfo: a realpath error other than ENOENT fails the command", async () => {
  const fs = await fakeTree();
  try {
    Deno.symlinkSync("9:9", `${fs.root}/sys/dev/block/9:9`); // a loop: ELOOP
    const agent = agentOver(fs.root, [mount("/", "ext4", 254, 0), mount("/x", "ext4", 9, 9)], {
      statfs: () => Promise.resolve(STATFS),
    });
    await assertRejects(
      async () => await guestGetFsinfo.run({}, agent),
      (e: unknown) =>
        e instanceof QgaError &&
        e.desc === 'realpath("/sys/dev/block/9:9"): Too many levels of symbolic links',
    );
  } finally {
    await fs.dispose();
  }
});

Deno.test("fsinfo: the reply is written in QEMU's member order", async () => {
  const fs = await fakeTree();
  try {
    const agent = agentOver(fs.root, [mount("/", "ext4", 254, 1)], {
      statfs: () => Promise.resolve(STATFS),
    });
    const reply = await guestGetFsinfo.run({}, agent) as ReplyValue;
    assertEquals(
      toJson(reply),
      '[{"name": "vda1", "total-bytes": 3891200, "total-bytes-privileged": 4096000, ' +
        '"mountpoint": "/", "disk": [{"serial": "disk-a", "bus-type": "virtio", "bus": 0, ' +
        '"unit": 0, "pci-controller": {"bus": 0, "slot": 2, "domain": 0, "function": 0}, ' +
        '"dev": "/dev/vda1", "target": 0}], "used-bytes": 1638400, "type": "ext4"}]',
    );
  } finally {
    await fs.dispose();
  }
});

Deno.test("get-disks: disks, partitions, dependencies, aliases, addresses, newest first", async () => {
  const fs = await fakeTree();
  try {
    const agent = agentOver(fs.root, []);
    const reply = plain(await guestGetDisks.run({}, agent));
    const virtual = new Set(["dm-0", "dm-1", "loop1"]);
    const expected: unknown[] = [];
    for (const name of readDirOrder(fs.root, "/sys/block")) {
      if (name === "loop0") continue; // size 0
      const disk: Record<string, unknown> = { name: `/dev/${name}`, partition: false };
      if (name === "dm-0") disk.alias = "vg-a";
      if (!virtual.has(name)) disk.address = ADDRESS[name];
      if (name === "dm-0") disk.dependencies = ["/dev/vdb2"];
      if (name === "dm-1") {
        disk.dependencies = readDirOrder(fs.root, `${DM1}/slaves`).map((s) => `/dev/${s}`)
          .toReversed();
      }
      if (name === "loop1") disk.dependencies = [];
      expected.unshift(disk);
      const dir = Deno.realPathSync(`${fs.root}/sys/block/${name}`);
      for (const entry of readDirOrder(dir, "")) {
        if (!isPartitionName(name, entry)) continue;
        expected.unshift({
          name: `/dev/${entry}`,
          partition: true,
          dependencies: [`/dev/${name}`],
        });
      }
    }
    assertEquals(reply, expected);
    const names = (reply as { name: string }[]).map((d) => d.name);
    for (const p of ["/dev/vda1", "/dev/vda2", "/dev/vdb2", "/dev/loop1p1"]) {
      assertEquals(names.includes(p), true, p);
    }
  } finally {
    await fs.dispose();
  }
});

Deno.test("get-disks: an NVMe disk gets its SMART log page as `smart`; only NVMe disks are asked", async () => {
  const fs = await fakeTree();
  try {
    const page = await Deno.readFile(
      new URL("../fixtures/nvme_smart/distinct.bin", import.meta.url),
    );
    const asked: string[] = [];
    const agent = agentOver(fs.root, [], {
      nvmeSmart: (device) => {
        asked.push(String(device));
        return Promise.resolve({ ok: true, log: page.slice().buffer });
      },
    });
    const reply = await guestGetDisks.run({}, agent) as { name: string; smart?: unknown }[];
    assertEquals(asked, ["/dev/nvme0n1"]);
    const withSmart = reply.filter((d) => d.smart !== undefined).map((d) => d.name);
    assertEquals(withSmart, ["/dev/nvme0n1"]);
    const smart = reply.find((d) => d.name === "/dev/nvme0n1")?.smart;
    const counter = (i: number, name: string) => ({
      [`${name}-lo`]: 0xfedcba9876543210n + BigInt(i),
      [`${name}-hi`]: BigInt(i + 1),
    });
    assertEquals(smart, {
      type: "nvme",
      "critical-warning": 5,
      temperature: 323,
      "available-spare": 100,
      "available-spare-threshold": 10,
      "percentage-used": 255,
      ...counter(0, "data-units-read"),
      ...counter(1, "data-units-written"),
      ...counter(2, "host-read-commands"),
      ...counter(3, "host-write-commands"),
      ...counter(4, "controller-busy-time"),
      ...counter(5, "power-cycles"),
      ...counter(6, "power-on-hours"),
      ...counter(7, "unsafe-shutdowns"),
      ...counter(8, "media-errors"),
      ...counter(9, "number-of-error-log-entries"),
    });
    // The writer prints the bigints exactly, in QEMU's member order.
    const line = toJson(smart as ReplyValue);
    assertEquals(line.includes('"data-units-read-lo": 18364758544493064720'), true, line);
    assertEquals(
      line.startsWith('{"available-spare": 100, "host-write-commands-hi": 4,'),
      true,
      line,
    );
  } finally {
    await fs.dispose();
  }
});

Deno.test("get-disks: no /sys/block is qemu-ga's error", async () => {
  const root = await Deno.makeTempDir();
  try {
    await assertRejects(
      async () => await guestGetDisks.run({}, agentOver(root, [])),
      (e: unknown) =>
        e instanceof QgaError &&
        e.desc === 'Can\'t open directory "/sys/block": No such file or directory',
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("partition names: <disk>N and <disk>pN only", () => {
  assertEquals(isPartitionName("vda", "vda1"), true);
  assertEquals(isPartitionName("nvme0n1", "nvme0n1p12"), true);
  assertEquals(isPartitionName("loop1", "loop1p1"), true);
  assertEquals(isPartitionName("vda", "vdab"), false);
  assertEquals(isPartitionName("vda", "vdap"), false);
  assertEquals(isPartitionName("vda", "vda"), false);
  assertEquals(isPartitionName("sda", "sdb1"), false);
});

Deno.test("fstrim: per-path results and error texts, reversed; minimum passed as u64", async () => {
  const seen: [string, bigint][] = [];
  const outcomes: Record<string, FitrimResult> = {
    "/": { ok: true, trimmed: 123456789n, minlen: 4096n },
    "/ro": { ok: false, stage: "open", errno: 13, strerror: "Permission denied" },
    "/iso": { ok: false, stage: "trim", errno: 25, strerror: "Inappropriate ioctl for device" },
    "/vfat": { ok: false, stage: "trim", errno: 95, strerror: "Operation not supported" },
    "/bad": { ok: false, stage: "trim", errno: 22, strerror: "Invalid argument" },
  };
  const mounts = Object.keys(outcomes).map((p, i) => mount(p, "ext4", 8, i));
  const agent = agentOver("/nonexistent", mounts, {
    fitrim: (path, minlen) => {
      const p = dec.decode(path as Uint8Array);
      seen.push([p, minlen]);
      return Promise.resolve(outcomes[p]);
    },
  });
  assertEquals(plain(await guestFstrim.run({ minimum: 4096n }, agent)), {
    paths: [
      { path: "/bad", error: "failed to trim: Invalid argument" },
      { path: "/vfat", error: "trim not supported" },
      { path: "/iso", error: "trim not supported" },
      { path: "/ro", error: "failed to open: Permission denied" },
      { path: "/", minimum: 4096, trimmed: 123456789 },
    ],
  });
  assertEquals(seen.map(([p]) => p), Object.keys(outcomes));
  assertEquals(seen.every(([, m]) => m === 4096n), true);
  seen.length = 0;
  await guestFstrim.run({}, agent);
  assertEquals(seen.every(([, m]) => m === 0n), true);
  seen.length = 0;
  await guestFstrim.run({ minimum: -1n }, agent);
  assertEquals(seen.every(([, m]) => m === 2n ** 64n - 1n), true);
});

Deno.test("fstrim: the kernel's values are read back as int64", async () => {
  const agent = agentOver("/nonexistent", [mount("/", "ext4", 8, 0)], {
    fitrim: () => Promise.resolve({ ok: true, trimmed: 2n ** 64n - 1n, minlen: 2n ** 63n }),
  });
  const reply = await guestFstrim.run({}, agent) as ReplyValue;
  assertEquals(
    toJson(reply),
    '{"paths": [{"minimum": -9223372036854775808, "path": "/", "trimmed": -1}]}',
  );
});
