/**
 * The `denoga install` / `denoga uninstall` command line. Only an exact first argument selects a
 * subcommand, so every qemu-ga command line (options only, never a bare word) still starts the
 * agent.
 *
 * @module
 */

/** What the subcommand is asked to do. */
export interface InstallOptions {
  action: "install" | "uninstall";
  /** Where the program goes inside the target system (`<prefix>/sbin/denoga`). */
  prefix: string;
  /** The target system's root: `/`, or a mounted image. */
  root: string;
  /** uninstall: also remove the state directory. */
  purge: boolean;
  /** install: enable but do not start (nor restart) the service. */
  noStart: boolean;
  /** install: place the files but leave the service disabled (cloud-init or a user enables it). */
  noEnable: boolean;
}

/** Result of parsing: options, or text to print and an exit code. */
export type InstallParse =
  | { kind: "run"; options: InstallOptions }
  | { kind: "exit"; code: number; stdout?: string; stderr?: string };

/** The default install prefix: programs installed by hand go under /usr/local. */
export const DEFAULT_PREFIX = "/usr/local";

/** Whether `args` select a subcommand (its name exactly as the first argument). */
export function subcommandOf(args: readonly string[]): "install" | "uninstall" | undefined {
  return args[0] === "install" || args[0] === "uninstall" ? args[0] : undefined;
}

/** The help text of both subcommands. */
export function installUsage(prog: string): string {
  return `Usage: ${prog} install [--prefix DIR] [--root DIR] [--no-start | --no-enable]
       ${prog} uninstall [--prefix DIR] [--root DIR] [--purge]

Installs this program (the compiled binary, or Deno + bundle with a launcher), the systemd unit
denoga.service and the udev rule 60-denoga.rules; reloads systemd and udev, enables and starts
the service. Running it again changes only what differs.

  --prefix DIR  install under DIR (default ${DEFAULT_PREFIX}): DIR/sbin/denoga, DIR/lib/denoga
  --root DIR    target system mounted at DIR (image builders): files only, no systemctl/udevadm
  --no-start    install: enable the service but do not start it now
  --no-enable   install: leave the service disabled (start it later with
                systemctl enable --now denoga.service, e.g. from cloud-init)
  --purge       uninstall: also remove the state directory /run/denoga
  -h, --help    print this help
`;
}

function absolute(dir: string): boolean {
  return dir.startsWith("/") && !dir.split("/").includes("..");
}

/** Parses the arguments after the subcommand name (`args[0]` is `install` or `uninstall`). */
export function parseInstallArgs(args: readonly string[], prog = "denoga"): InstallParse {
  const action = subcommandOf(args);
  if (!action) {
    return { kind: "exit", code: 1, stderr: `${prog}: expected install or uninstall\n` };
  }
  const options: InstallOptions = {
    action,
    prefix: DEFAULT_PREFIX,
    root: "/",
    purge: false,
    noStart: false,
    noEnable: false,
  };
  const fail = (msg: string): InstallParse => ({
    kind: "exit",
    code: 1,
    stderr: `${prog} ${action}: ${msg}\nTry '${prog} ${action} --help' for more information\n`,
  });
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (name === "-h" || name === "--help") {
      return { kind: "exit", code: 0, stdout: installUsage(prog) };
    }
    if (name === "--prefix" || name === "--root") {
      const value = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : args[++i];
      if (value === undefined) return fail(`option '${name}' requires an argument`);
      if (!absolute(value)) return fail(`${name} must be an absolute path without '..'`);
      const clean = value.replace(/\/+$/, "") || "/";
      if (name === "--prefix") options.prefix = clean;
      else options.root = clean;
      continue;
    }
    if (a === "--purge" && action === "uninstall") options.purge = true;
    else if (a === "--no-start" && action === "install") options.noStart = true;
    else if (a === "--no-enable" && action === "install") options.noEnable = true;
    else return fail(`unrecognized option '${a}'`);
  }
  return { kind: "run", options };
}
