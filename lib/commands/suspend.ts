/**
 * guest-suspend-disk, guest-suspend-ram, guest-suspend-hybrid (§3.14, newest
 * qga/commands-linux.c guest_suspend). Three strategies in turn, each asked first whether it
 * supports the mode:
 *
 * 1. systemd: `systemctl status systemd-<unit>` exiting 1, 2 or 3 means supported (4 is "no such
 *    unit"), then `systemctl hibernate|suspend|hybrid-sleep`;
 * 2. pm-utils: `pm-is-supported --<mode>` exiting 0, then `pm-hibernate|pm-suspend|
 *    pm-suspend-hybrid`;
 * 3. sysfs (not for hybrid): the first 31 bytes of /sys/power/state contain `disk` or `mem`, then
 *    that word is written there (/sys/power/disk is neither read nor written).
 *
 * Helpers run with stdio on /dev/null and only their exit status counts. A strategy that
 * claims support and then fails hands over to the next one, and its own error is dropped; so
 * the texts a host can see are the sysfs write failure, `unknown guest suspend mode` (hybrid
 * after a strategy claimed support and failed) and `the requested suspend mode is not supported
 * by the guest`. Quirk kept from qemu-ga: when systemd or pm-utils claimed support and failed and
 * sysfs does not offer the mode, the command succeeds (no reply) without suspending.
 *
 * Success sends no reply: the guest is asleep, and the host learns of the wake-up from QEMU.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { audited } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import { OsFileError } from "../platform/files.ts";

/** The suspend modes and what each strategy calls them. */
type Mode = "disk" | "ram" | "hybrid";

const SYSTEMD: Readonly<Record<Mode, { unit: string; verb: string }>> = {
  disk: { unit: "systemd-hibernate", verb: "hibernate" },
  ram: { unit: "systemd-suspend", verb: "suspend" },
  hybrid: { unit: "systemd-hybrid-sleep", verb: "hybrid-sleep" },
};

const PMUTILS: Readonly<Record<Mode, { flag: string; program: string }>> = {
  disk: { flag: "--hibernate", program: "pm-hibernate" },
  ram: { flag: "--suspend", program: "pm-suspend" },
  hybrid: { flag: "--suspend-hybrid", program: "pm-suspend-hybrid" },
};

const SYSFS_WORD: Readonly<Record<Mode, string | undefined>> = {
  disk: "disk",
  ram: "mem",
  hybrid: undefined,
};

const SYS_POWER_STATE = "/sys/power/state";
/** qemu-ga reads the state file into a 32-byte buffer, NUL included. */
const STATE_READ_MAX = 31;

/** Whether /sys/power/state offers `word` (a substring of its first bytes, up to a NUL). */
async function sysfsSupports(agent: Agent, word: string): Promise<boolean> {
  let data: Uint8Array;
  try {
    data = await agent.platform.os.readFile(SYS_POWER_STATE);
  } catch (e) {
    if (e instanceof OsFileError) return false;
    throw e;
  }
  let head = data.subarray(0, STATE_READ_MAX);
  const nul = head.indexOf(0);
  if (nul >= 0) head = head.subarray(0, nul);
  return String.fromCharCode(...head).includes(word);
}

async function guestSuspend(mode: Mode, agent: Agent): Promise<undefined> {
  const { runStatus } = agent.platform;
  let supported = false;

  const systemd = SYSTEMD[mode];
  const status = await runStatus(["systemctl", "status", systemd.unit]);
  if (status > 0 && status < 4) {
    supported = true;
    if (await runStatus(["systemctl", systemd.verb]) === 0) return undefined;
  }

  const pm = PMUTILS[mode];
  if (await runStatus(["pm-is-supported", pm.flag]) === 0) {
    supported = true;
    if (await runStatus([pm.program]) === 0) return undefined;
  }

  const word = SYSFS_WORD[mode];
  if (word !== undefined && await sysfsSupports(agent, word)) {
    try {
      await agent.platform.os.writeFile(SYS_POWER_STATE, new TextEncoder().encode(word), {
        create: false,
      });
    } catch (e) {
      if (!(e instanceof OsFileError)) throw e;
      throw genericError(`suspend: cannot write to '${SYS_POWER_STATE}': ${e.text}`);
    }
    return undefined;
  }
  if (!supported) throw genericError("the requested suspend mode is not supported by the guest");
  if (word === undefined) throw genericError("unknown guest suspend mode");
  return undefined;
}

/** Suspends to disk (hibernate). */
export const guestSuspendDisk = defineCommand({
  name: "guest-suspend-disk",
  summary: "Suspend the guest to disk (hibernate); no reply on success",
  args: [],
  successResponse: false,
  run: (_args, agent) =>
    audited(agent, "guest-suspend-disk", {}, () => guestSuspend("disk", agent)),
});

/** Suspends to RAM (sleep). */
export const guestSuspendRam = defineCommand({
  name: "guest-suspend-ram",
  summary: "Suspend the guest to RAM (sleep); no reply on success",
  args: [],
  successResponse: false,
  run: (_args, agent) => audited(agent, "guest-suspend-ram", {}, () => guestSuspend("ram", agent)),
});

/** Saves to disk and suspends to RAM. */
export const guestSuspendHybrid = defineCommand({
  name: "guest-suspend-hybrid",
  summary: "Save the guest to disk and suspend it to RAM; no reply on success",
  args: [],
  successResponse: false,
  run: (_args, agent) =>
    audited(agent, "guest-suspend-hybrid", {}, () => guestSuspend("hybrid", agent)),
});

/** The family, for the command table. */
export const suspendCommands = [guestSuspendDisk, guestSuspendRam, guestSuspendHybrid];
