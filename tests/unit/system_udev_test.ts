/**
 * lib/system/uevent.ts and lib/system/udev_db.ts: the two files libudev answers qemu-ga's
 * questions from, read with sd-device's quirks (fixtures in tests/fixtures/uevent/ and
 * tests/fixtures/udev_db/).
 */

import { assertEquals } from "../assert.ts";
import { parseUdevDb, udevDbPath } from "../../lib/system/udev_db.ts";
import { devnodeOf, parseUevent } from "../../lib/system/uevent.ts";

const fixture = (path: string) =>
  Deno.readFileSync(new URL(`../fixtures/${path}`, import.meta.url));

Deno.test("uevent: a virtio disk's properties and device node", () => {
  const props = parseUevent(fixture("uevent/virtio_disk"));
  assertEquals(Object.fromEntries(props), {
    MAJOR: "254",
    MINOR: "0",
    DEVNAME: "vda",
    DEVTYPE: "disk",
    DISKSEQ: "9",
  });
  assertEquals(devnodeOf(props), "/dev/vda");
});

Deno.test("uevent: CR ends a line, lines without = are dropped, the last needs its newline", () => {
  const props = parseUevent(fixture("uevent/odd"));
  assertEquals(Object.fromEntries(props), {
    MAJOR: "259",
    MINOR: "1",
    DEVNAME: "/dev/odd/node",
    EMPTY: "",
    PARTNAME: "a=b",
  });
  assertEquals(devnodeOf(props), "/dev/odd/node"); // absolute names are kept
  assertEquals(devnodeOf(new Map()), undefined);
});

Deno.test("udev db: E: lines of a real-looking entry", () => {
  assertEquals(Object.fromEntries(parseUdevDb(fixture("udev_db/virtio_disk"))), {
    ID_SERIAL: "disk-a",
    ID_PATH: "pci-0000:00:02.0",
  });
});

Deno.test("udev db: duplicates, empty values, malformed and unterminated lines", () => {
  assertEquals(Object.fromEntries(parseUdevDb(fixture("udev_db/odd"))), {
    DM_NAME: "vg-root2", // the later line wins
    DM_UUID: "LVM-abc",
    ID_SERIAL: "", // present but empty: qemu-ga then reports no serial
    // "X\n" (no colon) makes sd-device skip to the newline after the next character, which
    // swallows the E:SWALLOWED line; CR is part of a value.
    AFTER: "ok\r",
    // E:UNTERMINATED has no newline: never handled.
  });
  assertEquals(parseUdevDb(new Uint8Array()).size, 0);
});

Deno.test("udev db: the entry's path", () => {
  assertEquals(udevDbPath("b", 254, 1), "/run/udev/data/b254:1");
  assertEquals(udevDbPath("c", 10, 200), "/run/udev/data/c10:200");
});
