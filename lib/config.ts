/**
 * Configuration: qemu-ga's defaults, then the command line (§5.1). The config file (`-c`,
 * `QGA_CONF`, §5.2) and `-D` join in a later change; the seam is `resolveConfig`.
 *
 * @module
 */

import { parseCommandLine, usageText } from "./cli.ts";
import { QGA_COMPAT_VERSION } from "./version.ts";

/** The effective configuration of one agent run. */
export interface AgentConfig {
  method: string;
  path: string | undefined;
  logfile: string | undefined;
  pidfile: string;
  fsfreezeHook: string | undefined;
  statedir: string;
  verbose: boolean;
  daemonize: boolean;
  retryPath: boolean;
  blockedRpcs: string[];
  allowedRpcs: string[] | undefined;
}

/** qemu-ga's built-in defaults on Debian (§5.1). */
export const DEFAULTS = {
  virtioPath: "/dev/virtio-ports/org.qemu.guest_agent.0",
  serialPath: "/dev/ttyS0",
  pidfile: "/var/run/qemu-ga.pid",
  fsfreezeHook: "/etc/qemu/fsfreeze-hook",
  statedir: "/var/run",
  confPath: "/etc/qemu/qemu-ga.conf",
} as const;

/** What main should do: run the agent, or print and exit. */
export type ConfigOutcome =
  | { readonly kind: "run"; readonly config: AgentConfig }
  | {
    readonly kind: "exit";
    readonly code: number;
    readonly stdout?: string;
    readonly stderr?: string;
  };

function isHelpOption(v: string): boolean {
  return v === "help" || v === "?";
}

/** g_strsplit on commas, each item prepended (qemu-ga's split_list reverses them). */
function splitList(v: string): string[] {
  return v.split(",").reverse();
}

/**
 * Builds the configuration from `args`.
 *
 * @example
 * ```ts
 * const r = resolveConfig(["-m", "unix-listen", "-p", "/tmp/qga.sock"], "denoga", []);
 * ```
 */
export function resolveConfig(
  args: readonly string[],
  prog: string,
  commandNames: readonly string[],
): ConfigOutcome {
  const parsed = parseCommandLine(args, prog);
  if (!parsed.ok) {
    return {
      kind: "exit",
      code: 1,
      stderr: `${parsed.message}\n`,
      stdout: `Unknown option, try '${prog} --help' for more information.\n`,
    };
  }
  const config: AgentConfig = {
    method: "virtio-serial",
    path: undefined,
    logfile: undefined,
    pidfile: DEFAULTS.pidfile,
    fsfreezeHook: undefined,
    statedir: DEFAULTS.statedir,
    verbose: false,
    daemonize: false,
    retryPath: false,
    blockedRpcs: [],
    allowedRpcs: undefined,
  };
  const names = commandNames.map((n) => `${n}\n`).join("");
  for (const { opt, value } of parsed.options) {
    const v = value ?? "";
    switch (opt) {
      case "m":
        config.method = v;
        break;
      case "p":
        config.path = v;
        break;
      case "l":
        config.logfile = v;
        break;
      case "f":
        config.pidfile = v;
        break;
      case "F":
        config.fsfreezeHook = value ?? DEFAULTS.fsfreezeHook;
        break;
      case "t":
        config.statedir = v;
        break;
      case "v":
        config.verbose = true;
        break;
      case "V":
        return { kind: "exit", code: 0, stdout: `QEMU Guest Agent ${QGA_COMPAT_VERSION}\n` };
      case "d":
        config.daemonize = true;
        break;
      case "r":
        config.retryPath = true;
        break;
      case "b":
        if (isHelpOption(v)) return { kind: "exit", code: 0, stdout: names };
        config.blockedRpcs.push(...splitList(v));
        break;
      case "a":
        if (isHelpOption(v)) return { kind: "exit", code: 0, stdout: names };
        config.allowedRpcs = [...(config.allowedRpcs ?? []), ...splitList(v)];
        break;
      case "h":
        return { kind: "exit", code: 0, stdout: usageText(prog, QGA_COMPAT_VERSION, DEFAULTS) };
      case "c":
      case "D":
        return {
          kind: "exit",
          code: 1,
          stderr: `${prog}: option -${opt} is not supported yet\n`,
        };
    }
  }
  return { kind: "run", config };
}
