/**
 * Starting guest-exec children the way qemu-ga does through GLib (§3.3): argv[0] is the path
 * as the host gave it, the program is found with GLib's search rules (`lib/system/
 * exec_search.ts`), the environment is replaced when one is given, stdin is /dev/null or a pipe
 * fed with `input-data`, output goes to /dev/null or to pipes read to a 16 MiB cap per stream.
 *
 * Two spawn paths. `Deno.Command` runs the program with argv[0] set to the resolved absolute
 * path ("/usr/bin/sh" for "sh", "/bin/sh" for "/bin/./sh"), which a host sees in every `sh -c`
 * message ("sh: 1: x: not found") and in `$0`; so it is used only for an absolute path it
 * keeps as spelt ({@link spawnedAsSpelt}), where it spares node's stream and event layers on
 * every exec. Everything else goes through `node:child_process`, whose `argv0` option keeps
 * the path as given. Its stdio entries may also be file descriptors, which is how "merged"
 * gives stdout and stderr one pipe: Deno has no pipe(2) and ffi/ has none, so the pipe comes
 * from a `/bin/sh` spawned with a piped stdout that waits for its stdin to close — its read
 * end is ours, and reopening it through `/proc/self/fd/N` for writing yields the write end the
 * child gets as fd 1 and 2. An
 * exec-through-`/bin/sh -c '... 2>&1'` wrapper was rejected: it changes argv[0], turns spawn
 * failures into exit status 127 and searches PATH by the shell's rules, not GLib's.
 *
 * @module
 */

import type { ChildProcess, StdioOptions } from "node:child_process";
import type { Readable } from "node:stream";
import {
  chooseSearchPath,
  execCandidates,
  SEARCH_GOES_ON,
  searchFailure,
} from "../system/exec_search.ts";

/** Bytes kept per captured stream (GUEST_EXEC_MAX_OUTPUT); the rest is read and dropped. */
export const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

/** GuestExecCaptureOutputMode, with the bool branch already mapped. */
export type CaptureMode = "none" | "stdout" | "stderr" | "separated" | "merged";

/** What guest-exec asks for. */
export interface ExecRequest {
  /** argv[0], searched for when it has no slash. */
  readonly path: string;
  readonly args: readonly string[];
  /** `NAME=value` entries replacing the whole environment, when given. */
  readonly env?: readonly string[];
  /** Bytes for stdin (a pipe, closed after them); absent: stdin is /dev/null. */
  readonly input?: Uint8Array;
  readonly capture: CaptureMode;
}

/** One captured stream at the end: at most {@link EXEC_OUTPUT_CAP} bytes. */
export interface Captured {
  readonly data: Uint8Array;
  readonly truncated: boolean;
}

/** How a child ended, once it is reaped and its capture pipes are closed. */
export interface ExecOutcome {
  /** Exit status of a normal exit. */
  readonly exitcode?: number;
  /** Number of the signal that killed it. */
  readonly signal?: number;
  readonly out: Captured;
  readonly err: Captured;
}

/** A started child. */
export interface ExecChild {
  readonly pid: number;
  /** Resolves when the child is reaped and every capture pipe has reached end of file. */
  readonly finished: Promise<ExecOutcome>;
}

/** Spawn failure: the errno name and its strerror text, as GLib reports them. */
export class ExecSpawnError extends Error {
  constructor(readonly code: string, readonly text: string) {
    super(text);
    this.name = "ExecSpawnError";
  }
}

/** The guest-exec facet. */
export interface ExecFacet {
  /** Starts a child; rejects with {@link ExecSpawnError} when no candidate could be executed. */
  spawn(req: ExecRequest): Promise<ExecChild>;
}

