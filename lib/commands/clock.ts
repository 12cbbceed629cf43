/**
 * guest-get-time and guest-set-time (§3.6, newest behaviour).
 *
 * set-time with `time` checks it the way qemu-ga does — the seconds must fit a time_t and their
 * local calendar year must be 1970–2069 — then sets the system clock and copies it to the RTC
 * (`/sbin/hwclock -w`); without `time` it sets the system clock from the RTC
 * (`/sbin/hwclock -s`). There is no check that hwclock exists first (7.2 had one).
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { t } from "../dispatch/schema.ts";
import { audited } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import { zoneInfoAt } from "../system/tzif.ts";
import { localZone } from "./host.ts";

const NS_PER_SECOND = 1_000_000_000n;

/** The calendar year of Unix time `seconds` in the local time zone (localtime_r's tm_year). */
async function localYear(agent: Agent, seconds: bigint): Promise<number> {
  const s = Number(seconds);
  const offset = zoneInfoAt(await localZone(agent), s).offset;
  return new Date((s + offset) * 1000).getUTCFullYear();
}

/** Reports the guest's wall clock. */
export const guestGetTime = defineCommand({
  name: "guest-get-time",
  summary: "Report the guest's wall clock in nanoseconds since the epoch",
  args: [],
  returns: t.int,
  // gettimeofday resolution: the last three digits are always 000, as in qemu-ga.
  run: (_args, agent) => agent.platform.clock.nowMicroseconds() * 1000n,
});

/** Sets the guest's clock from `time`, or from the RTC when `time` is absent. */
export const guestSetTime = defineCommand({
  name: "guest-set-time",
  summary: "Set the guest's clock to the given time, or from the hardware clock without one",
  args: [{ name: "time", type: t.int, optional: true }],
  run: ({ time }, agent) =>
    audited(agent, "guest-set-time", { ns: time }, async () => {
      if (time !== undefined) {
        // C's division and remainder: both truncate toward zero, so a negative time gives a
        // negative microsecond part, which settimeofday refuses.
        const seconds = time / NS_PER_SECOND;
        const microseconds = (time % NS_PER_SECOND) / 1000n;
        // Written for a 32-bit time_t; with a 64-bit one every int64 fits.
        if (BigInt.asIntN(64, seconds) !== seconds) throw genericError(`Time ${time} is too large`);
        const year = await localYear(agent, seconds);
        if (year < 1970 || year >= 2070) throw genericError("Invalid time");
        const r = await agent.platform.clock.setTimeOfDay(seconds, microseconds);
        if (!r.ok) throw genericError(`Failed to set time to guest: ${r.strerror}`);
      }
      await agent.platform.run(
        ["/sbin/hwclock", time !== undefined ? "-w" : "-s"],
        "set hardware clock to system time",
      );
      return undefined;
    }),
});

/** The family, for the command table. */
export const clockCommands = [guestGetTime, guestSetTime];
