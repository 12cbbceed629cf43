/**
 * guest-get-diskstats and guest-get-cpustats (§3.11): /proc/diskstats and the per-CPU lines of
 * /proc/stat, parsed by lib/system/diskstats.ts and lib/system/proc_stat.ts.
 *
 * @module
 */

import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import type { OsFiles } from "../platform/files.ts";
import { OsFileError } from "../platform/files.ts";
import { decodeModUtf8Lossy } from "../protocol/utf8.ts";
import { type DiskCounters, parseDiskstats } from "../system/diskstats.ts";
import { type CpuTicks, parseProcStatCpus } from "../system/proc_stat.ts";

/** The whole file, or qemu-ga's fopen() failure text. */
async function readProcFile(os: OsFiles, path: string): Promise<Uint8Array> {
  try {
    return await os.readFile(path);
  } catch (e) {
    if (!(e instanceof OsFileError)) throw e;
    throw genericError(`Could not open '${path}': ${e.text}`);
  }
}

const u64 = t.uint64;

const GuestDiskStats = t.struct("GuestDiskStats", [
  { name: "read-sectors", type: u64, optional: true },
  { name: "read-ios", type: u64, optional: true },
  { name: "read-merges", type: u64, optional: true },
  { name: "write-sectors", type: u64, optional: true },
  { name: "write-ios", type: u64, optional: true },
  { name: "write-merges", type: u64, optional: true },
  { name: "discard-sectors", type: u64, optional: true },
  { name: "discard-ios", type: u64, optional: true },
  { name: "discard-merges", type: u64, optional: true },
  { name: "flush-ios", type: u64, optional: true },
  { name: "read-ticks", type: u64, optional: true },
  { name: "write-ticks", type: u64, optional: true },
  { name: "discard-ticks", type: u64, optional: true },
  { name: "flush-ticks", type: u64, optional: true },
  { name: "ios-pgr", type: u64, optional: true },
  { name: "total-ticks", type: u64, optional: true },
  { name: "weight-ticks", type: u64, optional: true },
]);

const GuestDiskStatsInfo = t.struct("GuestDiskStatsInfo", [
  { name: "name", type: t.str },
  { name: "major", type: u64 },
  { name: "minor", type: u64 },
  { name: "stats", type: GuestDiskStats },
]);

/** The counters under their QAPI names, in schema order (the writer omits absent ones). */
function diskStats(c: DiskCounters) {
  return {
    "read-sectors": c.readSectors,
    "read-ios": c.readIos,
    "read-merges": c.readMerges,
    "write-sectors": c.writeSectors,
    "write-ios": c.writeIos,
    "write-merges": c.writeMerges,
    "discard-sectors": c.discardSectors,
    "discard-ios": c.discardIos,
    "discard-merges": c.discardMerges,
    "flush-ios": c.flushIos,
    "read-ticks": c.readTicks,
    "write-ticks": c.writeTicks,
    "discard-ticks": c.discardTicks,
    "flush-ticks": c.flushTicks,
    "ios-pgr": c.iosInProgress,
    "total-ticks": c.totalTicks,
    "weight-ticks": c.weightedTicks,
  };
}

/** Reports the I/O counters of every block device and partition in /proc/diskstats. */
export const guestGetDiskstats = defineCommand({
  name: "guest-get-diskstats",
  summary: "Report the I/O counters of the guest's block devices from /proc/diskstats",
  args: [],
  returns: t.list(GuestDiskStatsInfo),
  run: async (_args, agent) => {
    const data = await readProcFile(agent.platform.os, "/proc/diskstats");
    return parseDiskstats(data).map((d) => ({
      name: decodeModUtf8Lossy(d.name),
      major: d.major,
      minor: d.minor,
      stats: diskStats(d.counters),
    }));
  },
});

const GuestCpuStats = t.struct("GuestCpuStats", [
  { name: "type", type: t.enumOf("GuestCpuStatsType", ["linux"]) },
  { name: "cpu", type: t.int },
  { name: "user", type: u64 },
  { name: "nice", type: u64 },
  { name: "system", type: u64 },
  { name: "idle", type: u64 },
  { name: "iowait", type: u64, optional: true },
  { name: "irq", type: u64, optional: true },
  { name: "softirq", type: u64, optional: true },
  { name: "steal", type: u64, optional: true },
  { name: "guest", type: u64, optional: true },
  { name: "guestnice", type: u64, optional: true },
]);

/**
 * sysconf(_SC_CLK_TCK), the unit of /proc/stat: the kernel's USER_HZ, which is part of its
 * user-space ABI and 100 on every architecture Deno runs on (x86-64, aarch64; only alpha and
 * the retired ia64 differ). glibc takes it from the AT_CLKTCK auxv entry, which the kernel
 * fills with that same constant.
 */
const CLK_TCK = 100n;

/** Ticks to milliseconds in qemu-ga's unsigned long arithmetic (the product wraps). */
function ms(ticks: bigint): bigint;
function ms(ticks: bigint | undefined): bigint | undefined;
function ms(ticks: bigint | undefined): bigint | undefined {
  return ticks === undefined ? undefined : BigInt.asUintN(64, ticks * 1000n) / CLK_TCK;
}

function cpuStats(c: CpuTicks) {
  return {
    type: "linux" as const,
    cpu: c.cpu,
    user: ms(c.user),
    nice: ms(c.nice),
    system: ms(c.system),
    idle: ms(c.idle),
    iowait: ms(c.iowait),
    irq: ms(c.irq),
    softirq: ms(c.softirq),
    steal: ms(c.steal),
    guest: ms(c.guest),
    guestnice: ms(c.guestnice),
  };
}

/** Reports each CPU's time counters from /proc/stat, in milliseconds. */
export const guestGetCpustats = defineCommand({
  name: "guest-get-cpustats",
  summary: "Report each CPU's time counters from /proc/stat, in milliseconds",
  args: [],
  returns: t.list(GuestCpuStats),
  run: async (_args, agent) => {
    const data = await readProcFile(agent.platform.os, "/proc/stat");
    const { cpus, cutShort } = parseProcStatCpus(data);
    // qemu-ga logs this and answers with the CPUs before the bad line.
    if (cutShort) agent.log.info('Parsing cpu stat from /proc/stat failed, see "man proc"');
    return cpus.map(cpuStats);
  },
});

/** The family, for the command table. */
export const statsCommands = [guestGetDiskstats, guestGetCpustats];
