/**
 * The qemu-ga command line (§5.1), parsed the way glibc's getopt_long does for qemu-ga's option
 * string `hVvdc:m:p:l:f:F::b:a:s:t:Dr`: options and operands may mix, `--name=value` and
 * `--name value`, unique long-option prefixes, clustered short options, and `-F`'s optional
 * argument that must be attached (`-F/path`, `--fsfreeze-hook=/path`).
 *
 * `node:util`'s parseArgs cannot express an optional attached argument or getopt's exact
 * diagnostics, so this small parser stands in for `@std/cli` (unreachable JSR) here.
 *
 * @module
 */

/** How an option takes its argument (getopt's no_argument / required / optional). */
type ArgMode = 0 | 1 | 2;

interface OptionDef {
  /** The short letter; a long-only option (denoga's own) is reported by its long name. */
  readonly short: string;
  readonly long: string;
  readonly arg: ArgMode;
  /** denoga's own option: an abbreviation reaches it only when it fits no qemu-ga option. */
  readonly own?: boolean;
}

const OPTIONS: readonly OptionDef[] = [
  { short: "h", long: "help", arg: 0 },
  { short: "V", long: "version", arg: 0 },
  { short: "c", long: "config", arg: 1 },
  { short: "D", long: "dump-conf", arg: 0 },
  { short: "l", long: "logfile", arg: 1 },
  { short: "f", long: "pidfile", arg: 1 },
  { short: "F", long: "fsfreeze-hook", arg: 2 },
  { short: "v", long: "verbose", arg: 0 },
  { short: "m", long: "method", arg: 1 },
  { short: "p", long: "path", arg: 1 },
  { short: "d", long: "daemonize", arg: 0 },
  { short: "b", long: "block-rpcs", arg: 1 },
  { short: "a", long: "allow-rpcs", arg: 1 },
  { short: "t", long: "statedir", arg: 1 },
  { short: "r", long: "retry-path", arg: 0 },
  // denoga's own options: long only, so no short letter qemu-ga may take later is used.
  { short: "exclude-interfaces", long: "exclude-interfaces", arg: 1, own: true },
  { short: "fsfreeze-timeout", long: "fsfreeze-timeout", arg: 1, own: true },
  { short: "allow-exec", long: "allow-exec", arg: 1, own: true },
  { short: "allow-file-path", long: "allow-file-path", arg: 1, own: true },
  { short: "deny-user", long: "deny-user", arg: 1, own: true },
  { short: "audit", long: "audit", arg: 0, own: true },
  { short: "audit-log", long: "audit-log", arg: 1, own: true },
];

/** One parsed option: its short letter and its argument, if any. */
export interface ParsedOption {
  readonly opt: string;
  readonly value?: string;
}

/** The result of parsing: options in command-line order, or getopt's diagnostic. */
export type ParseResult =
  | { readonly ok: true; readonly options: ParsedOption[]; readonly operands: string[] }
  | { readonly ok: false; readonly message: string };

/**
 * Parses `args` like getopt_long. `prog` prefixes diagnostics as argv[0] does.
 *
 * @example
 * ```ts
 * parseCommandLine(["-m", "unix-listen", "-F/etc/hook", "--statedir=/run"], "denoga");
 * ```
 */
export function parseCommandLine(args: readonly string[], prog: string): ParseResult {
  const options: ParsedOption[] = [];
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const exact = OPTIONS.find((o) => o.long === name);
      // qemu-ga's abbreviations keep their meaning (`--fsfreeze` is still -F).
      const prefixed = OPTIONS.filter((o) => o.long.startsWith(name));
      const theirs = prefixed.filter((o) => !o.own);
      const candidates = exact ? [exact] : theirs.length > 0 ? theirs : prefixed;
      if (candidates.length === 0) {
        return { ok: false, message: `${prog}: unrecognized option '${a}'` };
      }
      if (candidates.length > 1) {
        const list = candidates.map((o) => `'--${o.long}'`).join(" ");
        return {
          ok: false,
          message: `${prog}: option '--${name}' is ambiguous; possibilities: ${list}`,
        };
      }
      const def = candidates[0];
      if (eq >= 0) {
        if (def.arg === 0) {
          return {
            ok: false,
            message: `${prog}: option '--${def.long}' doesn't allow an argument`,
          };
        }
        options.push({ opt: def.short, value: a.slice(eq + 1) });
      } else if (def.arg === 1) {
        if (i + 1 >= args.length) {
          return { ok: false, message: `${prog}: option '--${def.long}' requires an argument` };
        }
        options.push({ opt: def.short, value: args[++i] });
      } else {
        options.push({ opt: def.short });
      }
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        const def = OPTIONS.find((o) => o.short === c && o.short.length === 1);
        if (!def) return { ok: false, message: `${prog}: invalid option -- '${c}'` };
        if (def.arg === 0) {
          options.push({ opt: c });
          continue;
        }
        const rest = a.slice(j + 1);
        if (rest !== "") {
          options.push({ opt: c, value: rest });
        } else if (def.arg === 2) {
          options.push({ opt: c });
        } else if (i + 1 < args.length) {
          options.push({ opt: c, value: args[++i] });
        } else {
          return { ok: false, message: `${prog}: option requires an argument -- '${c}'` };
        }
        break;
      }
      continue;
    }
    operands.push(a);
  }
  return { ok: true, options, operands };
}

