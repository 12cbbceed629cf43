/**
 * guest-suspend-*: the strategy order of newest qemu-ga with a fake helper runner (exit statuses
 * by command line) and a fake /sys/power/state in a temp dir. Nothing here can suspend the
 * machine: no real helper runs and the real /sys is never opened.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import {
  guestSuspendDisk,
  guestSuspendHybrid,
  guestSuspendRam,
} from "../../lib/commands/suspend.ts";
import { OsFileError, type OsFiles, osFiles } from "../../lib/platform/files.ts";
import { agentWith, isQga } from "./users_helpers.ts";

type Cmd = typeof guestSuspendDisk;

interface Outcome {
  calls: string[];
  state: string | undefined;
}

/** Runs `cmd` with helpers answering `statuses` (missing: -1) and /sys/power/state = `state`. */
async function suspend(
  cmd: Cmd,
  statuses: Record<string, number>,
  state: string | undefined,
  wrap: (os: OsFiles) => OsFiles = (os) => os,
): Promise<Outcome> {
  const root = await Deno.makeTempDir({ prefix: "denoga-suspend-" });
  try {
    await Deno.mkdir(`${root}/sys/power`, { recursive: true });
    if (state !== undefined) await Deno.writeTextFile(`${root}/sys/power/state`, state);
    const calls: string[] = [];
    const runStatus = (argv: readonly string[]) => {
      calls.push(argv.join(" "));
      return Promise.resolve(statuses[argv.join(" ")] ?? -1);
    };
    const agent = agentWith({ runStatus, os: wrap(osFiles(root)) });
    await cmd.run({}, agent);
    const after = await Deno.readTextFile(`${root}/sys/power/state`).catch(() => undefined);
    return { calls, state: after };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const NO_SYSTEMD = ["systemctl status systemd-suspend", "pm-is-supported --suspend"];

Deno.test("systemd first: status 1..3 means supported, then systemctl <verb>", async () => {
  for (const status of [1, 2, 3]) {
    assertEquals(
      await suspend(guestSuspendRam, {
        "systemctl status systemd-suspend": status,
        "systemctl suspend": 0,
      }, "mem"),
      { calls: ["systemctl status systemd-suspend", "systemctl suspend"], state: "mem" },
    );
  }
  assertEquals(
    (await suspend(guestSuspendDisk, {
      "systemctl status systemd-hibernate": 3,
      "systemctl hibernate": 0,
    }, undefined)).calls,
    ["systemctl status systemd-hibernate", "systemctl hibernate"],
  );
  assertEquals(
    (await suspend(guestSuspendHybrid, {
      "systemctl status systemd-hybrid-sleep": 3,
      "systemctl hybrid-sleep": 0,
    }, undefined)).calls,
    ["systemctl status systemd-hybrid-sleep", "systemctl hybrid-sleep"],
  );
});

Deno.test("pm-utils next: pm-is-supported 0, then pm-<mode>", async () => {
  assertEquals(
    await suspend(guestSuspendRam, {
      "systemctl status systemd-suspend": 4,
      "pm-is-supported --suspend": 0,
      "pm-suspend": 0,
    }, "mem"),
    { calls: [...NO_SYSTEMD, "pm-suspend"], state: "mem" },
  );
  assertEquals(
    (await suspend(guestSuspendHybrid, {
      "pm-is-supported --suspend-hybrid": 0,
      "pm-suspend-hybrid": 0,
    }, undefined)).calls,
    [
      "systemctl status systemd-hybrid-sleep",
      "pm-is-supported --suspend-hybrid",
      "pm-suspend-hybrid",
    ],
  );
});

Deno.test("sysfs last: the word is written to /sys/power/state when offered", async () => {
  assertEquals(await suspend(guestSuspendRam, {}, "freeze mem disk\n"), {
    calls: NO_SYSTEMD,
    state: "mem",
  });
  assertEquals(
    (await suspend(guestSuspendDisk, { "systemctl status systemd-hibernate": 0 }, "disk\n"))
      .state,
    "disk",
  );
  // A failing strategy hands over to the next one.
  assertEquals(
    await suspend(guestSuspendRam, {
      "systemctl status systemd-suspend": 3,
      "systemctl suspend": 1,
      "pm-is-supported --suspend": 0,
      "pm-suspend": 5,
    }, "freeze mem\n"),
    {
      calls: [
        "systemctl status systemd-suspend",
        "systemctl suspend",
        "pm-is-supported --suspend",
        "pm-suspend",
      ],
      state: "mem",
    },
  );
});

Deno.test("not supported: no strategy offers the mode", async () => {
  const notSupported = isQga("the requested suspend mode is not supported by the guest");
  await assertRejects(() => suspend(guestSuspendRam, {}, "freeze disk\n"), notSupported);
  await assertRejects(() => suspend(guestSuspendDisk, {}, undefined), notSupported);
  await assertRejects(() => suspend(guestSuspendHybrid, {}, "freeze mem disk\n"), notSupported);
  // Only the first 31 bytes are looked at.
  await assertRejects(() => suspend(guestSuspendRam, {}, `${"x".repeat(29)} mem\n`), notSupported);
  await assertRejects(() => suspend(guestSuspendRam, {}, "fr\0mem\n"), notSupported);
  await assertRejects(
    () => suspend(guestSuspendRam, { "pm-is-supported --suspend": 1 }, ""),
    notSupported,
  );
});

Deno.test("a strategy claimed support and failed: hybrid says unknown mode, others succeed", async () => {
  await assertRejects(
    () =>
      suspend(guestSuspendHybrid, {
        "systemctl status systemd-hybrid-sleep": 3,
        "systemctl hybrid-sleep": 1,
      }, "freeze mem disk\n"),
    isQga("unknown guest suspend mode"),
  );
  // qemu-ga's quirk: success (no reply) although nothing suspended.
  assertEquals(
    await suspend(guestSuspendRam, {
      "systemctl status systemd-suspend": 3,
      "systemctl suspend": 1,
    }, "freeze disk\n"),
    {
      calls: ["systemctl status systemd-suspend", "systemctl suspend", "pm-is-supported --suspend"],
      state: "freeze disk\n",
    },
  );
});

Deno.test("a failed write to /sys/power/state", async () => {
  const busy = (os: OsFiles): OsFiles => ({
    ...os,
    writeFile: (path) => Promise.reject(new OsFileError("Device or resource busy", 16, path)),
  });
  await assertRejects(
    () => suspend(guestSuspendDisk, {}, "freeze mem disk\n", busy),
    isQga("suspend: cannot write to '/sys/power/state': Device or resource busy"),
  );
});

Deno.test("runStatus: the exit status, 0 for a signal, -1 when the program is missing", async () => {
  const { runStatus } = await import("../../lib/platform/process.ts");
  assertEquals(await runStatus(["/bin/sh", "-c", "exit 3"]), 3);
  assertEquals(await runStatus(["sh", "-c", "echo noise; echo more >&2; exit 0"]), 0);
  assertEquals(await runStatus(["/bin/sh", "-c", "kill -KILL $$"]), 0);
  assertEquals(await runStatus(["denoga-no-such-helper"]), -1);
});
