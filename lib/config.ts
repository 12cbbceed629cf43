/**
 * Configuration (§5.1, §5.2, §8): qemu-ga's defaults, then the config file (`-c PATH`, else
 * `$QGA_CONF`, else `/etc/qemu/qemu-ga.conf`), then the command line — last value wins, the
 * RPC lists accumulate. `-D` prints the result as qemu-ga's key-file dump.
 *
 * @module
 */

import { parseCommandLine, usageText } from "./cli.ts";
import {
  escapeValue,
  type FileReader,
  KeyFile,
  KeyFileError,
  keyFileToData,
  loadKeyFile,
  readConfigBytes,
} from "./config_file.ts";
import { glibCritical } from "./log.ts";
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
  /** denoga's `--exclude-interfaces`: name patterns guest-network-get-interfaces leaves out. */
  excludeInterfaces: string[];
  /** denoga's `--fsfreeze-timeout`: seconds until an auto-thaw; 0: never (qemu-ga). */
  fsfreezeTimeout: number;
  /** denoga's `--allow-exec`: programs (or `dir/`) guest-exec may run; empty: any. */
  allowExec: string[];
  /** denoga's `--allow-file-path`: prefixes guest-file-open may open under; empty: any. */
  allowFilePath: string[];
  /** denoga's `--deny-user`: users the password and ssh-key commands refuse. */
  denyUser: string[];
  /** denoga's `--audit`: audit records to the agent's log. */
  audit: boolean;
  /** denoga's `--audit-log`: audit records to this file (wins over `audit`). */
  auditLog: string | undefined;
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

/** What configuration resolution reads from the outside world (injectable for tests). */
export interface ConfigEnv {
  /** An environment variable (`QGA_CONF`, `LISTEN_PID`, `LISTEN_FDS`). */
  readonly getEnv: (name: string) => string | undefined;
  /** Reads the config file; throws {@link KeyFileError}. */
  readonly readFile: FileReader;
}

/** The real environment and file system. */
export const REAL_ENV: ConfigEnv = {
  getEnv: (name) => Deno.env.get(name),
  readFile: readConfigBytes,
};

function isHelpOption(v: string): boolean {
  return v === "help" || v === "?";
}

/**
 * qemu-ga's split_list: g_strsplit on commas (an empty string gives no item), each item
 * prepended, so every list comes out reversed.
 */
export function splitList(v: string): string[] {
  return v === "" ? [] : v.split(",").reverse();
}

/** A pattern list of denoga's own: comma-separated, in the order given, empty items dropped. */
export function splitPatterns(v: string): string[] {
  return v.split(",").filter((p) => p !== "");
}

/** The starting point before the config file: qemu-ga's defaults. */
export function defaultConfig(): AgentConfig {
  return {
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
    excludeInterfaces: [],
    fsfreezeTimeout: 0,
    allowExec: [],
    allowFilePath: [],
    denyUser: [],
    audit: false,
    auditLog: undefined,
  };
}

const GROUP = "general";

/**
 * Applies a parsed key file to `config` as qemu-ga's config_load does (group `[general]`, keys
 * `daemon method path logfile pidfile fsfreeze-hook statedir verbose retry-path block-rpcs
 * allow-rpcs`). `verbose=false` leaves verbosity alone; lists are read as one string and split
 * on commas. Throws {@link KeyFileError} on a value GLib cannot read.
 */
