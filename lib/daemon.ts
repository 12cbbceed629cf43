/**
 * `-d/--daemonize` and the pidfile (§5.1). Deno cannot fork, so the parent re-executes the same
 * program (the compiled binary, or `deno run <flags> main.ts`) with `-d` stripped and
 * {@link DAEMON_CHILD_ENV} set, detached in a new session. The child sets the agent up exactly as
 * a foreground run would — errors still reach the terminal through the inherited stderr, as
 * newest qemu-ga opens its channel before daemonizing — and then {@link becomeDaemon}: pidfile
 * (qemu_write_pidfile's create + lock + verify + truncate + write), umask 077, setsid, chdir `/`,
 * a readiness byte to the parent, stdio to /dev/null. The parent exits 0 on that byte, or with
 * the child's status if it ended first.
 *
 * @module
 */

import {
  closeFileSync,
  dup2Sync,
  lockWholeFileSync,
  newSession,
  openFileSync,
  setUmask,
  truncateFileSync,
  unlinkSync,
  writeOnceSync,
} from "../ffi/daemon.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR, O_WRONLY, OsError } from "../ffi/libc.ts";
import { DAEMON_CHILD_ENV } from "./daemon_child.ts";

export { DAEMON_CHILD_ENV, isDaemonChild } from "./daemon_child.ts";

const READY = "denoga-ready\n";

/** The strerror text of a failed call (an OsError); anything else is a bug and is re-thrown. */
function osText(e: unknown): string {
  if (e instanceof OsError) return e.strerror;
  throw e;
}

/** A pidfile this process holds locked; {@link Pidfile.remove} unlinks it (qemu-ga at exit). */
export class Pidfile {
  readonly path: string;
  readonly #fd: number;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /**
   * qemu_write_pidfile: create (0600), take a write lock with F_SETLK (fails while another live
   * process holds it), make sure the locked file is still the one at `path`, truncate, write
   * `<pid>\n`. The descriptor stays open so the lock lasts for the life of the process.
   *
   * @throws Error with qemu's text (`Could not create '<p>': …`, `Cannot lock pid file: …`).
   */
  static write(path: string, pid: number = Deno.pid): Pidfile {
    for (;;) {
      let fd: number;
      try {
        fd = openFileSync(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600);
      } catch (e) {
        throw new Error(`Could not create '${path}': ${osText(e)}`);
      }
      let ino: number | null;
      try {
        ino = Deno.statSync(`/proc/self/fd/${fd}`).ino;
      } catch (e) {
        closeFileSync(fd);
        throw new Error(`Cannot stat file: ${(e as Error).message}`);
      }
      try {
        lockWholeFileSync(fd);
      } catch (e) {
        closeFileSync(fd);
        throw new Error(`Cannot lock pid file: ${osText(e)}`);
      }
      let now: Deno.FileInfo | undefined;
      try {
        now = Deno.statSync(path);
      } catch {
        now = undefined; // vanished: someone is racing with us, try again
      }
      if (now === undefined || now.ino !== ino) {
        closeFileSync(fd);
        continue;
      }
      const text = new TextEncoder().encode(`${pid}\n`);
      try {
        truncateFileSync(fd, 0n);
      } catch (e) {
        unlinkSync(path);
        closeFileSync(fd);
        throw new Error(`Failed to truncate pid file: ${osText(e)}`);
      }
      if (writeOnceSync(fd, text) !== text.length) {
        unlinkSync(path);
        closeFileSync(fd);
        throw new Error("Failed to write pid file");
      }
      return new Pidfile(path, fd);
    }
  }

  /** Unlinks the pidfile (the lock goes with the process). */
  remove(): void {
    unlinkSync(this.path);
  }
}

/** qemu-ga's exit-time `unlink(pid_filepath)` when daemonized (done even if never written). */
export function unlinkPidfile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // nothing to do at exit
  }
}

/**
 * The command line that re-executes this program without `-d`/`--daemonize`: this process's own
 * argv from `/proc/self/cmdline` (`deno run <its flags> main.ts`, or the compiled binary) with
 * the agent arguments replaced. Without /proc: the compiled binary, or `deno run -A --no-prompt
 * --no-config <main module>` (the flags of scripts/agent_flags.ts).
 */
export function reexecCommand(
  args: readonly string[],
  mainModule: string,
  cmdline: string[] | undefined = ownCmdline(),
): string[] {
  const rest = stripDaemonize(args);
  const exe = Deno.execPath();
  if (cmdline !== undefined && cmdline.length >= args.length + 1) {
    const tail = cmdline.slice(cmdline.length - args.length);
    if (tail.every((a, i) => a === args[i])) {
      return [exe, ...cmdline.slice(1, cmdline.length - args.length), ...rest];
    }
  }
  const base = exe.split("/").pop() ?? "";
  if (base !== "deno" || !mainModule.startsWith("file:") || mainModule.includes("$deno$")) {
    return [exe, ...rest];
  }
  const script = decodeURIComponent(new URL(mainModule).pathname);
  return [exe, "run", "-A", "--no-prompt", "--no-config", "--no-code-cache", script, ...rest];
}

