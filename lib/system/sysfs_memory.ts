/**
 * /sys/devices/system/memory as qemu-ga reads it: memory block directories, their `state` and
 * `removable` attributes, and `block_size_bytes`.
 *
 * @module
 */

import { strtol, strtoul } from "./c_scan.ts";

const enc = new TextEncoder();
const ONLINE = enc.encode("online");

/**
 * The block index of a `memoryN` directory entry: `strtoul` of what follows `memory`, so
 * `memory12` → 12, `memoryx` → 0 and `memory-1` → 2^64 - 1; undefined when the name does not
 * start with `memory`.
 */
export function blockIndexOfEntry(name: string): bigint | undefined {
  if (!name.startsWith("memory")) return undefined;
  return strtoul(enc.encode(name), 6).value;
}

/** A block is online when its `state` starts with `online` (`offline`, `going-offline`: not). */
export function isOnlineState(state: Uint8Array): boolean {
  return ONLINE.every((b, i) => state[i] === b);
}

/** `removable` holds `0` when the block cannot be offlined; any other first byte means it can. */
export function isRemovable(firstByte: number): boolean {
  return firstByte !== 0x30;
}

/**
 * `block_size_bytes` (hexadecimal without `0x`, e.g. `8000000`) as `strtol(buf, NULL, 16)` reads
 * it and qemu-ga stores it in a uint64: text up to the first NUL, saturated at the int64 limits,
 * a negative value wrapped.
 */
export function parseBlockSize(text: Uint8Array): bigint {
  const nul = text.indexOf(0);
  return BigInt.asUintN(64, strtol(text, 0, nul < 0 ? text.length : nul, 16).value);
}
