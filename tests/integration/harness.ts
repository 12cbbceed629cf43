/**
 * Integration harness: start qemu-ga or denoga on a unix socket in a fresh temp dir, talk raw
 * bytes to it, and run the same byte sequences against both side by side.
 *
 * Skip policy: a test that needs a real component (qemu-ga, root, loop devices) is ignored with
 * a message when the component is missing, unless `DENOGA_REQUIRE_REAL=1`, in which case it runs
 * and fails. Development aids: `DENOGA_SBS_ONLY=qemu-ga|denoga` runs one half of the side-by-side
 * suite only (checked against the cases' `expect` lines), `DENOGA_SBS_VERBOSE=1` prints every
 * transcript, `DENOGA_KEEP_TMP=1` keeps temp dirs, `QEMU_GA` overrides `/usr/sbin/qemu-ga` and
 * `DENOGA_BIN` runs a compiled denoga instead of `deno run main.ts`.
 *
 * @module
 */

import { type Json as ClientJson, parseJson, QgaClient } from "../../lib/client/connection.ts";
import { AGENT_RUN_FLAGS } from "../../scripts/agent_flags.ts";
import { hasLoopSupport, type LoopFsType, requireReal, withLoopFs } from "../fixtures/loopfs.ts";

/** Which agent implementation to run. */
export type Impl = "denoga" | "qemu-ga";

/** Repository root (the directory holding `main.ts` and `deno.json`). */
export const REPO_ROOT: string = decodeURIComponent(new URL("../../", import.meta.url).pathname)
  .replace(/\/$/, "");

/** The reference agent binary: Debian's qemu-ga 7.2, what distributions ship. */
export const QEMU_GA: string = Deno.env.get("QEMU_GA") ?? "/usr/sbin/qemu-ga";

/**
 * The newest upstream qemu-ga (all 43 Linux commands, newest texts), the reference for the
 * commands 7.2 lacks or answers differently: `../shared/reference/bin/` beside the repository.
 */
export const QEMU_GA_NEWEST: string = Deno.env.get("QEMU_GA_NEWEST") ??
  `${REPO_ROOT}/../shared/reference/bin/qemu-ga-10.2.50`;

/** `DENOGA_REQUIRE_REAL=1`: a test that would skip for a missing real component fails instead. */
export const REQUIRE_REAL: boolean = requireReal();

const KEEP_TMP = Deno.env.get("DENOGA_KEEP_TMP") === "1";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const CONNECT_RETRY_MS = 10;
/** Default guard for one reply; replies normally arrive within milliseconds. */
export const REPLY_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Real-component detection and the skip/require policy

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** True when the reference qemu-ga binary is installed. */
export function hasQemuGa(): boolean {
  return isExecutable(QEMU_GA);
}

/** True when the tests run as root (loop mounts, fsfreeze). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** True when denoga can be started (`main.ts` exists, or `DENOGA_BIN` is executable). */
export function hasDenoga(): boolean {
  const bin = Deno.env.get("DENOGA_BIN");
  if (bin) return isExecutable(bin);
  try {
    return Deno.statSync(`${REPO_ROOT}/main.ts`).isFile;
  } catch {
    return false;
  }
}

/** A named real component a test needs, and whether it is present. */
export interface Requirement {
  readonly what: string;
  readonly present: boolean;
}

/** The requirement "the newest upstream qemu-ga is beside the repository". */
export function needQemuGaNewest(): Requirement {
  return { what: `newest qemu-ga (${QEMU_GA_NEWEST})`, present: isExecutable(QEMU_GA_NEWEST) };
}

/** The requirement "qemu-ga is installed". */
export function needQemuGa(): Requirement {
  return { what: `qemu-ga (${QEMU_GA}; apt-get install qemu-guest-agent)`, present: hasQemuGa() };
}

/** The requirement "running as root". */
export function needRoot(): Requirement {
  return { what: "root", present: isRoot() };
}

const announcedSkips = new Set<string>();

/**
 * Applies the skip/require policy: returns `ignore: true` (and says why on stderr) when a
 * requirement is missing, unless `DENOGA_REQUIRE_REAL=1`; then the returned `check` throws.
 */
export function realComponents(
  testName: string,
  reqs: readonly Requirement[],
): { ignore: boolean; check: () => void } {
  const missing = reqs.filter((r) => !r.present).map((r) => r.what);
  if (missing.length === 0) return { ignore: false, check: () => {} };
  const why = `missing real component(s): ${missing.join(", ")}`;
  if (REQUIRE_REAL) {
    return {
      ignore: false,
      check: () => {
        throw new Error(`${testName}: ${why} (DENOGA_REQUIRE_REAL=1 turns this skip into failure)`);
      },
    };
  }
  if (!announcedSkips.has(why)) {
    announcedSkips.add(why);
    console.error(
      `[skip] tests needing it are ignored (first: ${testName}): ${why}; ` +
        "set DENOGA_REQUIRE_REAL=1 to fail instead",
    );
  }
  return { ignore: true, check: () => {} };
}

/**
 * `Deno.test` with the real-component policy applied. Sanitizers are off because agents, sockets
 * and child processes deliberately outlive single awaits.
 */
