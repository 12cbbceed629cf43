/**
 * guest-info (§3.1): the version and every registered command, in reverse registration order,
 * with its current enabled state and success-response flag.
 *
 * @module
 */

import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { printOnce } from "../protocol/writer.ts";
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
  run: (_args, agent) => {
    const commands = agent.table.commands;
    const enabled = commands.map((c) => agent.isEnabled(c.name));
    // The reply changes only with the enabled states (a freeze, the allow and block lists).
    const key = enabled.map((e) => e ? "1" : "0").join("");
    const last = lastReplies.get(agent);
    if (last !== undefined && last.key === key && last.commands === commands) return last.reply;
    const reply = printOnce(deepFreeze({
      version: QGA_COMPAT_VERSION,
      supported_commands: commands.map((c, i) => ({
        name: c.name,
        enabled: enabled[i],
        "success-response": c.successResponse,
      })).reverse(),
    }));
    lastReplies.set(agent, { key, commands, reply });
    return reply;
  },
});

/** The last reply per agent, with the enabled states and the table it was built from. */
const lastReplies = new WeakMap<object, { key: string; commands: unknown; reply: GuestInfo }>();

interface GuestInfo {
  readonly version: string;
  readonly supported_commands: readonly {
    readonly name: string;
    readonly enabled: boolean;
    readonly "success-response": boolean;
  }[];
}

function deepFreeze(info: GuestInfo): GuestInfo {
  for (const c of info.supported_commands) Object.freeze(c);
  Object.freeze(info.supported_commands);
  return Object.freeze(info);
}

/** The family, for the command table. */
export const infoCommands = [guestInfo];
