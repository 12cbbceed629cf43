/**
 * ffi/clock.ts on both executors — error paths only: this must never set the host's clock. An
 * invalid tv_usec is refused by the kernel before any permission check or change (the raw
 * settimeofday rejects tv_usec < 0 or > 1000000 outright; glibc's path through clock_settime
 * rejects the resulting tv_nsec), so the result proves the arguments were marshalled and the
 * error comes back exact, and the clock is untouched. The seconds are "now", so even a kernel
 * that accepted the call would move the clock by under a second.
 */

import assert from "node:assert/strict";
import { setTimeOfDay } from "../../ffi/clock.ts";
import { blockingStats } from "../../ffi/blocking.ts";
import { EINVAL } from "../../ffi/libc.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";

const EINVAL_RESULT = { ok: false, errno: EINVAL, strerror: "Invalid argument" };

for (const ex of EXECUTORS) {
  Deno.test(`settimeofday with an invalid tv_usec is EINVAL and changes nothing [${ex}]`, () =>
    usingExecutor(ex, async () => {
      const now = BigInt(Math.floor(Date.now() / 1000));
      const wall = Date.now() - performance.now();
      assert.deepEqual(await setTimeOfDay(now, -1n), EINVAL_RESULT);
      assert.deepEqual(await setTimeOfDay(now, 1n << 40n), EINVAL_RESULT);
      // The wall clock still agrees with the monotonic one.
      assert.ok(Math.abs(Date.now() - performance.now() - wall) < 1000, "the clock moved");
    }));

  Deno.test(`values that do not fit a long reject before any system call [${ex}]`, () =>
    usingExecutor(ex, async () => {
      await assert.rejects(setTimeOfDay(1n << 63n, 0n), RangeError);
      await assert.rejects(setTimeOfDay(0n, -(1n << 63n) - 1n), RangeError);
      assert.equal(blockingStats().busy, 0);
    }));
}
