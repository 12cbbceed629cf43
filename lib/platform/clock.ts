/**
 * The `clock` facet (guest-get-time, guest-set-time): the wall clock to the microsecond, as
 * gettimeofday gives it, and settimeofday through `ffi/clock.ts`, off the event loop.
 *
 * @module
 */

import type { SetTimeResult } from "../../ffi/clock.ts";

export type { SetTimeResult };

/** The facet. */
export interface Clock {
  /** The wall clock (CLOCK_REALTIME) in whole microseconds since the epoch. */
  nowMicroseconds(): bigint;
  /** settimeofday(2); never throws for an errno, resolves it. */
  setTimeOfDay(seconds: bigint, microseconds: bigint): Promise<SetTimeResult>;
}

/** The real clock. */
export const systemClock: Clock = {
  // Temporal reads CLOCK_REALTIME on every call (Date.now() has only milliseconds, and
  // performance.now() would not follow a clock that guest-set-time has just moved).
  nowMicroseconds: () => Temporal.Now.instant().epochNanoseconds / 1000n,
  setTimeOfDay: async (seconds, microseconds) =>
    (await import("../../ffi/clock.ts")).setTimeOfDay(seconds, microseconds),
};
