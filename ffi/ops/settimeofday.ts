/**
 * settimeofday(tv, NULL): set the system clock (guest-set-time).
 *
 * @module
 */

import { arch } from "../arch/mod.ts";
import { errno, libc, strerror } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, isError } from "./op.ts";

/** The new time since the epoch. */
export interface SettimeofdayArgs {
  seconds: bigint;
  /** 0–999999; anything else is the kernel's EINVAL, nothing is changed. */
  microseconds: bigint;
}

/** Whether the clock was set. */
export type SettimeofdayResult = { ok: true } | { ok: false; errno: number; strerror: string };

/** A `struct timeval`. */
function timeval({ seconds, microseconds }: SettimeofdayArgs): Uint8Array<ArrayBuffer> {
  const at = arch().layout.timeval;
  const buf = new Uint8Array(at.size);
  const v = new DataView(buf.buffer);
  v.setBigInt64(at.sec, seconds, true);
  v.setBigInt64(at.usec, microseconds, true);
  return buf;
}

function result(e: number): SettimeofdayResult {
  return e === 0 ? { ok: true } : { ok: false, errno: e, strerror: strerror(e) };
}

/** settimeofday(2) with no time zone. */
export const settimeofday: BlockingOp<SettimeofdayArgs, SettimeofdayResult> = {
  async trampoline(args) {
    const ret = await syscall6(arch().sys.settimeofday, timeval(args), null);
    return result(isError(ret) ? Number(-ret) : 0);
  },

  worker(args) {
    return result(libc().settimeofday(timeval(args), null) === -1 ? errno() : 0);
  },
};