/** `-h` text, qemu-ga's option list with denoga's defaults. */
export function usageText(prog: string, version: string, defaults: {
  virtioPath: string;
  serialPath: string;
  pidfile: string;
  fsfreezeHook: string;
  statedir: string;
  confPath: string;
}): string {
  return `Usage: ${prog} [-m <method> -p <path>] [<options>]
QEMU Guest Agent ${version} (denoga)

  -c, --config=PATH configuration file path (default is
                    ${defaults.confPath}
                    unless overridden by the QGA_CONF environment variable)
  -m, --method      transport method: one of unix-listen, virtio-serial,
                    isa-serial, or vsock-listen (virtio-serial is the default)
  -p, --path        device/socket path (the default for virtio-serial is:
                    ${defaults.virtioPath},
                    the default for isa-serial is:
                    ${defaults.serialPath}).
                    Socket addresses for vsock-listen are written as
                    <cid>:<port>.
  -l, --logfile     set logfile path, logs to stderr by default
  -f, --pidfile     specify pidfile (default is ${defaults.pidfile})
  -F, --fsfreeze-hook
                    enable fsfreeze hook. Accepts an optional argument that
                    specifies script to run on freeze/thaw. Script will be
                    called with 'freeze'/'thaw' arguments accordingly.
                    (default is ${defaults.fsfreezeHook})
                    If using -F with an argument, do not follow -F with a
                    space.
                    (for example: -F/var/run/fsfreezehook.sh)
  -t, --statedir    specify dir to store state information (absolute paths
                    only, default is ${defaults.statedir})
  -v, --verbose     log extra debugging information
  -V, --version     print version information and exit
  -d, --daemonize   become a daemon
  -b, --block-rpcs  comma-separated list of RPCs to disable (no spaces,
                    use "--block-rpcs=help" to list available RPCs)
  -a, --allow-rpcs  comma-separated list of RPCs to enable (no spaces,
                    use "--allow-rpcs=help" to list available RPCs)
  -D, --dump-conf   dump a qemu-ga config file based on current config
                    options / command-line parameters to stdout
  -r, --retry-path  attempt re-opening path if it's unavailable or closed
                    due to an error which may be recoverable in the future
                    (virtio-serial driver re-install, serial device hot
                    plug/unplug, etc.)
  -h, --help        display this help and exit

denoga's own options (not in qemu-ga):
  --exclude-interfaces=LIST
                    comma-separated shell patterns (veth*,docker*) of
                    interfaces guest-network-get-interfaces leaves out
  --fsfreeze-timeout=SECONDS
                    thaw what the agent froze when no guest-fsfreeze-thaw
                    comes within SECONDS (default 0: never, as qemu-ga)
  --allow-exec=PATH,...
                    programs (or directories, with a trailing /) guest-exec
                    may run, matched after PATH search and symlinks
  --allow-file-path=PREFIX,...
                    directories guest-file-open may open files under,
                    matched after resolving symlinks and ..
  --deny-user=NAME,...
                    users whose password and ssh keys the host may not touch
  --audit           record every state-changing command in the log
  --audit-log=PATH  record every state-changing command in PATH (JSON lines)

denoga's subcommands (only as the first argument):
  ${prog} client (--socket PATH | --vsock CID:PORT) COMMAND [ARGS]
                    talk to an agent from the host (${prog} client --help)
  ${prog} install [--prefix DIR] [--root DIR] [--no-start | --no-enable]
                    install this program, its systemd unit and udev rule
  ${prog} uninstall [--prefix DIR] [--root DIR] [--purge]
                    remove what the last install put in place
`;
}