/** glibc's strerror texts for the errors execve and spawning can report. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  EIO: "Input/output error",
  E2BIG: "Argument list too long",
  ENOEXEC: "Exec format error",
  EAGAIN: "Resource temporarily unavailable",
  ENOMEM: "Cannot allocate memory",
  EACCES: "Permission denied",
  EFAULT: "Bad address",
  ENODEV: "No such device",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EINVAL: "Invalid argument",
  ENFILE: "Too many open files in system",
  EMFILE: "Too many open files",
  ETXTBSY: "Text file busy",
  ENAMETOOLONG: "File name too long",
  ELOOP: "Too many levels of symbolic links",
  ESTALE: "Stale file handle",
  ETIMEDOUT: "Connection timed out",
  ELIBBAD: "Accessing a corrupted shared library",
};

/**
 * Deno's Node compatibility modules, loaded on the first guest-exec that goes through them (or
 * needs their signal or errno names): a static import would be hoisted to the top of the bundle
 * and loaded at start-up (more idle memory, and Node's process set-up needs /proc). Loading them
 * is most of a first guest-exec's cost (README, "Boot time"), so the Deno.Command path leaves
 * them alone until a child dies of a signal or a spawn fails.
 */
interface NodeApi {
  spawn: typeof import("node:child_process").spawn;
  open: typeof import("node:fs/promises").open;
  resolve: typeof import("node:path").posix.resolve;
  signals: Readonly<Record<string, number>>;
  errnoName: ReadonlyMap<number, string>;
}

let nodeApi: NodeApi | undefined;

/** Whether the Node compatibility modules have been loaded (tests watch the direct path). */
export function nodeModulesLoaded(): boolean {
  return nodeApi !== undefined;
}

async function loadNodeApi(): Promise<NodeApi> {
  if (nodeApi) return nodeApi;
  const [cp, os, fs, path] = await Promise.all([
    import("node:child_process"),
    import("node:os"),
    import("node:fs/promises"),
    import("node:path"),
  ]);
  return nodeApi = {
    spawn: cp.spawn,
    open: fs.open,
    resolve: path.posix.resolve,
    signals: os.constants.signals,
    errnoName: new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name])),
  };
}

/** {@link spawnErrorOf}, with the errno names loaded first when Deno's error needs them. */
async function spawnError(e: unknown): Promise<ExecSpawnError> {
  if (!nodeApi && e instanceof Error && OS_ERROR.test(e.message)) await loadNodeApi();
  return spawnErrorOf(e);
}

/** Deno's own errors: "Failed to spawn '/x': Not a directory (os error 20)". */
const OS_ERROR = /(?:^|: )([^:]*) \(os error (\d+)\)/;

/** The errno name and strerror text of a spawn error from node:child_process or Deno. */
function spawnErrorOf(e: unknown): ExecSpawnError {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err.message === "string" ? err.message : String(e);
  const os = OS_ERROR.exec(message);
  if (os) return new ExecSpawnError(nodeApi?.errnoName.get(Number(os[2])) ?? "EIO", os[1]);
  const code = typeof err.code === "string" ? err.code : "EIO";
  return new ExecSpawnError(code, STRERROR[code] ?? message);
}

/** Spawns one candidate; resolves with the child once it runs, rejects with the spawn error. */
function spawnOne(
  file: string,
  argv0: string,
  args: readonly string[],
  env: Record<string, string> | undefined,
  stdio: StdioOptions,
): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      // Deno execs any other path in its absolute lexical normal form, and node passes argv0
      // on only when it differs from the file: hand over that form, so argv[0] stays as spelt.
      const run = spawnedAsSpelt(file) ? file : nodeApi!.resolve(file);
      child = nodeApi!.spawn(run, [...args], { argv0, env, stdio });
    } catch (e) {
      reject(spawnErrorOf(e));
      return;
    }
    const onError = (e: unknown) => reject(spawnErrorOf(e));
    child.once("error", onError);
    child.once("spawn", () => {
      child.off("error", onError);
      resolve(child);
    });
  });
}

/**
 * True when Deno's spawn executes `path` as spelt and passes it as argv[0] unchanged: it makes
 * a path absolute and drops `.` and `..` segments and a trailing slash ("/bin/sh/" would run
 * /bin/sh instead of failing with ENOTDIR), so only an absolute path without them is kept.
 */
export function spawnedAsSpelt(path: string): boolean {
  return /^(?:\/(?!\.\.?(?:\/|$))[^/]+)+$/.test(path);
}

