/** lib/system/diskstats.ts on fixture files from several kernel generations and odd lines. */

import { assertEquals } from "../assert.ts";
import { type DiskCounters, parseDiskstats } from "../../lib/system/diskstats.ts";

const FIXTURES = new URL("../fixtures/diskstats/", import.meta.url);
const dec = new TextDecoder();

async function parse(name: string) {
  const lines = parseDiskstats(await Deno.readFile(new URL(name, FIXTURES)));
  return lines.map((l) => ({ ...l, name: dec.decode(l.name) }));
}

/** The eleven classic counters, in file order. */
function classic(...v: number[]): DiskCounters {
  const [ri, rm, rs, rt, wi, wm, ws, wt, inp, tt, wtt] = v.map(BigInt);
  return {
    readIos: ri,
    readMerges: rm,
    readSectors: rs,
    readTicks: rt,
    writeIos: wi,
    writeMerges: wm,
    writeSectors: ws,
    writeTicks: wt,
    iosInProgress: inp,
    totalTicks: tt,
    weightedTicks: wtt,
  };
}

Deno.test("kernel 5.5+: 20 fields give every counter, flush included", async () => {
  const lines = await parse("kernel-5.5.diskstats");
  assertEquals(lines.map((l) => [l.major, l.minor, l.name]), [
    [259n, 0n, "nvme0n1"],
    [259n, 1n, "nvme0n1p1"],
    [253n, 0n, "dm-0"],
    [7n, 0n, "loop0"],
  ]);
  assertEquals(lines[3].counters, {
    ...classic(1006, 0, 2472, 4884, 1368, 685, 132890, 959, 0, 3996, 6522),
    discardIos: 18n,
    discardMerges: 18n,
    discardSectors: 239324n,
    discardTicks: 11n,
    flushIos: 858n,
    flushTicks: 667n,
  });
});

Deno.test("kernel 4.18/4.19: 18 fields add discard counters, no flush", async () => {
  const [sda] = await parse("kernel-4.19.diskstats");
  assertEquals(sda.counters, {
    ...classic(13860, 4296, 1188390, 8748, 9530, 10830, 502992, 26036, 0, 9704, 29568),
    discardIos: 0n,
    discardMerges: 0n,
    discardSectors: 0n,
    discardTicks: 0n,
  });
});

Deno.test("kernels before 4.18: 14 fields, the classic eleven", async () => {
  const lines = await parse("kernel-4.14.diskstats");
  assertEquals(lines.map((l) => l.name), ["sda", "sr0"]);
  assertEquals(lines[1].counters, classic(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
});

Deno.test("kernel 2.6.18 partition lines: 7 fields give ios and sectors only", async () => {
  const lines = await parse("kernel-2.6.18.diskstats");
  assertEquals(lines.map((l) => l.name), ["hda", "hda1", "hda2"]);
  assertEquals(lines[1].counters, {
    readIos: 35486n,
    readSectors: 38030n,
    writeIos: 38030n,
    writeSectors: 38030n,
  });
  assertEquals(lines[2].counters, {
    readIos: 1382n,
    readSectors: 1382n,
    writeIos: 0n,
    writeSectors: 0n,
  });
});

Deno.test("odd lines: short, truncated, signed, overflowing, non-ASCII, no final newline", async () => {
  const lines = await parse("odd.diskstats");
  assertEquals(lines.map((l) => l.name), [
    "sdb",
    "weird/name:1",
    "sdb3",
    "big",
    "sdb4",
    "sd\u00e9",
    "tail",
  ]);
  const [cut, weird, long, big, broken, accented, tail] = lines;
  // 8 to 13 fields: listed, without counters.
  assertEquals(cut.counters, {});
  assertEquals(broken.counters, {});
  const max64 = (1n << 64n) - 1n;
  // %lu: minus wraps, overflow saturates; %u (write ticks, in flight): truncated to 32 bits.
  assertEquals(weird.counters, {
    readIos: max64,
    readMerges: max64,
    readSectors: 4294967296n,
    readTicks: 4294967297n,
    writeIos: 1n,
    writeMerges: 2n,
    writeSectors: 3n,
    writeTicks: 0n,
    iosInProgress: 4294967295n,
    totalTicks: 0n,
    weightedTicks: 0n,
  });
  // Extra fields past the twentieth are ignored.
  assertEquals(long.counters, {
    ...classic(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    discardIos: 12n,
    discardMerges: 13n,
    discardSectors: 14n,
    discardTicks: 15n,
    flushIos: 16n,
    flushTicks: 17n,
  });
  // major and minor are %u too.
  assertEquals([big.major, big.minor], [1n, 4294967295n]);
  assertEquals(big.counters, { readIos: 1n, readSectors: 2n, writeIos: 3n, writeSectors: 4n });
  assertEquals(accented.counters.writeSectors, 4n);
  assertEquals(tail.counters, classic(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
});

Deno.test("empty input and a NUL inside a line", () => {
  assertEquals(parseDiskstats(new Uint8Array()), []);
  const withNul = new TextEncoder().encode("8 0 sda 1 2 3 4 5 6\x00 7 8 9 10 11\n");
  assertEquals(parseDiskstats(withNul)[0].counters, {});
});
