/** lib/system/sysfs_cpu.ts, sysfs_memory.ts and the C conversions under them (c_scan.ts). */

import { assertEquals } from "../assert.ts";
import { atoi, scanFields, strtol, strtoul } from "../../lib/system/c_scan.ts";
import { cpuIdOfEntry, isOnlineStatus } from "../../lib/system/sysfs_cpu.ts";
import {
  blockIndexOfEntry,
  isOnlineState,
  isRemovable,
  parseBlockSize,
} from "../../lib/system/sysfs_memory.ts";

const enc = new TextEncoder();
const max64 = (1n << 64n) - 1n;

Deno.test('cpu entries: sscanf("cpu%ld")', () => {
  const ids = [
    "cpu0",
    "cpu17",
    "cpu01",
    "cpu3x",
    "cpu-2",
    "cpu 4",
    "cpufreq",
    "cpuidle",
    "cpu",
    "online",
    "possible",
    "cpu99999999999999999999",
  ].map(cpuIdOfEntry);
  assertEquals(ids, [
    0n,
    17n,
    1n,
    3n,
    -2n,
    4n,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    (1n << 63n) - 1n,
  ]);
  assertEquals([0x30, 0x31, 0x32, 0].map(isOnlineStatus), [false, true, true, true]);
});

Deno.test("memory entries, state, removable, block size", () => {
  const idx = ["memory0", "memory42", "memoryx", "memory-1", "memory", "memory_failure", "power"]
    .map(blockIndexOfEntry);
  assertEquals(idx, [0n, 42n, 0n, max64, 0n, 0n, undefined]);
  assertEquals(
    ["online\n", "online_movable\n", "offline\n", "going-offline\n", "onlin"].map((s) =>
      isOnlineState(enc.encode(s))
    ),
    [true, true, false, false, false],
  );
  assertEquals([0x30, 0x31].map(isRemovable), [false, true]);
  const sizes = ["8000000\n", "0x10", "  ff", "zz", "-1", "7fffffffffffffffff", "10\x0020", ""]
    .map((s) => parseBlockSize(enc.encode(s)));
  assertEquals(sizes, [134217728n, 16n, 255n, 0n, max64, (1n << 63n) - 1n, 16n, 0n]);
});

Deno.test("strtoul, strtol, atoi", () => {
  const b = (s: string) => enc.encode(s);
  assertEquals(strtoul(b(" +12x")), { value: 12n, end: 4 });
  assertEquals(strtoul(b("-1")).value, max64);
  assertEquals(strtoul(b("18446744073709551616")).value, max64);
  assertEquals(strtoul(b("abc")), { value: 0n, end: 0 });
  assertEquals(strtol(b("-9223372036854775809")).value, -(1n << 63n));
  assertEquals(strtol(b("0x1g"), 0, 4, 16), { value: 1n, end: 3 });
  assertEquals(strtol(b("0xg"), 0, 3, 16), { value: 0n, end: 1 });
  assertEquals(atoi(b("4294967298")), 2);
  assertEquals(atoi(b("99999999999999999999")), -1);
});

Deno.test("scanFields: counts as sscanf does, EOF before the first conversion", () => {
  const b = (s: string) => enc.encode(s);
  assertEquals(scanFields(b(""), ["s"]), { fields: [], eof: true });
  assertEquals(scanFields(b(" \n"), ["u", "u"]), { fields: [], eof: true });
  assertEquals(scanFields(b("x"), ["u"]), { fields: [], eof: false });
  assertEquals(scanFields(b("1 2"), ["u", "u", "s"]), { fields: [1n, 2n], eof: false });
  assertEquals(scanFields(b("-1 -1"), ["u", "lu"]).fields, [4294967295n, max64]);
  assertEquals(scanFields(b("7-3"), ["ld", "ld"]).fields, [7n, -3n]);
});