export function applyKeyFile(config: AgentConfig, kf: KeyFile): void {
  const has = (k: string) => kf.hasKey(GROUP, k);
  const str = (k: string) => kf.getString(GROUP, k);
  if (has("daemon")) config.daemonize = kf.getBoolean(GROUP, "daemon");
  if (has("method")) config.method = str("method");
  if (has("path")) config.path = str("path");
  if (has("logfile")) config.logfile = str("logfile");
  if (has("pidfile")) config.pidfile = str("pidfile");
  // Any value, even an empty one, enables the hook with that path (qemu-ga stores the string).
  if (has("fsfreeze-hook")) config.fsfreezeHook = str("fsfreeze-hook");
  if (has("statedir")) config.statedir = str("statedir");
  if (has("verbose") && kf.getBoolean(GROUP, "verbose")) config.verbose = true;
  if (has("retry-path")) config.retryPath = kf.getBoolean(GROUP, "retry-path");
  if (has("block-rpcs")) config.blockedRpcs.push(...splitList(str("block-rpcs")));
  if (has("allow-rpcs")) {
    const list = [...(config.allowedRpcs ?? []), ...splitList(str("allow-rpcs"))];
    config.allowedRpcs = list.length > 0 ? list : undefined;
  }
  if (has("exclude-interfaces")) {
    config.excludeInterfaces.push(...splitPatterns(str("exclude-interfaces")));
  }
  if (has("fsfreeze-timeout")) {
    const seconds = parseSeconds(str("fsfreeze-timeout"));
    if (seconds === undefined) {
      throw new KeyFileError(
        "Key file contains key “fsfreeze-timeout” which has a value that cannot be interpreted.",
      );
    }
    config.fsfreezeTimeout = seconds;
  }
  for (const [key, list] of policyLists(config)) {
    if (has(key)) list.push(...splitPatterns(str(key)));
  }
  if (has("audit")) config.audit = kf.getBoolean(GROUP, "audit");
  if (has("audit-log")) config.auditLog = str("audit-log");
}

/** denoga's accumulating policy lists by option and key name. */
function policyLists(config: AgentConfig): [string, string[]][] {
  return [
    ["allow-exec", config.allowExec],
    ["allow-file-path", config.allowFilePath],
    ["deny-user", config.denyUser],
  ];
}

/** A whole number of seconds, 0 or more (surrounding blanks allowed), or undefined. */
export function parseSeconds(v: string): number | undefined {
  const t = v.trim();
  if (!/^[0-9]{1,9}$/.test(t)) return undefined;
  return Number(t);
}

/** The config file path and whether it must exist (`-c` given). */
export function configPath(
  options: readonly { opt: string; value?: string }[],
  getEnv: (name: string) => string | undefined,
): { path: string; required: boolean } {
  let path = getEnv("QGA_CONF") ?? DEFAULTS.confPath;
  let required = false;
  for (const o of options) {
    if (o.opt === "c") {
      path = o.value ?? "";
      required = true;
    }
  }
  return { path, required };
}

/** True when systemd socket activation passes this process listening sockets. */
export function socketActivated(
  getEnv: (name: string) => string | undefined,
  pid: number = Deno.pid,
): boolean {
  const lpid = getEnv("LISTEN_PID");
  const fds = getEnv("LISTEN_FDS");
  return lpid !== undefined && fds !== undefined && Number(lpid) === pid && Number(fds) > 0;
}

/**
 * The channel path qemu-ga settles on before start-up: `-p`, else the virtio-serial or
 * isa-serial default; undefined when the method needs an explicit path (qemu-ga then fails
 * with `must specify a path for this channel`).
 */
export function effectivePath(config: AgentConfig): string | undefined {
  if (config.path !== undefined) return config.path;
  if (config.method === "virtio-serial") return DEFAULTS.virtioPath;
  if (config.method === "isa-serial") return DEFAULTS.serialPath;
  return undefined;
}

/**
 * The `-D` output: `g_key_file_to_data` of qemu-ga's config_dump, newest key order (`daemon
 * method path logfile pidfile fsfreeze-hook statedir verbose retry-path block-rpcs allow-rpcs`),
 * lists joined with commas in their (reversed) internal order.
 */