export function realTest(
  name: string,
  reqs: readonly Requirement[],
  fn: () => Promise<void>,
): void {
  const { ignore, check } = realComponents(name, reqs);
  Deno.test({
    name,
    ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      check();
      await fn();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What a case writes: text (UTF-8 encoded) or raw bytes. */
export type Send = string | Uint8Array;

/** Concatenates text (UTF-8) and raw byte values into one byte array. */
export function bytes(...parts: (string | number | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((p) =>
    typeof p === "string" ? enc.encode(p) : typeof p === "number" ? Uint8Array.of(p) : p
  );
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Encodes a `Send` to bytes. */
export function toBytes(s: Send): Uint8Array {
  return typeof s === "string" ? enc.encode(s) : s;
}

/** Replaces every occurrence of the ASCII `from` with `to` inside `data`. */
export function replaceBytes(data: Uint8Array, from: string, to: string): Uint8Array {
  const f = enc.encode(from);
  const t = enc.encode(to);
  const out: Uint8Array[] = [];
  let start = 0;
  // indexOf jumps to candidates natively: requests of 64 MiB pass through here.
  for (let i = data.indexOf(f[0]); i >= 0 && i + f.length <= data.length;) {
    let hit = true;
    for (let j = 1; j < f.length; j++) {
      if (data[i + j] !== f[j]) {
        hit = false;
        break;
      }
    }
    if (hit) {
      out.push(data.subarray(start, i), t);
      start = i + f.length;
    }
    i = data.indexOf(f[0], hit ? start : i + 1);
  }
  if (out.length === 0) return data;
  out.push(data.subarray(start));
  return bytes(...out);
}

/**
 * Renders reply bytes as a readable, comparable string: printable ASCII stays, every other byte
 * becomes `\xNN` (qemu-ga never sends raw non-ASCII except the 0xFF sentinel).
 */
export function showBytes(b: Uint8Array): string {
  let s = "";
  for (const c of b) {
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return s;
}

/** A JSON value with integers beyond 2^53 kept exact as `bigint`. */
export type Json = ClientJson;

/**
 * Parses one reply line (a leading 0xFF is skipped) keeping big integers exact: integers that
 * are not safe doubles come back as `bigint`, from their source text.
 */
export function parseReply(line: Uint8Array | string): Json {
  const text = typeof line === "string"
    ? line
    : dec.decode(line[0] === 0xff ? line.subarray(1) : line);
  return parseJson(text.startsWith("\xff") ? text.slice(1) : text);
}

class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`timed out after ${ms} ms: ${what}`);
    this.name = "TimeoutError";
  }
}

/** Races `p` against a failure guard of `ms` milliseconds. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Agents

/** Options for {@link startAgent}. `@DIR@` in `args` is replaced by the agent's temp dir. */
export interface AgentOptions {
  readonly impl: Impl;
  /** Extra agent arguments after `-m unix-listen -p SOCK -t STATEDIR -l LOG`. */
  readonly args?: readonly string[];
  /** Use this statedir (must exist; not removed by stop) instead of `<dir>/state`. */
  readonly statedir?: string;
  /** Extra environment variables for the agent. */
  readonly env?: Record<string, string>;
  /** Working directory; default: the agent's temp dir. */
  readonly cwd?: string;
  /** Pass `-l <dir>/agent.log` (default true). */
  readonly logfile?: boolean;
  /** Start the agent with this umask (via /bin/sh). */
  readonly umask?: number;
  /** Runs before the agent starts, e.g. to create a hook script in the temp dir. */
  readonly setup?: (dir: string) => Promise<void>;
  /** denoga only: the module `deno run` starts instead of `main.ts` (e.g. the bundle). */
  readonly entry?: string;
  /**
   * qemu-ga only: run the newest upstream qemu-ga ({@link QEMU_GA_NEWEST}) instead of 7.2; its
   * replies are compared as they are, without the 7.2 → newest normalizations.
   */
  readonly newest?: boolean;
  /**
   * An argv prefix the agent runs under, e.g. `["ip", "netns", "exec", NS]`; it must exec the
   * agent (same pid), so signals and the idle check still reach it.
   */
  readonly wrap?: readonly string[];
}

/** A running agent. */
export interface Agent {
  readonly impl: Impl;
  /** The newest upstream qemu-ga rather than 7.2 (qemu-ga only). */
  readonly newest: boolean;
  readonly socketPath: string;
  readonly statedir: string;
  /** The agent's own temp dir (socket, default statedir, log, cwd). */
  readonly dir: string;
  readonly logPath: string;
  readonly proc: Deno.ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** stdout and stderr collected so far. */
  output(): string;
  /** SIGTERM, await exit (guarded), remove the temp dir; returns the exit code. */
  stop(): Promise<number>;
  /** Sends a signal now (ignored if the process is gone). */
  kill(sig?: Deno.Signal): void;
  /**
   * Sends a signal once the agent is idle. qemu-ga's SIGTERM handler calls
   * g_main_loop_quit(), which takes the GLib context lock: a signal landing while the main
   * loop holds that lock deadlocks the agent (seen here about once per 200 stops). Idle means
   * its main thread is blocked in poll(2), read from /proc/PID/syscall; denoga needs no wait.
   */
  signalWhenIdle(sig?: Deno.Signal): Promise<void>;
  /** SIGKILL if still running and remove the temp dir; never throws. */
  dispose(): Promise<void>;
}

const liveAgents = new Set<Agent>();

globalThis.addEventListener("unload", () => {
  for (const a of liveAgents) {
    a.kill("SIGKILL");
    if (!KEEP_TMP) {
      try {
        Deno.removeSync(a.dir, { recursive: true });
      } catch {
        // best effort at exit
      }
    }
  }
});

/**
 * The command line that starts `impl` (the agent arguments appended); denoga runs `entry`
 * (default `main.ts`) unless `DENOGA_BIN` names a compiled agent.
 */
export function agentCommand(
  impl: Impl,
  agentArgs: readonly string[],
  entry = `${REPO_ROOT}/main.ts`,
  newest = false,
): string[] {
  if (impl === "qemu-ga") return [newest ? QEMU_GA_NEWEST : QEMU_GA, ...agentArgs];
  const bin = Deno.env.get("DENOGA_BIN");
  if (bin) return [bin, ...agentArgs];
  return [Deno.execPath(), "run", ...AGENT_RUN_FLAGS, entry, ...agentArgs];
}

async function collect(stream: ReadableStream<Uint8Array>, sink: (s: string) => void) {
  const d = new TextDecoder();
  try {
    for await (const chunk of stream) sink(d.decode(chunk, { stream: true }));
  } catch {
    // the pipe broke: the process is gone
  }
}

async function canConnect(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts an agent listening on `<tmp>/qga.sock` and waits until the socket accepts
 * (polling connect every 10 ms, guarded by a 30 s timeout).
 */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  if (opts.impl === "denoga" && !hasDenoga()) {
    throw new Error(`denoga cannot start: ${REPO_ROOT}/main.ts does not exist yet`);
  }
  const dir = await Deno.makeTempDir({ prefix: `denoga-it-${opts.impl}-` });
  const socketPath = `${dir}/qga.sock`;
  const statedir = opts.statedir ?? `${dir}/state`;
  if (!opts.statedir) await Deno.mkdir(statedir);
  const logPath = `${dir}/agent.log`;
  if (opts.setup) {
    await opts.setup(dir).catch(async (e) => {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    });
  }

  const agentArgs = ["-m", "unix-listen", "-p", socketPath, "-t", statedir];
  if (opts.logfile ?? true) agentArgs.push("-l", logPath);
  for (const a of opts.args ?? []) agentArgs.push(a.replaceAll("@DIR@", dir));
  const newest = opts.impl === "qemu-ga" && opts.newest === true;
  let argv = agentCommand(opts.impl, agentArgs, opts.entry, newest);
  if (opts.wrap) argv = [...opts.wrap, ...argv];
  if (opts.umask !== undefined) {
    argv = ["/bin/sh", "-c", `umask ${opts.umask.toString(8)} && exec "$@"`, "sh", ...argv];
  }

  const proc = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd ?? dir,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const readers = Promise.all([
    collect(proc.stdout, (s) => (out += s)),
    collect(proc.stderr, (s) => (out += s)),
  ]);
  let exitedFlag = false;
  const exited = proc.status.then(async (st) => {
    exitedFlag = true;
    await readers;
    return st;
  });

  let removed = false;
  const removeDir = async () => {
    if (removed || KEEP_TMP) return;
    removed = true;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const agent: Agent = {
    impl: opts.impl,
    newest,
    socketPath,
    statedir,
    dir,
    logPath,
    proc,
    exited,
    hasExited: () => exitedFlag,
    output: () => out,
    kill(sig: Deno.Signal = "SIGTERM") {
      if (exitedFlag) return;
      try {
        proc.kill(sig);
      } catch {
        // already gone
      }
    },
    async signalWhenIdle(sig: Deno.Signal = "SIGTERM") {
      if (opts.impl === "qemu-ga") await untilBlockedInPoll(proc.pid);
      agent.kill(sig);
    },
    async stop() {
      await agent.signalWhenIdle("SIGTERM");
      let st: Deno.CommandStatus;
      try {
        st = await withTimeout(exited, STOP_TIMEOUT_MS, `${opts.impl} exit after SIGTERM`);
      } catch (e) {
        agent.kill("SIGKILL");
        await exited;
        liveAgents.delete(agent);
        await removeDir();
        throw e;
      }
      liveAgents.delete(agent);
      await removeDir();
      return st.code; // Deno reports 128 + signo for a signalled process
    },
    async dispose() {
      agent.kill("SIGKILL");
      await exited;
      liveAgents.delete(agent);
      await removeDir();
    },
  };
  liveAgents.add(agent);

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exitedFlag) {
      const st = await exited;
      await agent.dispose();
      throw new Error(
        `${opts.impl} exited (code ${st.code}) before its socket accepted\n${
          argv.join(" ")
        }\n${out}`,
      );
    }
    if (await canConnect(socketPath)) return agent;
    if (Date.now() > deadline) {
      await agent.dispose();
      throw new Error(`${opts.impl}: socket did not accept within ${START_TIMEOUT_MS} ms\n${out}`);
    }
    await delay(CONNECT_RETRY_MS);
  }
}

/**
 * Waits until the process's main thread has been blocked in poll/ppoll for two consecutive
 * looks 5 ms apart (bounded by 2 s; after that the caller proceeds anyway).
 */
async function untilBlockedInPoll(pid: number): Promise<void> {
  const deadline = Date.now() + 2000;
  for (let streak = 0; streak < 2 && Date.now() < deadline;) {
    const syscall = await Deno.readTextFile(`/proc/${pid}/syscall`).catch(() => "");
    streak = /^(7|271) /.test(syscall) ? streak + 1 : 0;
    if (streak < 2) await delay(5);
  }
}

/**
 * Runs `impl` to completion with exactly `args` (no socket unless `args` name one), e.g.
 * `-b help` or `-V`, in a fresh directory unless `opts.cwd` names one; `opts.env` is added to
 * the environment and `opts.newest` picks the newest qemu-ga.
 */
export async function runAgentOnce(
  impl: Impl,
  args: readonly string[],
  entry?: string,
  opts: { env?: Record<string, string>; cwd?: string; newest?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = agentCommand(impl, args, entry, opts.newest);
  const cwd = opts.cwd ?? await Deno.makeTempDir({ prefix: `denoga-it-${impl}-once-` });
  try {
    const out = await withTimeout(
      new Deno.Command(argv[0], { args: argv.slice(1), cwd, env: opts.env, stdin: "null" })
        .output(),
      START_TIMEOUT_MS,
      `${impl} ${args.join(" ")}`,
    );
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    if (opts.cwd === undefined) await Deno.remove(cwd, { recursive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Raw client

/**
 * A byte-level client on the agent's unix socket: exact bytes out, exact reply lines in. The
 * connection and line reading are lib/client's (a {@link QgaClient} without the handshake).
 */
export class RawClient {
  readonly #client: QgaClient;

  private constructor(client: QgaClient) {
    this.#client = client;
  }

  /**
   * Connects to a unix socket. The agents listen with backlog 1 and accept one client at a
   * time; a connect to a busy socket is retried until `timeoutMs`.
   */
  static async connect(path: string, timeoutMs = REPLY_TIMEOUT_MS): Promise<RawClient> {
    return new RawClient(
      await QgaClient.connect({ unix: path }, {
        timeoutMs,
        noSync: true,
        retryMs: CONNECT_RETRY_MS,
      }),
    );
  }

  /** True once the agent closed the connection. */
  get eof(): boolean {
    return this.#client.eof;
  }

  /**
   * Writes all of `data`. `split: "bytes"` writes one byte per write, a number writes chunks of
   * that size; each write is awaited.
   */
  async send(
    data: Send,
    opts: { split?: "bytes" | number; timeoutMs?: number } = {},
  ): Promise<void> {
    const b = toBytes(data);
    const step = opts.split === "bytes" ? 1 : opts.split ?? b.length;
    const write = async () => {
      for (let off = 0; off < b.length; off += step) {
        await this.#client.send(b.subarray(off, Math.min(off + step, b.length)));
      }
    };
    await withTimeout(write(), opts.timeoutMs ?? 60_000, `writing ${b.length} bytes`);
  }

  /** Bytes received but not yet returned as a line. */
  pendingBytes(): Uint8Array {
    return this.#client.pendingBytes();
  }

  /**
   * Returns the next reply line: its bytes including a possible leading 0xFF, without the `\n`.
   * Throws on timeout or when the connection closes first.
   */
  async recvLine(timeoutMs = REPLY_TIMEOUT_MS): Promise<Uint8Array> {
    const line = await this.#client.readLineBytes(timeoutMs, "reply line");
    if (line === null) {
      throw new Error(`connection closed; unterminated: ${showBytes(this.pendingBytes())}`);
    }
    return line;
  }

  /** Returns the next `n` reply lines. */
  async recvReplies(n: number, timeoutMs = REPLY_TIMEOUT_MS): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) out.push(await this.recvLine(timeoutMs));
    return out;
  }

  /** Asserts that nothing arrives within `ms` (a failure guard for "no reply"). */
  async expectSilence(ms: number): Promise<void> {
    if (this.pendingBytes().length > 0) {
      throw new Error(`expected silence, have: ${showBytes(this.pendingBytes())}`);
    }
    if (await this.#client.waitForInput(ms)) {
      throw new Error(`expected silence for ${ms} ms, got: ${showBytes(this.pendingBytes())}`);
    }
  }

  /** Sends one request text and returns the parsed reply. */
  async request(text: string, timeoutMs = REPLY_TIMEOUT_MS): Promise<Json> {
    await this.send(text);
    return parseReply(await this.recvLine(timeoutMs));
  }

  /** Closes the connection (idempotent). */
  close(): void {
    this.#client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization: 7.2 texts → newest upstream texts (qemu-ga-behaviour.md §2.5, §3.4, §9)

/** One documented rewrite applied to qemu-ga 7.2 reply lines before comparison. */
export interface Normalization {
  readonly name: string;
  readonly from: RegExp;
  readonly to: string;
  readonly why: string;
}

/**
 * The 7.2 → newest table. Applied to qemu-ga's lines only: denoga must produce the newest texts
 * itself. Matches are on the raw (JSON-escaped) reply line.
 */
export const QGA72_TO_NEWEST: readonly Normalization[] = [
  {
    name: "blocked-command text",
    from: /(Command [^ "]+ has been disabled)"/g,
    to: '$1: the command is not allowed"',
    why: "§2.5/§9: 9.1+ appends ': the command is not allowed' for -b blocked commands",
  },
  {
    name: "frozen-command text",
    from: /(Command [^ "]+ has been disabled): the agent is in frozen state/g,
    to: "$1: the command is not allowed",
    why: "§2.5/§4/§9: 9.1+ uses one reason for every disabled command",
  },
  {
    name: "hook exit status",
    from: /fsfreeze hook has failed with status (\d+)/g,
    to: "child process has failed to execute fsfreeze hook: exit status $1",
    why: "§3.4/§9: 9.1+ runs the hook through ga_run_command (hook prints nothing)",
  },
  {
    name: "hook killed",
    from: /fsfreeze hook has terminated abnormally/g,
    to: "child process has terminated abnormally",
    why: "§3.4/§9: 9.1+ generic runner text (hook prints nothing)",
  },
  {
    name: "hook not executable / missing",
    from: /can't access fsfreeze hook '([^']*)': ([^"]*)"/g,
    to: "child process has failed to execute fsfreeze hook: failed to exec '$1': $2\\n\"",
    why: "§3.4/§9: 9.1+ dropped the access() pre-check; execvp fails in the child, which " +
      "perror()s 'failed to exec '<p>': <strerror>\\n' into the captured output",
  },
];

/** A request line as a host writes it: `{"execute":cmd[,"arguments":args][,"id":id]}`. */
export const exec = (cmd: string, args?: string, id?: string): string =>
  `{"execute":"${cmd}"${args !== undefined ? `,"arguments":${args}` : ""}${
    id !== undefined ? `,"id":${id}` : ""
  }}`;

/** Placeholder for `guest-info`'s `version` in both agents' replies. */
export const VERSION_PLACEHOLDER = "@VERSION@";

/** Applies the 7.2 → newest table to one qemu-ga line. */
export function normalizeQemuGaLine(line: string): string {
  let s = line;
  for (const n of QGA72_TO_NEWEST) s = s.replace(n.from, n.to);
  return s;
}

/** Replaces `guest-info`'s version string with a placeholder (both agents). */
export function normalizeVersion(line: string): string {
  return line.replace(
    /^((?:\\xff)?\{"return": \{"version": ")([^"]*)(", "supported_commands": )/,
    (_m, a: string, _v: string, b: string) => `${a}${VERSION_PLACEHOLDER}${b}`,
  );
}

/** The commands denoga implements first; their guest-info entries must be present. */
export const SEED_COMMANDS: readonly string[] = [
  "guest-sync-delimited",
  "guest-sync",
  "guest-ping",
  "guest-info",
  "guest-shutdown",
  "guest-file-open",
  "guest-file-close",
  "guest-file-read",
  "guest-file-write",
  "guest-file-seek",
  "guest-file-flush",
  "guest-fsfreeze-status",
  "guest-fsfreeze-freeze",
  "guest-fsfreeze-freeze-list",
  "guest-fsfreeze-thaw",
];

const INFO_LIST = /^(.*"supported_commands": \[)(.*)(\]\}(?:, "id": .*)?\})$/;

/** Splits a guest-info reply's `supported_commands` into raw entry texts, or null. */
function infoEntries(line: string): { head: string; entries: string[]; tail: string } | null {
  const m = INFO_LIST.exec(line);
  if (!m) return null;
  const entries = m[2] === "" ? [] : m[2].slice(1, -1).split("}, {").map((e) => `{${e}}`);
  return { head: m[1], entries, tail: m[3] };
}

function entryName(entry: string): string | undefined {
  return /"name": "([^"]*)"/.exec(entry)?.[1];
}

/**
 * Restricts two guest-info replies to the commands both list (kept in each reply's own order,
 * entry text untouched), so that 7.2's 42-command list and denoga's partial one compare on what
 * they share. Returns the rewritten pair plus seed commands missing from either side.
 */
export function intersectGuestInfo(
  a: string,
  b: string,
): { a: string; b: string; missingSeeds: string[] } | null {
  const ea = infoEntries(a);
  const eb = infoEntries(b);
  if (!ea || !eb) return null;
  const namesA = new Set(ea.entries.map(entryName));
  const namesB = new Set(eb.entries.map(entryName));
  const keep = (entries: string[], other: Set<string | undefined>) =>
    entries.filter((e) => other.has(entryName(e)));
  const join = (x: { head: string; tail: string }, entries: string[]) =>
    `${x.head}${entries.join(", ")}${x.tail}`;
  const missingSeeds = SEED_COMMANDS.filter((s) => !namesA.has(s) || !namesB.has(s));
  return {
    a: join(ea, keep(ea.entries, namesB)),
    b: join(eb, keep(eb.entries, namesA)),
    missingSeeds,
  };
}

// ---------------------------------------------------------------------------------------------
// Side-by-side cases

/** What a case step sees. */
export interface CaseContext {
  readonly impl: Impl;
  readonly agent: Agent;
  readonly dir: string;
  /** The mount point of the case's loop filesystem, when the suite provides one. */
  readonly mnt?: string;
  /** Values captured by `capture` steps (e.g. a file handle), substituted as `@name@`. */
  readonly vars: Map<string, string>;
  /** Substitutes `@DIR@`/`@MNT@` and captured `@name@` values in a path or text. */
  path(p: string): string;
}

/** One step of a case. `client` selects a connection (0 = the main one, opened first). */
export type Step =
  | { readonly send: Send; readonly client?: number; readonly split?: "bytes" | number }
  /** Send, then receive one line; `capture` stores that reply's `return` as `@name@`. */
  | { readonly req: Send; readonly client?: number; readonly capture?: string }
  | { readonly recv: number; readonly client?: number; readonly timeoutMs?: number }
  | { readonly silence: number; readonly client?: number }
  | { readonly connect: number }
  | { readonly disconnect: number }
  | {
    /** Host-side code; `main` is the case's first connection, for steps that poll the agent. */
    readonly host: (
      ctx: CaseContext,
      main?: RawClient,
    ) => Promise<string | readonly string[] | void>;
  };

/** A side-by-side case: the same steps run against each agent. */
export interface Case {
  readonly name: string;
  /** Steps, or one send. `@DIR@` / `@MNT@` in sent bytes become the agent's paths. */
  readonly steps: readonly Step[] | Send;
  /**
   * Expected transcript after normalization (reply lines as {@link showBytes} renders them, host
   * lines as returned). Checked for both agents.
   */
  readonly expect?: readonly string[];
  /** Guard for the whole case (default 20 s). */
  readonly timeoutMs?: number;
  /** Skip the final guest-sync sentinel (the case leaves the parser mid-message on purpose). */
  readonly noSentinel?: boolean;
  /** The case stops the agent itself (e.g. SIGTERM): its exit is not a failure. */
  readonly endsAgent?: boolean;
}

let sentinelCounter = 0;

function sendBytes(data: Send, ctx: CaseContext): Uint8Array {
  let b = replaceBytes(toBytes(data), "@DIR@", ctx.dir);
  if (ctx.mnt) b = replaceBytes(b, "@MNT@", ctx.mnt);
  for (const [name, value] of ctx.vars) b = replaceBytes(b, `@${name}@`, value);
  return b;
}

function captured(line: Uint8Array): string {
  const v = parseReply(line);
  if (v !== null && typeof v === "object" && !Array.isArray(v) && "return" in v) {
    const r = v["return"];
    if (typeof r === "string") return r;
    return typeof r === "bigint" || typeof r === "number" ? String(r) : JSON.stringify(r);
  }
  return "<no return>";
}

/** Normalizes one transcript line of `impl` (paths always; 7.2 texts for qemu-ga). */
export function normalizeLine(line: string, ctx: CaseContext): string {
  let s = line.replaceAll(ctx.dir, "@DIR@");
  if (ctx.mnt) s = s.replaceAll(ctx.mnt, "@MNT@");
  if (ctx.impl === "qemu-ga" && !ctx.agent.newest) s = normalizeQemuGaLine(s);
  return normalizeVersion(s);
}

/**
 * Runs one case against one agent and returns its normalized transcript. Throws only when the
 * agent is unusable afterwards (sentinel lost, process died): the caller then restarts it.
 */
export async function runCase(
  c: Case,
  agent: Agent,
  extra: { mnt?: string } = {},
): Promise<{ transcript: string[]; healthy: boolean; problem?: string }> {
  const vars = new Map<string, string>();
  const ctx: CaseContext = {
    impl: agent.impl,
    agent,
    dir: agent.dir,
    mnt: extra.mnt,
    vars,
    path: (p) => {
      let s = p.replaceAll("@DIR@", agent.dir);
      if (extra.mnt) s = s.replaceAll("@MNT@", extra.mnt);
      for (const [name, value] of vars) s = s.replaceAll(`@${name}@`, value);
      return s;
    },
  };
  const transcript: string[] = [];
  const clients = new Map<number, RawClient>();
  const client = (i: number) => {
    const cl = clients.get(i);
    if (!cl) throw new Error(`client ${i} is not connected`);
    return cl;
  };
  const tag = (i: number) => (i === 0 ? "" : `[c${i}] `);
  const steps: readonly Step[] = typeof c.steps === "string" || c.steps instanceof Uint8Array
    ? [{ send: c.steps }]
    : c.steps as readonly Step[];
  const body = async () => {
    clients.set(0, await RawClient.connect(agent.socketPath));
    for (const step of steps) {
      if ("send" in step) {
        await client(step.client ?? 0).send(sendBytes(step.send, ctx), { split: step.split });
      } else if ("req" in step) {
        const i = step.client ?? 0;
        await client(i).send(sendBytes(step.req, ctx));
        const l = await client(i).recvLine();
        if (step.capture) vars.set(step.capture, captured(l));
        transcript.push(tag(i) + normalizeLine(showBytes(l), ctx));
      } else if ("recv" in step) {
        const i = step.client ?? 0;
        for (const l of await client(i).recvReplies(step.recv, step.timeoutMs)) {
          transcript.push(tag(i) + normalizeLine(showBytes(l), ctx));
        }
      } else if ("silence" in step) {
        const i = step.client ?? 0;
        try {
          await client(i).expectSilence(step.silence);
        } catch (e) {
          transcript.push(`${tag(i)}# not silent: ${(e as Error).message}`);
        }
      } else if ("connect" in step) {
        clients.set(step.connect, await RawClient.connect(agent.socketPath));
      } else if ("disconnect" in step) {
        client(step.disconnect).close();
        clients.delete(step.disconnect);
      } else {
        const r = await step.host(ctx, clients.get(0));
        if (typeof r === "string") transcript.push(`# ${normalizeLine(r, ctx)}`);
        else if (r) { for (const l of r) transcript.push(`# ${normalizeLine(l, ctx)}`); }
      }
    }
    if (c.noSentinel || c.endsAgent) return;
    // Sentinel: everything the case caused arrives before the sentinel's reply, and the parser
    // must be clean afterwards or the sentinel is swallowed (→ timeout → agent restarted).
    const id = 900_000_000 + ++sentinelCounter;
    const main = clients.get(0) ?? [...clients.values()][0];
    if (!main) throw new Error("no client left for the sentinel");
    await main.send(`{"execute":"guest-sync","arguments":{"id":${id}}}`);
    const want = `{"return": ${id}}`;
    for (;;) {
      const l = showBytes(await main.recvLine(c.timeoutMs ?? 20_000));
      if (l === want) break;
      transcript.push(normalizeLine(l, ctx));
    }
  };
  try {
    await withTimeout(body(), c.timeoutMs ?? 20_000, `case "${c.name}" on ${agent.impl}`);
    return { transcript, healthy: c.endsAgent === true || !agent.hasExited() };
  } catch (e) {
    const problem = `${(e as Error).message}${agent.hasExited() ? " (agent exited)" : ""}`;
    transcript.push(`# case aborted: ${problem}`);
    return { transcript, healthy: false, problem };
  } finally {
    for (const cl of clients.values()) cl.close();
  }
}

/** Post-processing that needs both transcripts (guest-info command lists). */
export function reconcile(
  qga: readonly string[],
  deno: readonly string[],
): { qga: string[]; deno: string[]; notes: string[] } {
  const a = [...qga];
  const b = [...deno];
  const notes: string[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const r = intersectGuestInfo(a[i], b[i]);
    if (!r) continue;
    a[i] = r.a;
    b[i] = r.b;
    if (r.missingSeeds.length) notes.push(`seed commands missing: ${r.missingSeeds.join(", ")}`);
  }
  return { qga: a, deno: b, notes };
}

/** Formats two transcripts side by side for a failure message. */
export function formatDiff(
  title: string,
  left: { label: string; lines: readonly string[] },
  right: { label: string; lines: readonly string[] },
): string {
  const out = [`${title}`];
  const n = Math.max(left.lines.length, right.lines.length);
  for (let i = 0; i < n; i++) {
    const l = left.lines[i];
    const r = right.lines[i];
    if (l === r) {
      out.push(`  = ${l}`);
    } else {
      out.push(`  - ${left.label}: ${l ?? "<nothing>"}`);
      out.push(`  + ${right.label}: ${r ?? "<nothing>"}`);
    }
  }
  return out.join("\n");
}

/** Which halves run: both, or one via `DENOGA_SBS_ONLY` (development only). */
export function sideBySideImpls(): Impl[] {
  const only = Deno.env.get("DENOGA_SBS_ONLY");
  if (only === "qemu-ga" || only === "denoga") return [only];
  return ["qemu-ga", "denoga"];
}

const VERBOSE = Deno.env.get("DENOGA_SBS_VERBOSE") === "1";

/**
 * A qemu-ga + denoga pair started with the same options in separate temp dirs. After a failed
 * or broken case both are restarted, so one bug does not cascade (handle counters stay aligned).
 */
export class AgentPair {
  readonly #opts: Omit<AgentOptions, "impl">;
  readonly #impls: Impl[];
  #agents = new Map<Impl, Agent>();

  constructor(opts: Omit<AgentOptions, "impl"> = {}, impls: Impl[] = sideBySideImpls()) {
    this.#opts = opts;
    this.#impls = impls;
  }

  /** The implementations this pair runs. */
  get impls(): readonly Impl[] {
    return this.#impls;
  }

  /** Starts missing agents; returns them in `impls` order. */
  async ensure(): Promise<Agent[]> {
    for (const impl of this.#impls) {
      const a = this.#agents.get(impl);
      if (a && !a.hasExited()) continue;
      if (a) await a.dispose();
      this.#agents.set(impl, await startAgent({ ...this.#opts, impl }));
    }
    return this.#impls.map((i) => this.#agents.get(i)!);
  }

  /** Kills both agents so that the next `ensure` starts fresh ones. */
  async reset(): Promise<void> {
    for (const a of this.#agents.values()) await a.dispose();
    this.#agents.clear();
  }

  /** Stops both with SIGTERM; returns exit codes by implementation. */
  async stop(): Promise<Map<Impl, number>> {
    const codes = new Map<Impl, number>();
    for (const [impl, a] of this.#agents) codes.set(impl, await a.stop());
    this.#agents.clear();
    return codes;
  }
}

/**
 * Runs cases side by side and throws (printing both transcripts) on the first mismatch, an
 * `expect` mismatch, or a broken agent. Without `pair`, a fresh pair is started and stopped.
 */
export async function sideBySide(cases: readonly Case[], pair?: AgentPair): Promise<void> {
  const p = pair ?? new AgentPair();
  try {
    for (const c of cases) await runSideBySideCase(c, p);
  } finally {
    if (!pair) await p.reset();
  }
}

/** Runs one case on both agents of `pair` and compares. */
export async function runSideBySideCase(c: Case, pair: AgentPair): Promise<void> {
  const agents = await pair.ensure();
  const results = new Map<Impl, { transcript: string[]; healthy: boolean; log: string }>();
  for (const agent of agents) {
    const r = await runCase(c, agent);
    results.set(agent.impl, { ...r, log: r.healthy ? "" : agent.output() });
  }
  await compareResults(c, results, () => pair.reset());
}

/** Compares per-implementation transcripts of one case (shared by pair and loop-fs suites). */
export async function compareResults(
  c: Case,
  results: Map<Impl, { transcript: string[]; healthy: boolean; log: string }>,
  onFailure: () => Promise<void>,
): Promise<void> {
  const problems: string[] = [];
  const q = results.get("qemu-ga");
  const d = results.get("denoga");
  let qLines = q?.transcript ?? [];
  let dLines = d?.transcript ?? [];
  if (q && d) {
    const r = reconcile(qLines, dLines);
    qLines = r.qga;
    dLines = r.deno;
    problems.push(...r.notes);
    if (JSON.stringify(qLines) !== JSON.stringify(dLines)) {
      problems.push(
        formatDiff(
          "qemu-ga (normalized) vs denoga:",
          { label: "qemu-ga", lines: qLines },
          { label: "denoga ", lines: dLines },
        ),
      );
    }
  }
  for (const [impl, r] of results) {
    const lines = impl === "qemu-ga" ? qLines : dLines;
    if (c.expect && JSON.stringify(lines) !== JSON.stringify(c.expect)) {
      problems.push(
        formatDiff(
          `${impl} vs expected:`,
          { label: "expected", lines: c.expect },
          { label: impl.padEnd(8), lines },
        ),
      );
    }
    if (!r.healthy) problems.push(`${impl} broke during the case; its output:\n${r.log}`);
    if (VERBOSE) console.log(`--- ${c.name} [${impl}]\n${lines.join("\n")}`);
  }
  if (problems.length) {
    await onFailure();
    throw new Error(`case "${c.name}":\n${problems.join("\n")}`);
  }
}

/**
 * Registers one `Deno.test` per case, all sharing one agent pair started with `opts`; a final
 * test stops the pair and asserts both exit 0 on SIGTERM.
 */
export function registerSideBySide(
  suite: string,
  cases: readonly Case[],
  opts: Omit<AgentOptions, "impl"> = {},
  reqs: readonly Requirement[] = [needQemuGa()],
): void {
  const pair = new AgentPair(opts);
  for (const c of cases) {
    realTest(`${suite}: ${c.name}`, reqs, () => runSideBySideCase(c, pair));
  }
  realTest(`${suite}: both agents exit 0 on SIGTERM`, reqs, async () => {
    // A frozen agent ignores SIGTERM (§4): thaw first, in case a failed case left one frozen.
    for (const a of await pair.ensure()) {
      const c = await RawClient.connect(a.socketPath);
      try {
        await c.send('{"execute":"guest-fsfreeze-thaw"}');
        await c.recvLine();
      } finally {
        c.close();
      }
    }
    const codes = await pair.stop();
    for (const [impl, code] of codes) {
      if (code !== 0) throw new Error(`${impl} exited with ${code} on SIGTERM`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Cases on real loop-mounted filesystems, one agent at a time

/**
 * Best-effort thaw through the agent (a frozen agent ignores SIGTERM); the loop fixture's own
 * `fsfreeze -u` covers an agent that no longer answers.
 */
async function thawThroughAgent(socketPath: string): Promise<void> {
  try {
    const c = await QgaClient.connect({ unix: socketPath }, { timeoutMs: 2000, noSync: true });
    try {
      await c.request("guest-fsfreeze-thaw", undefined, 5000);
    } finally {
      c.close();
    }
  } catch {
    // the agent may be gone or deaf
  }
}

/** The requirements of loop-filesystem cases: qemu-ga, root and loop devices for `types`. */
export function needLoop(types: LoopFsType[]): Requirement[] {
  return [needQemuGa(), needRoot(), {
    what: `loop devices and mkfs for ${types.join(", ")}`,
    present: hasLoopSupport(types),
  }];
}

/**
 * Registers a case run on a fresh `fs` loop mount (`@MNT@`) for each implementation in turn,
 * each with a fresh agent started with `opts`; afterwards the mount is thawed (agent, then
 * kernel) before the agent is stopped, and the transcripts are compared.
 */
export function registerLoopSideBySide(
  fs: LoopFsType,
  c: Case,
  opts: Omit<AgentOptions, "impl"> = {},
): void {
  realTest(`loop ${fs}: ${c.name}`, needLoop([fs]), async () => {
    const results = new Map<Impl, { transcript: string[]; healthy: boolean; log: string }>();
    for (const impl of sideBySideImpls()) {
      await withLoopFs(fs, async (mnt) => {
        const agent = await startAgent({ ...opts, impl });
        try {
          const r = await runCase(c, agent, { mnt });
          results.set(impl, { ...r, log: agent.output() });
        } finally {
          if (!agent.hasExited()) await thawThroughAgent(agent.socketPath);
          await agent.stop().catch(() => agent.dispose());
        }
      });
    }
    await compareResults(c, results, async () => {});
  });
}