/** Spawns one candidate through Deno.Command, without node's stream and event layers. */
async function spawnDirect(
  file: string,
  args: readonly string[],
  env: Record<string, string> | undefined,
  stdio: Pick<Deno.CommandOptions, "stdin" | "stdout" | "stderr">,
): Promise<Deno.ChildProcess> {
  try {
    return new Deno.Command(file, {
      args: [...args],
      env,
      clearEnv: env !== undefined,
      ...stdio,
    }).spawn();
  } catch (e) {
    throw await spawnError(e);
  }
}

/**
 * Runs GLib's candidate loop: the first candidate that executes wins. `start` spawns one
 * candidate and rejects with its {@link ExecSpawnError}.
 */
async function spawnSearching<C>(
  req: ExecRequest,
  start: (file: string, env: Record<string, string> | undefined) => C | Promise<C>,
): Promise<C> {
  const env = req.env ? environObject(req.env) : undefined;
  const searchPath = chooseSearchPath(req.env, Deno.env.get("PATH"));
  const candidates = execCandidates(req.path, searchPath);
  const seen: string[] = [];
  for (const [i, file] of candidates.entries()) {
    // A candidate that does not exist fails execve the same way: skip the fork. Without the
    // stat, the last one fails the same way in the spawn, unless Deno would rewrite its path.
    if (i < candidates.length - 1 || !spawnedAsSpelt(file)) {
      const missing = await Deno.stat(file).then(
        () => undefined,
        async (e) => (await spawnError(e)).code,
      );
      if (missing === "ENOENT" || missing === "ENOTDIR") {
        seen.push(missing);
        continue;
      }
    }
    try {
      return await start(file, env);
    } catch (e) {
      const code = (e as ExecSpawnError).code;
      if (!SEARCH_GOES_ON.has(code)) throw e;
      seen.push(code);
    }
  }
  const code = searchFailure(seen);
  throw new ExecSpawnError(code, STRERROR[code]);
}

/**
 * The supplied environment as node wants it. Entries without `=` cannot be passed and are
 * dropped; for a repeated name the first entry wins, as getenv(3) in the child would see it.
 */
function environObject(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const eq = e.indexOf("=");
    if (eq < 0) continue;
    const name = e.slice(0, eq);
    if (!Object.hasOwn(out, name)) out[name] = e.slice(eq + 1);
  }
  return out;
}

/** Output kept up to {@link EXEC_OUTPUT_CAP} bytes; the rest is counted as truncation. */
class CappedOutput {
  readonly #chunks: Uint8Array[] = [];
  #kept = 0;
  #truncated = false;

