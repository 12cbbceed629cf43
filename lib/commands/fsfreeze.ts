/**
 * guest-fsfreeze-status/-freeze/-freeze-list/-thaw (§3.4, §4).
 *
 * The FIFREEZE/FITHAW ioctls run off the event loop (ffi/fsfreeze.ts), so a freeze stuck in the
 * kernel leaves the agent able to answer ping, sync, status and thaw. The walks over the mount
 * list and frozen state belong to the agent's freezer (lib/freezer.ts), which the signal path
 * and the auto-thaw watchdog share.
 *
 * @module
 */

import { t } from "../dispatch/schema.ts";
import { audited } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";

/** The audit fields of a freeze's result. */
const frozen = (n: number) => ({ frozen: n });

/** Reports whether the agent has filesystems frozen. */
export const guestFsfreezeStatus = defineCommand({
  name: "guest-fsfreeze-status",
  summary: "Report whether the agent holds filesystems frozen",
  args: [],
  returns: t.enumOf("GuestFsfreezeStatus", ["thawed", "frozen"]),
  allowedWhileFrozen: true,
  run: (_args, agent) => agent.freezer.frozen ? "frozen" : "thawed",
});

/** Freezes every freezable mounted filesystem. */
export const guestFsfreezeFreeze = defineCommand({
  name: "guest-fsfreeze-freeze",
  summary: "Sync and freeze all freezable guest filesystems; returns how many were frozen",
  args: [],
  returns: t.int,
  run: (_args, agent) =>
    audited(agent, "guest-fsfreeze-freeze", {}, () => agent.freezer.freeze(undefined), frozen),
});

/** Freezes the listed mount points (all when the list is absent). */
export const guestFsfreezeFreezeList = defineCommand({
  name: "guest-fsfreeze-freeze-list",
  summary: "Sync and freeze the listed mount points; returns how many were frozen",
  args: [{ name: "mountpoints", type: t.list(t.str), optional: true }],
  returns: t.int,
  run: ({ mountpoints }, agent) =>
    audited(
      agent,
      "guest-fsfreeze-freeze-list",
      { mountpoints },
      () => agent.freezer.freeze(mountpoints),
      frozen,
    ),
});

/** Thaws every frozen filesystem. */
export const guestFsfreezeThaw = defineCommand({
  name: "guest-fsfreeze-thaw",
  summary: "Thaw frozen filesystems; returns how many were thawed",
  args: [],
  returns: t.int,
  allowedWhileFrozen: true,
  run: (_args, agent) =>
    audited(agent, "guest-fsfreeze-thaw", {}, () => agent.freezer.thaw(), (n) => ({ thawed: n })),
});

/** The family, for the command table. */
export const fsfreezeCommands = [
  guestFsfreezeStatus,
  guestFsfreezeFreeze,
  guestFsfreezeFreezeList,
  guestFsfreezeThaw,
];
