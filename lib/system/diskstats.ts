/**
 * /proc/diskstats, read the way qemu-ga reads it: each line through one sscanf of major, minor,
 * name and up to 17 counters, and the number of fields converted decides which counters count.
 *
 * - fewer than 7 fields: the line is skipped;
 * - exactly 7 (the partition lines of kernels before 2.6.25): read ios, read sectors, write
 *   ios, write sectors;
 * - 8 to 13 (a line cut short): an entry with no counters;
 * - 14 or more: the eleven classic counters; 18 or more add the four discard counters; 20 add
 *   the two flush counters.
 *
 * The counters the kernel prints as `unsigned int` (major, minor, the write/discard/flush
 * ticks, in-flight, io ticks, weighted ticks) are read as qemu-ga reads them, `%u`, so they
 * keep 32 bits; the others are 64-bit.
 *
 * @module
 */

import { type Conversion, lines, scanFields } from "./c_scan.ts";

/** The counters of one line, by their qemu-ga meaning; absent ones were not on the line. */
export interface DiskCounters {
  readSectors?: bigint;
  readIos?: bigint;
  readMerges?: bigint;
  writeSectors?: bigint;
  writeIos?: bigint;
  writeMerges?: bigint;
  discardSectors?: bigint;
  discardIos?: bigint;
  discardMerges?: bigint;
  flushIos?: bigint;
  readTicks?: bigint;
  writeTicks?: bigint;
  discardTicks?: bigint;
  flushTicks?: bigint;
  iosInProgress?: bigint;
  totalTicks?: bigint;
  weightedTicks?: bigint;
}

/** One counted line of /proc/diskstats. */
export interface DiskStatsLine {
  readonly major: bigint;
  readonly minor: bigint;
  /** The device name's bytes (white space never occurs in it). */
  readonly name: Uint8Array;
  readonly counters: DiskCounters;
}

/** qemu-ga's format, `%u %u %s` then the counters in kernel order. */
// deno-fmt-ignore
const FORMAT: readonly Conversion[] = [
  "u", "u", "s", // major, minor, name
  "lu", "lu", "lu", "lu", // read ios, read merges, read sectors, read ticks
  "lu", "lu", "lu", "u", // write ios, merges, sectors, ticks
  "u", "u", "u", // in flight, io ticks, weighted ticks
  "lu", "lu", "lu", "u", // discard ios, merges, sectors, ticks
  "lu", "u", // flush ios, ticks
];

/** Parses one line; undefined when qemu-ga skips it (fewer than 7 fields). */
export function parseDiskstatsLine(line: Uint8Array): DiskStatsLine | undefined {
  const { fields } = scanFields(line, FORMAT);
  const n = fields.length;
  if (n < 7) return undefined;
  const num = (i: number) => fields[i] as bigint;
  const counters: DiskCounters = {};
  if (n === 7) {
    // Old partition lines: ios, sectors read; ios, sectors written.
    counters.readIos = num(3);
    counters.readSectors = num(4);
    counters.writeIos = num(5);
    counters.writeSectors = num(6);
  }
  if (n >= 14) {
    counters.readIos = num(3);
    counters.readMerges = num(4);
    counters.readSectors = num(5);
    counters.readTicks = num(6);
    counters.writeIos = num(7);
    counters.writeMerges = num(8);
    counters.writeSectors = num(9);
    counters.writeTicks = num(10);
    counters.iosInProgress = num(11);
    counters.totalTicks = num(12);
    counters.weightedTicks = num(13);
  }
  if (n >= 18) {
    counters.discardIos = num(14);
    counters.discardMerges = num(15);
    counters.discardSectors = num(16);
    counters.discardTicks = num(17);
  }
  if (n >= 20) {
    counters.flushIos = num(18);
    counters.flushTicks = num(19);
  }
  return { major: num(0), minor: num(1), name: fields[2] as Uint8Array, counters };
}

/** Every counted line of the file, in file order. */
export function parseDiskstats(data: Uint8Array): DiskStatsLine[] {
  const out: DiskStatsLine[] = [];
  for (const line of lines(data)) {
    const parsed = parseDiskstatsLine(line);
    if (parsed) out.push(parsed);
  }
  return out;
}