export function dumpConfig(config: AgentConfig, path: string | undefined): string {
  const e: [string, string][] = [];
  const bool = (b: boolean) => (b ? "true" : "false");
  e.push(["daemon", bool(config.daemonize)]);
  e.push(["method", escapeValue(config.method)]);
  if (path !== undefined) e.push(["path", escapeValue(path)]);
  if (config.logfile !== undefined) e.push(["logfile", escapeValue(config.logfile)]);
  e.push(["pidfile", escapeValue(config.pidfile)]);
  if (config.fsfreezeHook !== undefined) {
    e.push(["fsfreeze-hook", escapeValue(config.fsfreezeHook)]);
  }
  e.push(["statedir", escapeValue(config.statedir)]);
  e.push(["verbose", bool(config.verbose)]);
  e.push(["retry-path", bool(config.retryPath)]);
  e.push(["block-rpcs", escapeValue(config.blockedRpcs.join(","))]);
  e.push(["allow-rpcs", escapeValue((config.allowedRpcs ?? []).join(","))]);
  // denoga's own keys come last and only when set, so a default dump matches qemu-ga's.
  if (config.excludeInterfaces.length > 0) {
    e.push(["exclude-interfaces", escapeValue(config.excludeInterfaces.join(","))]);
  }
  if (config.fsfreezeTimeout > 0) {
    e.push(["fsfreeze-timeout", String(config.fsfreezeTimeout)]);
  }
  for (const [key, list] of policyLists(config)) {
    if (list.length > 0) e.push([key, escapeValue(list.join(","))]);
  }
  if (config.audit) e.push(["audit", "true"]);
  if (config.auditLog !== undefined) e.push(["audit-log", escapeValue(config.auditLog)]);
  return keyFileToData(GROUP, e);
}

/**
 * Builds the configuration from `args`, the config file and the environment.
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
  env: ConfigEnv = REAL_ENV,
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
  const config = defaultConfig();

  // First pass: the config file (qemu-ga loads it before acting on any other option).
  const conf = configPath(parsed.options, env.getEnv);
  try {
    applyKeyFile(config, loadKeyFile(conf.path, env.readFile));
  } catch (e) {
    if (!(e instanceof KeyFileError)) throw e;
    if (conf.required || !e.noent) {
      return {
        kind: "exit",
        code: 1,
        stderr: glibCritical(`error loading configuration from path: ${conf.path}, ${e.message}`),
      };
    }
  }

  // Second pass: the command line, in order.
  let dump = false;
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
      case "D":
        dump = true;
        break;
      case "r":
        config.retryPath = true;
        break;
      case "b":
        if (isHelpOption(v)) return { kind: "exit", code: 0, stdout: names };
        config.blockedRpcs.push(...splitList(v));
        break;
      case "a": {
        if (isHelpOption(v)) return { kind: "exit", code: 0, stdout: names };
        const list = [...(config.allowedRpcs ?? []), ...splitList(v)];
        config.allowedRpcs = list.length > 0 ? list : undefined;
        break;
      }
      case "exclude-interfaces":
        config.excludeInterfaces.push(...splitPatterns(v));
        break;
      case "fsfreeze-timeout": {
        const seconds = parseSeconds(v);
        if (seconds === undefined) {
          return {
            kind: "exit",
            code: 1,
            stderr: `${prog}: invalid --fsfreeze-timeout '${v}': expected whole seconds\n`,
          };
        }
        config.fsfreezeTimeout = seconds;
        break;
      }
      case "allow-exec":
      case "allow-file-path":
      case "deny-user":
        policyLists(config).find(([key]) => key === opt)![1].push(...splitPatterns(v));
        break;
      case "audit":
        config.audit = true;
        break;
      case "audit-log":
        config.auditLog = v;
        break;
      case "h":
        return { kind: "exit", code: 0, stdout: usageText(prog, QGA_COMPAT_VERSION, DEFAULTS) };
    }
  }
  if (dump) {
    const activated = socketActivated(env.getEnv);
    const path = activated ? config.path : effectivePath(config);
    if (path === undefined && !activated) {
      return {
        kind: "exit",
        code: 1,
        stderr: glibCritical("must specify a path for this channel"),
      };
    }
    return { kind: "exit", code: 0, stdout: dumpConfig(config, path) };
  }
  return { kind: "run", config };
}

/**
 * qemu-ga's check before start-up (main(), before the agent is initialised): a method other
 * than virtio-serial/isa-serial needs `-p`, unless systemd passed a listening socket. Returns
 * the stderr text to print (exit status 1), or undefined.
 */
export function channelPathError(
  config: AgentConfig,
  getEnv: (name: string) => string | undefined = REAL_ENV.getEnv,
): string | undefined {
  if (socketActivated(getEnv) || effectivePath(config) !== undefined) return undefined;
  return glibCritical("must specify a path for this channel");
}
