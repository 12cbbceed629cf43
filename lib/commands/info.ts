/**
 * guest-info (§3.1): the version and every registered command, in reverse registration order,
 * with its current enabled state and success-response flag.
 *
 * @module
 */

import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { QGA_COMPAT_VERSION } from "../version.ts";

/** Reports the agent version and the command table. */
export const guestInfo = defineCommand({
  name: "guest-info",
  summary: "Report the agent version and which commands are supported and enabled",
  args: [],
  returns: t.struct("GuestAgentInfo", [
    { name: "version", type: t.str },
    {
      name: "supported_commands",
      type: t.list(t.struct("GuestAgentCommandInfo", [
        { name: "name", type: t.str },
        { name: "enabled", type: t.bool },
        { name: "success-response", type: t.bool },
      ])),
    },
  ]),
  allowedWhileFrozen: true,
  run: (_args, agent) => ({
    version: QGA_COMPAT_VERSION,
    supported_commands: agent.table.commands.map((c) => ({
      name: c.name,
      enabled: agent.isEnabled(c.name),
      "success-response": c.successResponse,
    })).reverse(),
  }),
});

/** The family, for the command table. */
export const infoCommands = [guestInfo];
