/**
 * guest-fsfreeze-status/-freeze/-freeze-list/-thaw (§3.4, §4).
 *
 * The FIFREEZE/FITHAW ioctls run off the event loop (ffi/fsfreeze.ts), so a freeze stuck in the
 * kernel leaves the agent able to answer ping, sync, status and thaw.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import { encodeModUtf8 } from "../protocol/utf8.ts";

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function runHook(agent: Agent, arg: "freeze" | "thaw"): Promise<void> {
  const hook = agent.options.fsfreezeHook;
  // An empty path (config `fsfreeze-hook=`) still counts as enabled and fails, as in qemu-ga.
  if (hook === undefined) return;
  agent.log.debug(`executing fsfreeze hook with arg '${arg}'`);
  await agent.platform.run([hook, arg], "execute fsfreeze hook");
}

/**
 * Thaws every mounted filesystem in mount order and leaves frozen state; returns how many
 * were actually thawed. The `thaw` hook runs afterwards even when nothing was frozen.
 */
async function thawAll(agent: Agent): Promise<number> {
  const mounts = await agent.platform.mounts();
  let thawed = 0;
  for (const m of mounts) {
    if (await agent.platform.freeze.thaw(m.path)) thawed++;
  }
  agent.unsetFrozen();
  agent.log.debug("guest-fsthaw called");
  await runHook(agent, "thaw");
  return thawed;
}

async function freeze(agent: Agent, mountpoints: readonly string[] | undefined): Promise<number> {
  agent.log.debug("guest-fsfreeze called");
  await runHook(agent, "freeze");
  const mounts = await agent.platform.mounts();
  // Frozen state (marker file, commands off, logging off) comes before the first ioctl: once
  // a filesystem is frozen nothing may be written to it.
  agent.setFrozen();
  // qemu-ga compares the requested strings with each mount point byte for byte (strcmp).
  const wanted = mountpoints?.map((p) => encodeModUtf8(p));
  let frozen = 0;
  for (const m of mounts.toReversed()) {
    if (wanted && !wanted.some((w) => sameBytes(w, m.path))) continue;
    const outcome = await agent.platform.freeze.freeze(m.path);
    if (outcome.ok) {
      frozen++;
    } else if (!outcome.skipped) {
      const verb = outcome.stage === "open" ? "open" : "freeze";
      const err = genericError(`failed to ${verb} ${m.dirname}: ${outcome.strerror}`);
      // Any real failure thaws everything (hook included); its own errors are not reported.
      await thawAll(agent).catch(() => {});
      throw err;
    }
  }
  // Nothing frozen: leave frozen state at once, without the thaw hook.
  if (frozen === 0) agent.unsetFrozen();
  return frozen;
}

/** Reports whether the agent has filesystems frozen. */
export const guestFsfreezeStatus = defineCommand({
  name: "guest-fsfreeze-status",
  summary: "Report whether the agent holds filesystems frozen",
  args: [],
  returns: t.enumOf("GuestFsfreezeStatus", ["thawed", "frozen"]),
  allowedWhileFrozen: true,
  run: (_args, agent) => agent.frozen ? "frozen" : "thawed",
});

/** Freezes every freezable mounted filesystem. */
export const guestFsfreezeFreeze = defineCommand({
  name: "guest-fsfreeze-freeze",
  summary: "Sync and freeze all freezable guest filesystems; returns how many were frozen",
  args: [],
  returns: t.int,
  run: (_args, agent) => freeze(agent, undefined),
});

/** Freezes the listed mount points (all when the list is absent). */
export const guestFsfreezeFreezeList = defineCommand({
  name: "guest-fsfreeze-freeze-list",
  summary: "Sync and freeze the listed mount points; returns how many were frozen",
  args: [{ name: "mountpoints", type: t.list(t.str), optional: true }],
  returns: t.int,
  run: ({ mountpoints }, agent) => freeze(agent, mountpoints),
});

/** Thaws every frozen filesystem. */
export const guestFsfreezeThaw = defineCommand({
  name: "guest-fsfreeze-thaw",
  summary: "Thaw frozen filesystems; returns how many were thawed",
  args: [],
  returns: t.int,
  allowedWhileFrozen: true,
  run: (_args, agent) => thawAll(agent),
});

/** The family, for the command table. */
export const fsfreezeCommands = [
  guestFsfreezeStatus,
  guestFsfreezeFreeze,
  guestFsfreezeFreezeList,
  guestFsfreezeThaw,
];
