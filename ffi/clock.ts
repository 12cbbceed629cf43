/**
 * Setting the system clock (guest-set-time), off the event loop (`runBlocking`) like every other
 * call that enters the kernel on the agent's behalf.
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import type { SettimeofdayResult } from "./ops/settimeofday.ts";

/** Whether the clock was set, and if not why. */
export type SetTimeResult = SettimeofdayResult;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * settimeofday(2) to `seconds` + `microseconds` since the epoch (no time zone). The kernel
 * checks the values: a `microseconds` outside 0–999999 resolves EINVAL and changes nothing;
 * without CAP_SYS_TIME it resolves EPERM.
 *
 * @throws RangeError (as a rejection) when an argument does not fit a 64-bit `long`.
 */
export function setTimeOfDay(seconds: bigint, microseconds: bigint): Promise<SetTimeResult> {
  for (const v of [seconds, microseconds]) {
    if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) {
      return Promise.reject(new RangeError(`bad time value ${v}`));
    }
  }
  return runBlocking({ op: "settimeofday", seconds, microseconds });
}
