/**
 * guest-shutdown (§3.5, newest behaviour): `/sbin/poweroff`, `/sbin/halt` or `/sbin/reboot`
 * when executable, else `/sbin/shutdown -h -P|-H|-r +0 "hypervisor initiated shutdown"`.
 * Success sends no reply at all.
 *
 * @module
 */

import { t } from "../dispatch/schema.ts";
import { auditFirst } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";

const MODES: Readonly<Record<string, { cmd: string; flag: string }>> = {
  powerdown: { cmd: "/sbin/poweroff", flag: "-P" },
  halt: { cmd: "/sbin/halt", flag: "-H" },
  reboot: { cmd: "/sbin/reboot", flag: "-r" },
};

/** Powers the guest down, halts or reboots it. */
export const guestShutdown = defineCommand({
  name: "guest-shutdown",
  summary: "Shut the guest down (powerdown, halt or reboot); no reply on success",
  args: [{ name: "mode", type: t.str, optional: true }],
  successResponse: false,
  run: async ({ mode }, agent) => {
    agent.log.debug(`guest-shutdown called, mode: ${mode ?? "(null)"}`);
    const m = Object.hasOwn(MODES, mode ?? "powerdown") ? MODES[mode ?? "powerdown"] : undefined;
    if (!m) {
      // sic: qemu-ga's text has no closing parenthesis.
      throw genericError("mode is invalid (valid values are: halt|powerdown|reboot");
    }
    const argv = agent.platform.isExecutable(m.cmd)
      ? [m.cmd]
      : ["/sbin/shutdown", "-h", m.flag, "+0", "hypervisor initiated shutdown"];
    // Recorded first: once the command has run, the guest may be gone.
    await auditFirst(agent, "guest-shutdown", { mode: mode ?? "powerdown", argv });
    await agent.platform.run(argv, "shutdown");
    return undefined;
  },
});

/** The family, for the command table. */
export const shutdownCommands = [guestShutdown];