function ownCmdline(): string[] | undefined {
  try {
    const raw = Deno.readTextFileSync("/proc/self/cmdline");
    return raw.endsWith("\0") ? raw.slice(0, -1).split("\0") : raw.split("\0");
  } catch {
    return undefined;
  }
}

/**
 * `args` without the daemonize option: `-d` alone, `d` inside a cluster of flags
 * (`-vd` → `-v`), `--daemonize` and its unique prefixes. Arguments of options that take one are
 * left alone.
 */
export function stripDaemonize(args: readonly string[]): string[] {
  const shortWithArg = new Set(["c", "m", "p", "l", "f", "b", "a", "s", "t"]);
  const longWithArg = [
    "config",
    "method",
    "path",
    "logfile",
    "pidfile",
    "block-rpcs",
    "allow-rpcs",
    "statedir",
  ];
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (a.startsWith("--")) {
      const name = a.slice(2);
      // "--d" alone is ambiguous with --dump-conf, so a prefix needs at least "da".
      if (name.length >= 2 && "daemonize".startsWith(name)) continue;
      out.push(a);
      const takesNext = !name.includes("=") && name !== "" &&
        longWithArg.some((l) => l.startsWith(name));
      if (takesNext && i + 1 < args.length) out.push(args[++i]);
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      let kept = "-";
      let takesNext = false;
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        if (shortWithArg.has(c) || c === "F") {
          kept += a.slice(j);
          takesNext = c !== "F" && j === a.length - 1;
          break;
        }
        if (c !== "d") kept += c;
      }
      if (kept !== "-") out.push(kept);
      if (takesNext && i + 1 < args.length) out.push(args[++i]);
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * Parent side of `-d`: starts the detached child and waits for its readiness byte. Returns the
 * exit status for the parent: 0 once the child is ready, else the child's own status.
 */
export async function spawnDaemon(args: readonly string[], mainModule: string): Promise<number> {
  const [cmd, ...cmdArgs] = reexecCommand(args, mainModule);
  const child = new Deno.Command(cmd, {
    args: cmdArgs,
    env: { [DAEMON_CHILD_ENV]: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    detached: true,
  }).spawn();
  let got = "";
  const dec = new TextDecoder();
  for await (const chunk of child.stdout) {
    got += dec.decode(chunk, { stream: true });
    if (got.includes(READY)) {
      child.unref();
      return 0;
    }
  }
  const status = await child.status;
  return status.code === 0 ? 1 : status.code;
}

/**
 * Child side of `-d`, once the channel is open: pidfile (unless deferred by a frozen start),
 * umask 077, setsid, chdir `/`, tell the parent, stdio to /dev/null. Throws with qemu's
 * pidfile message; the caller logs it as critical and exits 1.
 */
export function becomeDaemon(pidfile: string | undefined): Pidfile | undefined {
  const pf = pidfile === undefined ? undefined : Pidfile.write(pidfile);
  setUmask(0o077);
  newSession(); // EPERM when Deno already made us a session leader: fine
  Deno.chdir("/");
  try {
    Deno.stdout.writeSync(new TextEncoder().encode(READY));
  } catch {
    // parent gone: carry on as a daemon anyway
  }
  redirectStdioToNull();
  return pf;
}

function fdTarget(fd: number | string): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/**
 * reopen_fd_to_null for 0, 1 and 2 — and for the copies Deno keeps of them (its stdio
 * resources are duplicates), which would otherwise hold the parent's terminal or pipes open.
 */
function redirectStdioToNull(): void {
  const stdio = new Set<string>();
  for (const fd of [0, 1, 2]) {
    const t = fdTarget(fd);
    if (t !== undefined && t !== "/dev/null") stdio.add(t);
  }
  const copies: number[] = [];
  try {
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      const fd = Number(e.name);
      const t = fdTarget(e.name);
      if (fd > 2 && t !== undefined && stdio.has(t)) copies.push(fd);
    }
  } catch {
    // no /proc: only 0-2
  }
  let nul: number;
  try {
    nul = openFileSync("/dev/null", O_RDWR, 0);
  } catch {
    return;
  }
  for (const fd of [0, 1, 2, ...copies]) dup2Sync(nul, fd);
  if (nul > 2) closeFileSync(nul);
}