  add(chunk: Uint8Array): void {
    const room = EXEC_OUTPUT_CAP - this.#kept;
    if (chunk.length > room) this.#truncated = true;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.#chunks.push(part);
      this.#kept += part.length;
    }
  }

  /** The kept bytes in one piece (the chunks are let go). */
  result(): Captured {
    const data = new Uint8Array(this.#kept);
    let off = 0;
    for (const c of this.#chunks) {
      data.set(c, off);
      off += c.length;
    }
    this.#chunks.length = 0;
    return { data, truncated: this.#truncated };
  }
}

/** What a stream that is not captured gives. */
const NOTHING: Captured = { data: new Uint8Array(0), truncated: false };

/** Reads a stream to its end, keeping the first {@link EXEC_OUTPUT_CAP} bytes. */
function capture(stream: Readable | null): Promise<Captured> {
  if (!stream) return Promise.resolve(NOTHING);
  return new Promise((resolve) => {
    const out = new CappedOutput();
    stream.on("data", (chunk: Uint8Array) => out.add(chunk));
    // A read error ends the stream for qemu-ga too (G_IO_STATUS_ERROR closes the channel).
    stream.once("close", () => resolve(out.result()));
    stream.once("error", () => {});
  });
}

/** Reads a Deno pipe to its end, keeping the first {@link EXEC_OUTPUT_CAP} bytes. */
async function captureStream(stream: ReadableStream<Uint8Array>): Promise<Captured> {
  const out = new CappedOutput();
  try {
    for await (const chunk of stream) out.add(chunk);
  } catch {
    // A read error ends the stream for qemu-ga too (G_IO_STATUS_ERROR closes the channel).
  }
  return out.result();
}

/** Every mode but "merged" for a path Deno spawns as spelt ({@link spawnedAsSpelt}). */
async function spawnDirectly(req: ExecRequest): Promise<ExecChild> {
  const wantOut = req.capture === "stdout" || req.capture === "separated";
  const wantErr = req.capture === "stderr" || req.capture === "separated";
  const child = await spawnSearching(req, (file, env) =>
    spawnDirect(file, req.args, env, {
      stdin: req.input ? "piped" : "null",
      stdout: wantOut ? "piped" : "null",
      stderr: wantErr ? "piped" : "null",
    }));
  const out = wantOut ? captureStream(child.stdout) : Promise.resolve(NOTHING);
  const err = wantErr ? captureStream(child.stderr) : Promise.resolve(NOTHING);
  if (req.input) {
    // The child may exit without reading: EPIPE is expected and ignored, as qemu-ga does.
    const w = child.stdin.getWriter();
    w.write(req.input).then(() => w.close(), () => w.abort()).catch(() => {});
  }
  const finished = Promise.all([child.status, out, err]).then(
    async ([st, o, e]): Promise<ExecOutcome> => ({
      exitcode: st.signal === null ? st.code : undefined,
      signal: st.signal === null ? undefined : (await loadNodeApi()).signals[st.signal],
      out: o,
      err: e,
    }),
  );
  return { pid: child.pid, finished };
}

/** A pipe whose read end is a node stream and whose write end is a file descriptor. */
async function makePipe(): Promise<
  { read: Readable; captured: Promise<Captured>; writeFd: number; close: () => Promise<void> }
> {
  // The maker waits for its stdin to close, so its write end outlives our reopening.
  const maker = await spawnOne("/bin/sh", "/bin/sh", ["-c", "read _"], undefined, [
    "pipe",
    "pipe",
    "ignore",
  ]);
  const read = maker.stdout!;
  // Observe the stream from the start, before any other await.
  const captured = capture(read);
  const fd = (read as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new ExecSpawnError("EIO", STRERROR.EIO);
  const w = await nodeApi!.open(`/proc/self/fd/${fd}`, "w");
  maker.stdin!.end();
  return { read, captured, writeFd: w.fd, close: () => w.close() };
}

/** The real facet. */
export const execFacet: ExecFacet = {
  async spawn(req) {
    if (req.capture !== "merged" && spawnedAsSpelt(req.path)) {
      // argv[0] is the path itself, so Deno.Command does the same spawn with less on top.
      return await spawnDirectly(req);
    }
    const { signals } = await loadNodeApi();
    const input = req.input ? "pipe" : "ignore";
    let child: ChildProcess;
    let out: Promise<Captured>;
    let err: Promise<Captured>;
    if (req.capture === "merged") {
      const pipe = await makePipe();
      try {
        child = await spawnSearching(
          req,
          (file, env) =>
            spawnOne(file, req.path, req.args, env, [input, pipe.writeFd, pipe.writeFd]),
        );
      } catch (e) {
        pipe.read.destroy();
        throw e;
      } finally {
        // The child holds its copies; ours would keep the pipe from ever reaching end of file.
        await pipe.close();
      }
      out = pipe.captured;
      err = capture(null);
    } else {
      const wantOut = req.capture === "stdout" || req.capture === "separated";
      const wantErr = req.capture === "stderr" || req.capture === "separated";
      const stdio: StdioOptions = [
        input,
        wantOut ? "pipe" : "ignore",
        wantErr ? "pipe" : "ignore",
      ];
      child = await spawnSearching(
        req,
        (file, env) => spawnOne(file, req.path, req.args, env, stdio),
      );
      out = capture(wantOut ? child.stdout : null);
      err = capture(wantErr ? child.stderr : null);
    }
    const reaped = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once("exit", (code: number | null, signal: string | null) => resolve({ code, signal }))
    );
    if (req.input && child.stdin) {
      // The child may exit without reading: EPIPE is expected and ignored, as qemu-ga does.
      child.stdin.on("error", () => {});
      child.stdin.end(req.input);
    }
    const finished = Promise.all([reaped, out, err]).then(([st, o, e]): ExecOutcome => ({
      exitcode: st.signal === null ? st.code ?? undefined : undefined,
      signal: st.signal === null ? undefined : signals[st.signal],
      out: o,
      err: e,
    }));
    return { pid: child.pid!, finished };
  },
};
