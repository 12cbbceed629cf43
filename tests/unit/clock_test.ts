/**
 * guest-get-time and guest-set-time with a fake clock and a fake runner: never touches this
 * host's clock or RTC.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { guestGetTime, guestSetTime } from "../../lib/commands/clock.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import type { Clock, SetTimeResult } from "../../lib/platform/clock.ts";
import type { HostInfo } from "../../lib/platform/host.ts";
import { fakePlatform, type RunCommand } from "../../lib/platform/mod.ts";
import { StateDir } from "../../lib/state.ts";

interface Calls {
  set: [bigint, bigint][];
  run: string[][];
}

function agentWith(
  calls: Calls,
  opts: { tz?: string; set?: SetTimeResult; run?: RunCommand } = {},
): Agent {
  const clock: Clock = {
    nowMicroseconds: () => 1_700_000_000_123_456n,
    setTimeOfDay: (s, us) => {
      calls.set.push([s, us]);
      return Promise.resolve(opts.set ?? { ok: true });
    },
  };
  const host: HostInfo = {
    hostName: () => "vm",
    env: (name) => (name === "TZ" ? opts.tz ?? "UTC" : undefined),
    kernelRelease: () => "6.1.0",
    arch: "x86_64",
    loadAverage: () => [0, 0, 0],
  };
  const run: RunCommand = opts.run ?? ((argv) => {
    calls.run.push([...argv]);
    return Promise.resolve();
  });
  return new Agent({
    table: commandTable(),
    options: { blockedRpcs: [] },
    state: new StateDir("/nonexistent"),
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({ clock, host, run }),
  });
}

const fresh = (): Calls => ({ set: [], run: [] });
const isQga = (desc: string) => (e: unknown) => e instanceof QgaError && e.desc === desc;

Deno.test("get-time is the microsecond clock times 1000", async () => {
  assertEquals(await guestGetTime.run({}, agentWith(fresh())), 1_700_000_000_123_456_000n);
});

Deno.test("set-time with a time: settimeofday, then hwclock -w", async () => {
  const calls = fresh();
  await guestSetTime.run({ time: 1_700_000_000_987_654_321n }, agentWith(calls));
  assertEquals(calls.set, [[1_700_000_000n, 987_654n]]);
  assertEquals(calls.run, [["/sbin/hwclock", "-w"]]);
});

Deno.test("set-time without a time: only hwclock -s", async () => {
  const calls = fresh();
  await guestSetTime.run({}, agentWith(calls));
  assertEquals(calls, { set: [], run: [["/sbin/hwclock", "-s"]] });
});

Deno.test("a local year before 1970 or from 2070 on is refused before anything is done", async () => {
  const calls = fresh();
  const agent = agentWith(calls);
  const y2070 = BigInt(Date.UTC(2070, 0, 1) / 1000) * 1_000_000_000n;
  for (
    const time of [-1_000_000_000n, -1_000_000_000_000_000_000n, y2070, 9_223_372_036_854_775_807n]
  ) {
    await assertRejects(
      () => Promise.resolve(guestSetTime.run({ time }, agent)),
      isQga("Invalid time"),
    );
  }
  assertEquals(calls, { set: [], run: [] });
  // The year is the local one: one second before 2070 in UTC is 2070 already in Berlin.
  await assertRejects(
    () =>
      Promise.resolve(
        guestSetTime.run({ time: y2070 - 1_000_000_000n }, agentWith(calls, { tz: "CET-1" })),
      ),
    isQga("Invalid time"),
  );
  await guestSetTime.run({ time: y2070 - 1_000_000_000n }, agentWith(calls));
  assertEquals(calls.set.length, 1);
});

Deno.test("a negative time east of UTC passes the year check; settimeofday's error is reported", async () => {
  const calls = fresh();
  const agent = agentWith(calls, {
    tz: "CET-1",
    set: { ok: false, errno: 22, strerror: "Invalid argument" },
  });
  await assertRejects(
    () => Promise.resolve(guestSetTime.run({ time: -1_000_000n }, agent)),
    isQga("Failed to set time to guest: Invalid argument"),
  );
  // C's truncating division: 0 s and -1000 µs.
  assertEquals(calls.set, [[0n, -1000n]]);
  assertEquals(calls.run, []);
});

Deno.test("hwclock's failure is the runner's error", async () => {
  const calls = fresh();
  const text = "child process has failed to set hardware clock to system time: exit status 1";
  const agent = agentWith(calls, { run: () => Promise.reject(new QgaError("GenericError", text)) });
  await assertRejects(() => Promise.resolve(guestSetTime.run({}, agent)), isQga(text));
});
