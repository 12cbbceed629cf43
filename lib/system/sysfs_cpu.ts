/**
 * /sys/devices/system/cpu as qemu-ga reads it: which directory entries are logical processors,
 * and what a processor's `online` attribute says.
 *
 * @module
 */

import { scanFields } from "./c_scan.ts";

const enc = new TextEncoder();

/**
 * The logical-processor id of a directory entry, as `sscanf(name, "cpu%ld", &id)` finds it:
 * `cpu` then a signed decimal number (`cpu7` → 7, `cpu01` → 1, `cpu3x` → 3); undefined for
 * every other entry (`cpufreq`, `cpuidle`, `online`, ...).
 *
 * sscanf also "succeeds" (returns EOF) on an entry that ends inside or right after the `cpu`
 * prefix, leaving the id unset; no kernel has such an entry, and it is not a processor here.
 */
export function cpuIdOfEntry(name: string): bigint | undefined {
  if (!name.startsWith("cpu")) return undefined;
  const [id] = scanFields(enc.encode(name), ["ld"], 3).fields;
  return typeof id === "bigint" ? id : undefined;
}

/** `online` holds `0` for an offline processor; any other first byte means online. */
export function isOnlineStatus(firstByte: number): boolean {
  return firstByte !== 0x30;
}
