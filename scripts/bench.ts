/**
 * `deno task bench`: denoga and qemu-ga side by side, in one run, with the same client code.
 *
 * Each agent runs on its own unix socket in its own temp dir (`-m unix-listen -p <sock> -t
 * <statedir>`), and both see the same machine state: pings are interleaved in blocks of 500,
 * pipelined pings in 0.25 s slices, and file transfers alternate per round (qemu-ga, then
 * denoga); with `--rounds=N` (default 3) the medians are reported.
 *
 * - guest-ping round trip, sequential request → reply: median and p99 (after 2000 warm-up pings,
 *   so the JIT has settled);
 * - pipelined guest-ping replies per second with {@link PIPELINE_DEPTH} requests in flight (one
 *   connection; each read's replies are counted and as many requests sent back in one write), and
 *   the agent's CPU per reply meanwhile;
 * - agent CPU per sequential guest-ping: utime + stime from /proc/<pid>/stat over many pings;
 * - guest-file-read MiB/s in 4 MiB chunks of a test file (open → read until eof → close);
 * - guest-file-write MiB/s in 4 MiB chunks (base64 of 4 MiB per request);
 * - idle RSS (VmRSS after start and one ping) and peak RSS (VmHWM after everything); the
 *   progress lines show each agent's VmRSS after every step.
 *
 * The per-request rows (ping round trip, pipelined pings, CPU per ping) also run against the floor
 * ({@link startFloor}): a bare Deno unix-socket responder with canned replies, the least a Deno
 * agent can cost per request; denoga's ratios to it are judged against the floor targets.
 *
 * The client keeps out of the way: one growing receive buffer per connection, replies scanned
 * once as they arrive with native `indexOf` (quote to quote, so a 5.6 MB base64 string costs one
 * call and is never decoded), requests prebuilt once. Against a fake agent that answers with
 * canned bytes it sustains ~1.3 GiB/s of guest-file-read replies and ~850k pipelined pings/s.
 *
 * Which denoga: by default the bundled agent that `deno task compile` embeds (scripts/bundle.ts,
 * built into a temp dir first) under `deno run` with the agent's flags, i.e. the shipped code in
 * the closest form this machine can run (`denort` cannot be downloaded here); its idle RSS is then
 * also measured for `deno run main.ts` (the module tree) and reported on an extra line.
 * `--source` benchmarks `deno run main.ts` instead; `DENOGA_BIN` runs a compiled denoga (a
 * wrapper script must `exec` the agent: RSS is read from the spawned PID).
 *
 * Options: `--quick` (short run for the smoke test), `--only=denoga|qemu-ga`, `--size=MiB` (file
 * size, default 256), `--rounds=N`, `--source`, `--pipelined-only` (only the pipelined pings, with
 * the floor; the figures are in the progress lines and one median line). Environment: `QEMU_GA` overrides
 * `/usr/sbin/qemu-ga`. Without qemu-ga, denoga runs alone and the ratios are null.
 *
 * Output: a table (absolute figures, ratios denoga/qemu-ga, targets) and one line
 * `BENCH_JSON {...}` ({@link BenchSummary}).
 *
 * @module
 */

import { AGENT_RUN_FLAGS } from "./agent_flags.ts";
import { bundleAgent } from "./bundle.ts";
import { type PollSummary, runPollBench } from "./bench_poll.ts";

/** Which agent implementation. */
export type Impl = "denoga" | "qemu-ga";
/** What answers on a benchmarked socket: an agent, or the floor (a bare Deno responder). */
export type Runner = Impl | "floor";

/** Requests kept outstanding in the pipelined ping measurement. */
export const PIPELINE_DEPTH = 64;
/** Bytes per guest-file-read / guest-file-write request. */
export const CHUNK = 4 * 1024 * 1024;

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const QEMU_GA = Deno.env.get("QEMU_GA") ?? "/usr/sbin/qemu-ga";
const MiB = 1024 * 1024;
/** USER_HZ on Linux x86-64 and aarch64 (the unit of /proc/<pid>/stat times). */
const CLK_TCK = 100;
const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Options

/** Run parameters. */
export interface BenchOptions {
  quick: boolean;
  only: Impl | null;
  /** Size of the read and write test files, MiB (a multiple of 4 is used). */
  sizeMiB: number;
  pingWarmup: number;
  pingIterations: number;
  /** Sequential pings per agent and round over which agent CPU is measured. */
  cpuPings: number;
  pipelineSeconds: number;
  /** Repetitions of the ping, pipeline, read and write measurements (medians are reported). */
  rounds: number;
  /** Pause between the ping and the idle RSS sample. */
  idleSettleMs: number;
  /** Benchmark `deno run main.ts` instead of the bundle. */
  source: boolean;
  /** Run the poll benchmark (scripts/bench_poll.ts; needs root). */
  poll: boolean;
  /** Run only the poll benchmark. */
  pollOnly: boolean;
  /** Run only the pipelined guest-ping measurement (all agents and the floor, `rounds` times). */
  pipelinedOnly: boolean;
}

const USAGE = "usage: bench.ts [--quick] [--only=denoga|qemu-ga] [--size=MiB] [--rounds=N] " +
  "[--source] [--no-poll | --poll-only | --pipelined-only]";

/** Parses the command line; throws on unknown options. */
export function parseOptions(args: readonly string[]): BenchOptions {
  let quick = false;
  let only: Impl | null = null;
  let sizeMiB: number | null = null;
  let rounds: number | null = null;
  let source = false;
  let poll = true;
  let pollOnly = false;
  let pipelinedOnly = false;
  for (const a of args) {
    if (a === "--quick") quick = true;
    else if (a === "--no-poll") poll = false;
    else if (a === "--poll-only") pollOnly = true;
    else if (a === "--pipelined-only") pipelinedOnly = true;
    else if (a === "--source") source = true;
    else if (a.startsWith("--only=")) {
      const v = a.slice("--only=".length);
      if (v !== "denoga" && v !== "qemu-ga") throw new Error(`--only must be denoga or qemu-ga`);
      only = v;
    } else if (a.startsWith("--size=")) {
      const v = Number(a.slice("--size=".length));
      if (!Number.isInteger(v) || v < 4) throw new Error("--size must be an integer >= 4 (MiB)");
      sizeMiB = v;
    } else if (a.startsWith("--rounds=")) {
      const v = Number(a.slice("--rounds=".length));
      if (!Number.isInteger(v) || v < 1) throw new Error("--rounds must be a positive integer");
      rounds = v;
    } else if (a === "-h" || a === "--help") {
      throw new Error(USAGE);
    } else {
      throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (pollOnly && !poll) throw new Error(`--poll-only and --no-poll exclude each other`);
  if (pipelinedOnly && pollOnly) {
    throw new Error(`--pipelined-only and --poll-only exclude each other`);
  }
  const size = sizeMiB ?? (quick ? 8 : 256);
  return {
    quick,
    only,
    sizeMiB: Math.ceil(size / 4) * 4,
    pingWarmup: quick ? 50 : 2000,
    pingIterations: quick ? 200 : 2000,
    cpuPings: quick ? 2000 : 20000,
    pipelineSeconds: quick ? 0.5 : 2,
    rounds: rounds ?? (quick ? 1 : 3),
    idleSettleMs: quick ? 200 : 1000,
    source,
    poll: poll && !pipelinedOnly,
    pollOnly,
    pipelinedOnly,
  };
}

// ---------------------------------------------------------------------------------------------
// Client

/**
 * A reply line: `buf[start, end)` without the newline; valid until the next read. `bigStart` /
 * `bigEnd` are the quotes around the line's longest string (the base64 payload), or -1.
 */
interface Line {
  buf: Uint8Array;
  start: number;
  end: number;
  bigStart: number;
  bigEnd: number;
}

/** Strings longer than this are not decoded by {@link scanReply} (base64 payloads). */
const SMALL_STRING = 4096;

/**
 * A raw QGA connection with a reusable, growing receive buffer.
 *
 * Replies are scanned once, as they arrive (overlapping with the agent still sending): outside
 * strings the scanner looks for the next quote or newline, inside a string for the closing
 * quote, both with native `indexOf` over the new bytes only. So a 5.6 MB base64 string costs one
 * pass of `indexOf`, and its span is remembered for {@link scanReply}.
 */
export class Client {
  readonly #conn: Deno.UnixConn;
  #buf = new Uint8Array(8 * MiB);
  /** Start of the unconsumed data (the current line). */
  #start = 0;
  #end = 0;
  /** Bytes before this have been scanned. */
  #scan = 0;
  /** Open quote of the string being scanned, or -1 outside strings. */
  #inString = -1;
  #bigStart = -1;
  #bigEnd = -1;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timedOut = "";

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  static async connect(path: string): Promise<Client> {
    return new Client(await Deno.connect({ transport: "unix", path }));
  }

  /** Closes the connection after `ms` unless disarmed; pending reads then fail with `what`. */
  arm(ms: number, what: string): void {
    this.disarm();
    this.#timer = setTimeout(() => {
      this.#timedOut = `timed out after ${ms} ms: ${what}`;
      this.close();
    }, ms);
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async send(data: Uint8Array): Promise<void> {
    let off = 0;
    try {
      while (off < data.length) off += await this.#conn.write(data.subarray(off));
    } catch (e) {
      throw new Error(this.#timedOut || `write failed: ${(e as Error).message}`);
    }
  }

  /** Reads once more from the socket (making room first). */
  async #fill(): Promise<void> {
    if (this.#start === this.#end) {
      this.#start = this.#end = this.#scan = 0;
    }
    if (this.#buf.length - this.#end < 256 * 1024) {
      const shift = this.#start;
      if (shift > 0) {
        this.#buf.copyWithin(0, shift, this.#end);
        this.#start = 0;
        this.#end -= shift;
        this.#scan -= shift;
        if (this.#inString !== -1) this.#inString -= shift;
        if (this.#bigStart !== -1) {
          this.#bigStart -= shift;
          this.#bigEnd -= shift;
        }
      }
      if (this.#buf.length - this.#end < 256 * 1024) {
        const grown = new Uint8Array(this.#buf.length * 2);
        grown.set(this.#buf.subarray(0, this.#end));
        this.#buf = grown;
      }
    }
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buf.subarray(this.#end));
    } catch (e) {
      throw new Error(this.#timedOut || `read failed: ${(e as Error).message}`);
    }
    if (n === null) throw new Error(this.#timedOut || "the agent closed the connection");
    this.#end += n;
  }

  /** Position of the next newline outside strings in the buffered data, or -1. */
  #nextNewline(): number {
    const view = this.#buf.subarray(0, this.#end);
    while (this.#scan < this.#end) {
      if (this.#inString !== -1) {
        const q = view.indexOf(0x22, this.#scan);
        if (q === -1) {
          this.#scan = this.#end;
          return -1;
        }
        this.#scan = q + 1;
        let bs = 0;
        while (view[q - 1 - bs] === 0x5c) bs++;
        if ((bs & 1) === 1) continue; // an escaped quote
        const open = this.#inString;
        this.#inString = -1;
        if (q - open - 1 > SMALL_STRING && q - open > this.#bigEnd - this.#bigStart) {
          this.#bigStart = open;
          this.#bigEnd = q;
        }
      } else {
        const q = view.indexOf(0x22, this.#scan);
        const stop = q === -1 ? this.#end : q;
        const nl = stop - this.#scan < 64
          ? indexOfIn(view, 0x0a, this.#scan, stop)
          : view.subarray(0, stop).indexOf(0x0a, this.#scan);
        if (nl !== -1) {
          this.#scan = nl;
          return nl;
        }
        if (q === -1) {
          this.#scan = this.#end;
          return -1;
        }
        this.#inString = q;
        this.#scan = q + 1;
      }
    }
    return -1;
  }

  /** Consumes the line ending at `nl`. */
  #consume(nl: number): void {
    this.#start = this.#scan = nl + 1;
    this.#bigStart = this.#bigEnd = -1;
  }

  /** The next reply line. */
  async line(): Promise<Line> {
    for (;;) {
      const nl = this.#nextNewline();
      if (nl !== -1) {
        const l: Line = {
          buf: this.#buf,
          start: this.#start,
          end: nl,
          bigStart: this.#bigStart,
          bigEnd: this.#bigEnd,
        };
        this.#consume(nl);
        return l;
      }
      await this.#fill();
    }
  }

  /**
   * Waits for at least one reply, consumes every complete reply buffered, and returns how many.
   * Each must be `expectLen` bytes long (cheap check that all replies are the expected one).
   */
  async lines(expectLen: number): Promise<number> {
    let count = 0;
    for (;;) {
      // Short replies without strings that could hold a newline: a plain newline search.
      const view = this.#buf.subarray(0, this.#end);
      for (let nl = view.indexOf(0x0a, this.#scan); nl !== -1; nl = view.indexOf(0x0a, nl + 1)) {
        if (nl - this.#start !== expectLen) {
          throw new Error(`unexpected reply: ${text(this.#buf, this.#start, nl)}`);
        }
        this.#consume(nl);
        count++;
      }
      this.#scan = this.#end;
      if (count > 0) return count;
      await this.#fill();
    }
  }

  /** Sends one request and returns the small fields of its reply ({@link scanReply}). */
  async call(request: Uint8Array): Promise<Map<string, string>> {
    await this.send(request);
    const l = await this.line();
    return scanReply(l.buf, l.start, l.end, l.bigStart, l.bigEnd);
  }

  close(): void {
    this.disarm();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

function indexOfIn(view: Uint8Array, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (view[i] === byte) return i;
  return -1;
}

function text(buf: Uint8Array, start: number, end: number): string {
  const s = dec.decode(buf.subarray(start, Math.min(end, start + 300)));
  return end - start > 300 ? `${s}…` : s;
}

/**
 * Flattens a reply into key → raw value text without decoding big strings. Nested objects are
 * flattened (`{"return": {"count": 3}}` gives `return` → `{` and `count` → `3`); the string
 * whose quotes are at `bigStart`/`bigEnd` (known from the receive scan) is skipped without
 * looking at it and comes back as `<N bytes>`. QGA replies never repeat a key across levels
 * where it matters here.
 */
export function scanReply(
  buf: Uint8Array,
  start: number,
  end: number,
  bigStart = -1,
  bigEnd = -1,
): Map<string, string> {
  const out = new Map<string, string>();
  const view = buf.subarray(0, end);
  let p = start;
  for (;;) {
    const q = view.indexOf(0x22, p);
    if (q === -1) break;
    const kEnd = closingQuote(view, q + 1);
    if (kEnd === -1) break;
    const key = dec.decode(view.subarray(q + 1, kEnd));
    let v = kEnd + 1;
    while (v < end && (view[v] === 0x3a || view[v] === 0x20)) v++;
    if (v >= end) break;
    const c = view[v];
    if (c === 0x22) {
      const sEnd = v === bigStart ? bigEnd : closingQuote(view, v + 1);
      if (sEnd === -1) break;
      out.set(
        key,
        sEnd - v - 1 > SMALL_STRING
          ? `<${sEnd - v - 1} bytes>`
          : dec.decode(view.subarray(v + 1, sEnd)),
      );
      p = sEnd + 1;
    } else if (c === 0x7b || c === 0x5b) {
      out.set(key, String.fromCharCode(c));
      p = v + 1;
    } else {
      let e = v;
      while (e < end && view[e] !== 0x2c && view[e] !== 0x7d && view[e] !== 0x5d) e++;
      out.set(key, dec.decode(view.subarray(v, e)).trim());
      p = e;
    }
  }
  return out;
}

function closingQuote(view: Uint8Array, from: number): number {
  for (let i = view.indexOf(0x22, from); i !== -1; i = view.indexOf(0x22, i + 1)) {
    let bs = 0;
    while (view[i - 1 - bs] === 0x5c) bs++;
    if ((bs & 1) === 0) return i;
  }
  return -1;
}

/** One request line. */
export function request(execute: string, args?: Record<string, unknown>): Uint8Array {
  return enc.encode(
    JSON.stringify(args === undefined ? { execute } : { execute, arguments: args }) + "\n",
  );
}

function expectReturn(reply: Map<string, string>, what: string): void {
  if (!reply.has("return")) throw new Error(`${what} failed: ${JSON.stringify([...reply])}`);
}

// ---------------------------------------------------------------------------------------------
// Agents

/** How {@link AgentProc.start} runs an agent beyond the defaults. */
export interface StartOptions {
  /** denoga: the module `deno run` starts (the bundle) instead of `main.ts`. */
  entry?: string;
  /** qemu-ga: this binary instead of `QEMU_GA`. */
  qemuGa?: string;
  /** An argv prefix, e.g. `ip netns exec NS`, so the agent sees the benchmark's network. */
  wrap?: readonly string[];
  /** Run this argv instead of an agent (a floor responder); the socket path is appended. */
  argv?: readonly string[];
}

/** A running agent and its temp dir. */
export class AgentProc {
  readonly impl: Runner;
  readonly dir: string;
  readonly socket: string;
  readonly proc: Deno.ChildProcess;
  readonly pid: number;
  #output = "";
  #exited = false;
  readonly #status: Promise<Deno.CommandStatus>;

  private constructor(impl: Runner, dir: string, socket: string, proc: Deno.ChildProcess) {
    this.impl = impl;
    this.dir = dir;
    this.socket = socket;
    this.proc = proc;
    this.pid = proc.pid;
    this.#status = proc.status.finally(() => (this.#exited = true));
    void this.#collect(proc.stdout);
    void this.#collect(proc.stderr);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const d = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.#output = (this.#output + d.decode(chunk, { stream: true })).slice(-16384);
      }
    } catch {
      // the process is gone
    }
  }

  /** Starts `impl` in a fresh temp dir and waits until its socket accepts connections. */
  static async start(
    impl: Runner,
    dirs: string[],
    entry?: string,
    opts: StartOptions = {},
  ): Promise<AgentProc> {
    entry ??= opts.entry;
    const dir = await Deno.makeTempDir({ prefix: `denoga-bench-${impl}-` });
    dirs.push(dir);
    const socket = `${dir}/qga.sock`;
    const statedir = `${dir}/state`;
    await Deno.mkdir(statedir);
    const agentArgs = ["-m", "unix-listen", "-p", socket, "-t", statedir];
    const bin = Deno.env.get("DENOGA_BIN");
    const agentArgv = opts.argv
      ? [...opts.argv, socket]
      : impl === "qemu-ga"
      ? [opts.qemuGa ?? QEMU_GA, ...agentArgs]
      : bin
      ? [bin, ...agentArgs]
      : [Deno.execPath(), "run", ...AGENT_RUN_FLAGS, entry ?? `${ROOT}/main.ts`, ...agentArgs];
    const argv = [...(opts.wrap ?? []), ...agentArgv];
    const proc = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const agent = new AgentProc(impl, dir, socket, proc);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (agent.#exited) {
        throw new Error(`${impl} exited during start-up:\n${agent.#output}`);
      }
      try {
        const c = await Deno.connect({ transport: "unix", path: socket });
        c.close();
        return agent;
      } catch {
        if (Date.now() > deadline) {
          throw new Error(`${impl} did not listen on ${socket} within 30 s:\n${agent.#output}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** VmRSS and VmHWM in MiB, from /proc/<pid>/status. */
  memory(): { rssMiB: number; hwmMiB: number } {
    const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
    const kib = (field: string) => {
      const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
      if (!m) throw new Error(`no ${field} in /proc/${this.pid}/status`);
      return Number(m[1]) / 1024;
    };
    return { rssMiB: kib("VmRSS"), hwmMiB: kib("VmHWM") };
  }

  /** CPU time used so far (utime + stime from /proc/<pid>/stat), ms. */
  cpuMs(): number {
    const stat = Deno.readTextFileSync(`/proc/${this.pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK;
  }

  /**
   * CPU time used so far by the threads alive now, ns, from each task's schedstat: precise
   * enough to split a poll cycle by command (stat's utime/stime tick every 10 ms).
   */
  threadsCpuNs(): number {
    let ns = 0;
    for (const t of Deno.readDirSync(`/proc/${this.pid}/task`)) {
      try {
        const s = Deno.readTextFileSync(`/proc/${this.pid}/task/${t.name}/schedstat`);
        ns += Number(s.slice(0, s.indexOf(" ")));
      } catch {
        // the thread ended meanwhile
      }
    }
    return ns;
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Recent stdout/stderr, for error messages. */
  output(): string {
    return this.#output;
  }

  /** SIGTERM, then SIGKILL after 5 s; never throws. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    try {
      this.proc.kill("SIGTERM");
    } catch {
      // already gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          this.proc.kill("SIGKILL");
        } catch {
          // already gone
        }
        resolve();
      }, 5000);
    });
    await Promise.race([this.#status.then(() => {}, () => {}), killed]);
    clearTimeout(timer);
    await this.#status.catch(() => {});
  }

  /** Opens a connection guarded by a timeout, runs `fn`, closes it. */
  async session<T>(what: string, ms: number, fn: (c: Client) => Promise<T>): Promise<T> {
    const c = await Client.connect(this.socket);
    c.arm(ms, `${what} on ${this.impl}`);
    try {
      return await fn(c);
    } catch (e) {
      const tail = this.#exited ? `\n${this.impl} exited; output:\n${this.#output}` : "";
      throw new Error(`${what} on ${this.impl}: ${(e as Error).message}${tail}`);
    } finally {
      c.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The floor

/**
 * The floor responder: a bare Deno unix-socket server answering each request line with a
 * canned reply found by the command's name (from a JSON file of replies recorded from denoga,
 * `{"return": {}}` for the others), the replies to one read written in one go as denoga does:
 * the least work a Deno agent can do per request, i.e. what Deno's runtime and a socket cost.
 */
const FLOOR_SOURCE = `
const enc0 = new TextEncoder();
const dec = new TextDecoder();
const replies = Object.fromEntries(
  Object.entries(JSON.parse(await Deno.readTextFile(Deno.args[0]))).map(([k, v]) => [k, enc0.encode(v)]),
);
const other = enc0.encode('{"return": {}}\\n');
const listener = Deno.listen({ transport: "unix", path: Deno.args[1] });
for await (const conn of listener) {
  (async () => {
    let buf = new Uint8Array(65536);
    let end = 0;
    for (;;) {
      if (end === buf.length) {
        const grown = new Uint8Array(buf.length * 2);
        grown.set(buf);
        buf = grown;
      }
      const n = await conn.read(buf.subarray(end)).catch(() => null);
      if (n === null) break;
      end += n;
      const out = [];
      let start = 0;
      const view = buf.subarray(0, end);
      for (let nl = view.indexOf(10, end - n); nl !== -1; nl = view.indexOf(10, nl + 1)) {
        const line = dec.decode(view.subarray(start, nl));
        const at = line.indexOf('"execute":"') + 11;
        out.push(replies[line.slice(at, line.indexOf('"', at))] ?? other);
        start = nl + 1;
      }
      buf.copyWithin(0, start, end);
      end -= start;
      if (out.length === 0) continue;
      let data = out[0];
      if (out.length > 1) {
        data = new Uint8Array(out.reduce((t, r) => t + r.length, 0));
        let off = 0;
        for (const r of out) {
          data.set(r, off);
          off += r.length;
        }
      }
      for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
    }
    conn.close();
  })();
}
`;

/**
 * Starts the floor responder in a temp dir of its own, answering the commands of `replies`
 * (name → reply line with its newline) with those bytes; `wrap` as in {@link StartOptions}.
 */
export async function startFloor(
  dirs: string[],
  replies: Record<string, string> = {},
  wrap?: readonly string[],
): Promise<AgentProc> {
  const dir = await Deno.makeTempDir({ prefix: "denoga-bench-floor-src-" });
  dirs.push(dir);
  const script = `${dir}/floor.ts`;
  const recorded = `${dir}/replies.json`;
  await Deno.writeTextFile(script, FLOOR_SOURCE);
  await Deno.writeTextFile(recorded, JSON.stringify(replies));
  const argv = [Deno.execPath(), "run", "-A", "--no-config", script, recorded];
  return await AgentProc.start("floor", dirs, undefined, { argv, wrap });
}

// ---------------------------------------------------------------------------------------------
// Measurements

const PING = request("guest-ping");
/** Length of `{"return": {}}` (without the newline). */
const PING_REPLY_LEN = '{"return": {}}'.length;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * Runs `fn` with one connection per agent (each guarded by a timeout); errors name the agent.
 */
async function withClients<T>(
  agents: readonly AgentProc[],
  what: string,
  ms: number,
  fn: (clients: Client[]) => Promise<T>,
): Promise<T> {
  const clients: Client[] = [];
  try {
    for (const a of agents) {
      const c = await Client.connect(a.socket);
      c.arm(ms, `${what} on ${a.impl}`);
      clients.push(c);
    }
    return await fn(clients);
  } catch (e) {
    const dead = agents.filter((a) => a.exited).map((a) =>
      `\n${a.impl} exited; output:\n${a.output()}`
    );
    throw new Error(`${what}: ${(e as Error).message}${dead.join("")}`);
  } finally {
    for (const c of clients) c.close();
  }
}

/** Pings sent to one agent before switching to the next (ping and pipeline interleaving). */
const PING_BLOCK = 500;
/** Length of one pipelined slice before switching agents, seconds. */
const PIPELINE_SLICE = 0.25;

/**
 * Sequential guest-ping round trips, interleaved in blocks of {@link PING_BLOCK} across the
 * agents so that both see the same machine load. Returns every round trip time (µs) per agent.
 */
export async function measurePing(
  agents: readonly AgentProc[],
  o: BenchOptions,
): Promise<number[][]> {
  return await withClients(agents, "guest-ping round trip", 300_000, async (clients) => {
    const samples = clients.map(() => [] as number[]);
    const ping = async (c: Client, n: number, into: number[] | null) => {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await c.send(PING);
        await c.lines(PING_REPLY_LEN);
        into?.push((performance.now() - t0) * 1000);
      }
    };
    for (const [warm, total] of [[true, o.pingWarmup], [false, o.pingIterations]] as const) {
      for (let done = 0; done < total; done += PING_BLOCK) {
        const n = Math.min(PING_BLOCK, total - done);
        for (let k = 0; k < clients.length; k++) {
          await ping(clients[k], n, warm ? null : samples[k]);
        }
      }
    }
    return samples;
  });
}

/**
 * Agent CPU per guest-ping (µs): `o.cpuPings` sequential pings per agent, interleaved in blocks
 * of {@link PING_BLOCK}, and each agent's utime + stime before and after (an agent is idle while
 * the others are pinged). Clock ticks are coarse, hence many pings.
 */
export async function measureCpu(agents: readonly AgentProc[], o: BenchOptions): Promise<number[]> {
  return await withClients(agents, "agent CPU per guest-ping", 300_000, async (clients) => {
    const before = agents.map((a) => a.cpuMs());
    for (let done = 0; done < o.cpuPings; done += PING_BLOCK) {
      const n = Math.min(PING_BLOCK, o.cpuPings - done);
      for (const c of clients) {
        for (let i = 0; i < n; i++) {
          await c.send(PING);
          await c.lines(PING_REPLY_LEN);
        }
      }
    }
    return agents.map((a, k) => (a.cpuMs() - before[k]) * 1000 / o.cpuPings);
  });
}

/**
 * Pipelined guest-ping replies per second with PIPELINE_DEPTH requests outstanding, measured in
 * slices of {@link PIPELINE_SLICE} s alternating between the agents (`o.pipelineSeconds` per
 * agent in total, after a warm-up slice each), and each agent's CPU per reply meanwhile (all its
 * threads' schedstat): the rate depends on the client and the machine's load as well, the CPU
 * per reply on the agent alone.
 */
export async function measurePipeline(
  agents: readonly AgentProc[],
  o: BenchOptions,
): Promise<{ perSec: number[]; cpuNsPerReply: number[] }> {
  const batch = new Uint8Array(PING.length * PIPELINE_DEPTH);
  for (let i = 0; i < PIPELINE_DEPTH; i++) batch.set(PING, i * PING.length);
  /**
   * One slice: replies received and seconds taken; all replies are drained afterwards. The
   * refill for the replies of one read goes out as one write that is not waited for before the
   * next read (only before the next write): the client's turn between the agent's batches is
   * then one read wake-up, the cheapest a Deno client can make it, so the agent's own cost
   * decides the figure.
   */
  const slice = async (c: Client, seconds: number): Promise<[number, number]> => {
    // Awaited later; until then a failure is the next read's to report.
    const send = (data: Uint8Array) => {
      const p = c.send(data);
      p.catch(() => {});
      return p;
    };
    let writing = send(batch);
    let outstanding = PIPELINE_DEPTH;
    let replies = 0;
    const t0 = performance.now();
    const stopAt = t0 + seconds * 1000;
    let now = t0;
    while (now < stopAt) {
      const k = await c.lines(PING_REPLY_LEN);
      replies += k;
      outstanding -= k;
      now = performance.now();
      if (now < stopAt) {
        await writing;
        writing = send(batch.subarray(0, k * PING.length));
        outstanding += k;
      }
    }
    await writing;
    while (outstanding > 0) outstanding -= await c.lines(PING_REPLY_LEN);
    return [replies, (now - t0) / 1000];
  };
  return await withClients(agents, "pipelined guest-ping", 120_000, async (clients) => {
    for (const c of clients) await slice(c, PIPELINE_SLICE); // warm-up
    const replies = clients.map(() => 0);
    const seconds = clients.map(() => 0);
    const cpuNs = clients.map(() => 0);
    const slices = Math.max(1, Math.round(o.pipelineSeconds / PIPELINE_SLICE));
    for (let i = 0; i < slices; i++) {
      for (let k = 0; k < clients.length; k++) {
        const cpu0 = agents[k].threadsCpuNs();
        const [r, s] = await slice(clients[k], PIPELINE_SLICE);
        cpuNs[k] += agents[k].threadsCpuNs() - cpu0;
        replies[k] += r;
        seconds[k] += s;
      }
    }
    return {
      perSec: replies.map((r, k) => r / seconds[k]),
      cpuNsPerReply: replies.map((r, k) => cpuNs[k] / r),
    };
  });
}

/** Reads `path` to the end in CHUNK requests; returns bytes read. */
async function readFile(c: Client, path: string, maxChunks = Infinity): Promise<number> {
  const open = await c.call(request("guest-file-open", { path, mode: "r" }));
  expectReturn(open, "guest-file-open");
  const handle = Number(open.get("return"));
  const read = request("guest-file-read", { handle, count: CHUNK });
  let total = 0;
  for (let chunks = 0; chunks < maxChunks; chunks++) {
    const r = await c.call(read);
    expectReturn(r, "guest-file-read");
    total += Number(r.get("count"));
    if (r.get("eof") === "true") break;
  }
  expectReturn(await c.call(request("guest-file-close", { handle })), "guest-file-close");
  return total;
}

/** Creates the file guest-file-read reads: `<agent dir>/read.bin`, `o.sizeMiB` MiB. */
async function createReadFile(agent: AgentProc, o: BenchOptions, chunk: Uint8Array) {
  const size = o.sizeMiB * MiB;
  const f = await Deno.open(`${agent.dir}/read.bin`, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    for (let off = 0; off < size; off += CHUNK) {
      chunk[0] = off / CHUNK; // not every chunk identical
      let w = 0;
      while (w < CHUNK) w += await f.write(chunk.subarray(w));
    }
  } finally {
    f.close();
  }
}

/** guest-file-read MiB/s over the whole test file (after a two-chunk warm-up). */
async function measureRead(agent: AgentProc, o: BenchOptions): Promise<number> {
  const path = `${agent.dir}/read.bin`;
  const size = o.sizeMiB * MiB;
  return await agent.session("guest-file-read", 600_000, async (c) => {
    await readFile(c, path, 2);
    const t0 = performance.now();
    const total = await readFile(c, path);
    const s = (performance.now() - t0) / 1000;
    if (total !== size) throw new Error(`read ${total} bytes, expected ${size}`);
    return size / MiB / s;
  });
}

/** guest-file-write MiB/s of a test file of the configured size (after a one-chunk warm-up). */
async function measureWrite(agent: AgentProc, o: BenchOptions, b64: string): Promise<number> {
  const path = `${agent.dir}/write.bin`;
  const size = o.sizeMiB * MiB;
  try {
    return await agent.session("guest-file-write", 600_000, async (c) => {
      const writeFile = async (chunks: number) => {
        const open = await c.call(request("guest-file-open", { path, mode: "w" }));
        expectReturn(open, "guest-file-open");
        const handle = Number(open.get("return"));
        const req = enc.encode(
          `{"execute":"guest-file-write","arguments":{"handle":${handle},"buf-b64":"${b64}"}}\n`,
        );
        for (let i = 0; i < chunks; i++) {
          const r = await c.call(req);
          expectReturn(r, "guest-file-write");
          if (Number(r.get("count")) !== CHUNK) {
            throw new Error(`guest-file-write wrote ${r.get("count")} bytes, expected ${CHUNK}`);
          }
        }
        expectReturn(await c.call(request("guest-file-close", { handle })), "guest-file-close");
      };
      await writeFile(1);
      const t0 = performance.now();
      await writeFile(size / CHUNK);
      const s = (performance.now() - t0) / 1000;
      const st = await Deno.stat(path);
      if (st.size !== size) throw new Error(`file has ${st.size} bytes, expected ${size}`);
      return size / MiB / s;
    });
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Summary

/** Figures for one agent. */
export interface AgentFigures {
  pid: number;
  pingMedianUs: number;
  pingP99Us: number;
  pipelinedPerSec: number;
  cpuPerPingUs: number;
  readMiBps: number;
  writeMiBps: number;
  idleRssMiB: number;
  peakRssMiB: number;
  finalRssMiB: number;
}

/** The keys every {@link AgentFigures} has (the smoke test checks them). */
export const FIGURE_KEYS: readonly (keyof AgentFigures)[] = [
  "pid",
  "pingMedianUs",
  "pingP99Us",
  "pipelinedPerSec",
  "cpuPerPingUs",
  "readMiBps",
  "writeMiBps",
  "idleRssMiB",
  "peakRssMiB",
  "finalRssMiB",
];

/** The floor's figures (a bare Deno responder; see {@link startFloor}). */
export interface FloorFigures {
  pid: number;
  pingMedianUs: number;
  pingP99Us: number;
  pipelinedPerSec: number;
  cpuPerPingUs: number;
}

/** The keys every {@link FloorFigures} has. */
export const FLOOR_KEYS: readonly (keyof FloorFigures)[] = [
  "pid",
  "pingMedianUs",
  "pingP99Us",
  "pipelinedPerSec",
  "cpuPerPingUs",
];

/**
 * denoga / qemu-ga for each comparable figure (null when qemu-ga did not run), and denoga / floor
 * for the per-request ones (the `…Floor` keys).
 */
export interface Ratios {
  pingMedian: number | null;
  pingP99: number | null;
  pipelined: number | null;
  cpuPerPing: number | null;
  pingMedianFloor: number | null;
  pipelinedFloor: number | null;
  cpuPerPingFloor: number | null;
  read: number | null;
  write: number | null;
  idleRss: number | null;
  peakRss: number | null;
}

/** The keys of {@link Ratios}. */
export const RATIO_KEYS: readonly (keyof Ratios)[] = [
  "pingMedian",
  "pingP99",
  "pipelined",
  "cpuPerPing",
  "pingMedianFloor",
  "pipelinedFloor",
  "cpuPerPingFloor",
  "read",
  "write",
  "idleRss",
  "peakRss",
];

/** Whether denoga met each target (null when it cannot be judged). */
export interface Targets {
  /** ping median ratio ≤ 0.8 */
  pingMedian: boolean | null;
  /** pipelined ratio ≥ 3 */
  pipelined: boolean | null;
  /** ping median ≤ 1.1× the floor's */
  pingMedianFloor: boolean | null;
  /** pipelined ≥ 0.8× the floor's */
  pipelinedFloor: boolean | null;
  /** CPU per ping ≤ 1.1× the floor's */
  cpuPerPingFloor: boolean | null;
  /** read ratio ≥ 3 */
  read: boolean | null;
  /** write ratio ≥ 5 */
  write: boolean | null;
  /** denoga idle RSS ≤ 40 MiB */
  idleRss: boolean | null;
  /** denoga peak RSS ≤ 128 MiB */
  peakRss: boolean | null;
}

/** The keys of {@link Targets}. */
export const TARGET_KEYS: readonly (keyof Targets)[] = [
  "pingMedian",
  "pipelined",
  "pingMedianFloor",
  "pipelinedFloor",
  "cpuPerPingFloor",
  "read",
  "write",
  "idleRss",
  "peakRss",
];

/** What `BENCH_JSON` carries. */
export interface BenchSummary {
  quick: boolean;
  sizeMiB: number;
  pingIterations: number;
  pipelineDepth: number;
  chunkBytes: number;
  deno: string;
  qemuGaVersion: string | null;
  /** What ran as denoga: the bundle, `main.ts`, or a compiled binary (`DENOGA_BIN`). */
  denogaForm: "bundle" | "source" | "binary";
  /** With the bundle: idle RSS of `deno run main.ts` measured the same way (MiB), else null. */
  sourceIdleRssMiB: number | null;
  /** Why an agent did not run, if one did not. */
  notes: string[];
  denoga: AgentFigures | null;
  qemuGa: AgentFigures | null;
  floor: FloorFigures | null;
  ratios: Ratios;
  targets: Targets;
  /** The poll benchmark (scripts/bench_poll.ts), null when not run (`--no-poll`, not root). */
  poll: PollSummary | null;
}

/** Top-level keys of {@link BenchSummary}. */
export const SUMMARY_KEYS: readonly (keyof BenchSummary)[] = [
  "quick",
  "sizeMiB",
  "pingIterations",
  "pipelineDepth",
  "chunkBytes",
  "deno",
  "qemuGaVersion",
  "denogaForm",
  "sourceIdleRssMiB",
  "notes",
  "denoga",
  "qemuGa",
  "floor",
  "ratios",
  "targets",
  "poll",
];

function ratio(d: number | undefined, q: number | undefined): number | null {
  return d === undefined || q === undefined || q === 0 ? null : d / q;
}

/** Builds ratios and target verdicts from the figures. */
export function summarize(
  d: AgentFigures | null,
  q: AgentFigures | null,
  fl: FloorFigures | null = null,
): { ratios: Ratios; targets: Targets } {
  const r: Ratios = {
    pingMedian: ratio(d?.pingMedianUs, q?.pingMedianUs),
    pingP99: ratio(d?.pingP99Us, q?.pingP99Us),
    pipelined: ratio(d?.pipelinedPerSec, q?.pipelinedPerSec),
    cpuPerPing: ratio(d?.cpuPerPingUs, q?.cpuPerPingUs),
    pingMedianFloor: ratio(d?.pingMedianUs, fl?.pingMedianUs),
    pipelinedFloor: ratio(d?.pipelinedPerSec, fl?.pipelinedPerSec),
    cpuPerPingFloor: ratio(d?.cpuPerPingUs, fl?.cpuPerPingUs),
    read: ratio(d?.readMiBps, q?.readMiBps),
    write: ratio(d?.writeMiBps, q?.writeMiBps),
    idleRss: ratio(d?.idleRssMiB, q?.idleRssMiB),
    peakRss: ratio(d?.peakRssMiB, q?.peakRssMiB),
  };
  const judge = (x: number | null, ok: (v: number) => boolean) => (x === null ? null : ok(x));
  return {
    ratios: r,
    targets: {
      pingMedian: judge(r.pingMedian, (v) => v <= 0.8),
      pipelined: judge(r.pipelined, (v) => v >= 3),
      pingMedianFloor: judge(r.pingMedianFloor, (v) => v <= 1.1),
      pipelinedFloor: judge(r.pipelinedFloor, (v) => v >= 0.8),
      cpuPerPingFloor: judge(r.cpuPerPingFloor, (v) => v <= 1.1),
      read: judge(r.read, (v) => v >= 3),
      write: judge(r.write, (v) => v >= 5),
      idleRss: judge(d?.idleRssMiB ?? null, (v) => v <= 40),
      peakRss: judge(d?.peakRssMiB ?? null, (v) => v <= 128),
    },
  };
}

function fmt(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined) return "-";
  return v.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

function verdict(t: boolean | null): string {
  return t === null ? "-" : t ? "met" : "MISSED";
}

/** One table row: what, qemu-ga, denoga, floor, then ratio, target, verdict vs qemu-ga and vs floor. */
type Row = [string, string, string, string, string, string, string, string, string, string];

/** A row of figures `digits` wide; ratio columns given as [ratio, target, verdict] or empty. */
function figureRow(
  what: string,
  v: { q?: number; d?: number; f?: number },
  digits: number,
  vsQemu: [number | null, string, boolean | null] | null,
  vsFloor: [number | null, string, boolean | null] | null = null,
): Row {
  const cols = (x: [number | null, string, boolean | null] | null) =>
    x === null ? ["", "", ""] : [fmt(x[0], 2), x[1], x[1] === "" ? "" : verdict(x[2])];
  return [
    what,
    v.q === undefined ? "" : fmt(v.q, digits),
    v.d === undefined ? "" : fmt(v.d, digits),
    v.f === undefined ? "" : fmt(v.f, digits),
    ...cols(vsQemu),
    ...cols(vsFloor),
  ] as Row;
}

/** The human-readable table. */
export function renderTable(s: BenchSummary): string {
  const d = s.denoga ?? undefined;
  const q = s.qemuGa ?? undefined;
  const fl = s.floor ?? undefined;
  const r = s.ratios;
  const t = s.targets;
  const rows: Row[] = [
    [
      "measurement",
      "qemu-ga",
      "denoga",
      "floor",
      "denoga/qemu-ga",
      "target",
      "verdict",
      "denoga/floor",
      "target",
      "verdict",
    ],
    figureRow(
      "guest-ping RTT median (µs)",
      { q: q?.pingMedianUs, d: d?.pingMedianUs, f: fl?.pingMedianUs },
      1,
      [r.pingMedian, "≤ 0.8×", t.pingMedian],
      [r.pingMedianFloor, "≤ 1.1×", t.pingMedianFloor],
    ),
    figureRow(
      "guest-ping RTT p99 (µs)",
      { q: q?.pingP99Us, d: d?.pingP99Us, f: fl?.pingP99Us },
      1,
      [r.pingP99, "", null],
    ),
    figureRow(
      `pipelined pings/s (${s.pipelineDepth} in flight)`,
      { q: q?.pipelinedPerSec, d: d?.pipelinedPerSec, f: fl?.pipelinedPerSec },
      0,
      [r.pipelined, "≥ 3×", t.pipelined],
      [r.pipelinedFloor, "≥ 0.8×", t.pipelinedFloor],
    ),
    figureRow(
      "agent CPU per guest-ping (µs)",
      { q: q?.cpuPerPingUs, d: d?.cpuPerPingUs, f: fl?.cpuPerPingUs },
      1,
      [r.cpuPerPing, "", null],
      [r.cpuPerPingFloor, "≤ 1.1×", t.cpuPerPingFloor],
    ),
    figureRow(
      `guest-file-read MiB/s (${s.sizeMiB} MiB)`,
      { q: q?.readMiBps, d: d?.readMiBps },
      1,
      [r.read, "≥ 3×", t.read],
    ),
    figureRow(
      `guest-file-write MiB/s (${s.sizeMiB} MiB)`,
      { q: q?.writeMiBps, d: d?.writeMiBps },
      1,
      [r.write, "≥ 5×", t.write],
    ),
    figureRow("idle RSS (MiB)", { q: q?.idleRssMiB, d: d?.idleRssMiB }, 1, [
      r.idleRss,
      "denoga ≤ 40",
      t.idleRss,
    ]),
    figureRow("peak RSS, VmHWM (MiB)", { q: q?.peakRssMiB, d: d?.peakRssMiB }, 1, [
      r.peakRss,
      "denoga ≤ 128",
      t.peakRss,
    ]),
    figureRow("RSS after run (MiB)", { q: q?.finalRssMiB, d: d?.finalRssMiB }, 1, null),
  ];
  if (s.sourceIdleRssMiB !== null) {
    rows.splice(
      rows.length - 2,
      0,
      figureRow("idle RSS, deno run main.ts (MiB)", { d: s.sourceIdleRssMiB }, 1, null),
    );
  }
  if (s.poll !== null) rows.push(...pollRows(s.poll));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")
      .trimEnd();
  const out = [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join("\n");
}

/** Table rows of the poll benchmark; the floor (a bare Deno responder) has its column. */
function pollRows(p: PollSummary): Row[] {
  const row = (what: string, by: Record<string, number>, digits: number, target = "") => {
    const r = ratio(by.denoga, by["qemu-ga"]);
    return figureRow(
      what,
      { q: by["qemu-ga"], d: by.denoga, f: by.floor },
      digits,
      [r, target, r === null ? null : r <= 1.0],
      by.floor === undefined ? null : [ratio(by.denoga, by.floor), "", null],
    );
  };
  const rows = p.points.map((pt) =>
    row(
      `poll cycle CPU ms (${pt.interfaces} ifs, ${pt.mounts} mounts)`,
      pt.cpuMs,
      2,
      pt === p.points[0] ? "≤ 1.0×" : "",
    )
  );
  rows.push(row("poll cycle wall ms (base)", p.points[0].wallMs, 2));
  rows.push(row("CPU µs per added interface", p.perInterfaceUs, 1));
  rows.push(row("CPU µs per added mount", p.perMountUs, 1));
  rows.push(row("guest-exec /bin/true round trip ms", p.execRoundTripMs, 2, "≤ 1.0×"));
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Main

function hasQemuGa(): boolean {
  try {
    const st = Deno.statSync(QEMU_GA);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

async function qemuGaVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command(QEMU_GA, {
      args: ["--version"],
      stderr: "null",
      signal: AbortSignal.timeout(5000),
    }).output();
    return dec.decode(out.stdout).trim().split("\n")[0] || null;
  } catch {
    return null;
  }
}

function randomChunk(): Uint8Array {
  const chunk = new Uint8Array(CHUNK);
  for (let off = 0; off < CHUNK; off += 65536) {
    crypto.getRandomValues(chunk.subarray(off, off + 65536));
  }
  return chunk;
}

/** Idle RSS as the targets define it: VmRSS after start, one ping and a short settle. */
async function idleRssMiB(a: AgentProc, o: BenchOptions): Promise<number> {
  await a.session("first ping", 30_000, async (c) => {
    await c.send(PING);
    await c.lines(PING_REPLY_LEN);
  });
  await new Promise((r) => setTimeout(r, o.idleSettleMs));
  return a.memory().rssMiB;
}

/** Runs the whole benchmark and returns the summary. */
export async function runBench(o: BenchOptions): Promise<BenchSummary> {
  const notes: string[] = [];
  let impls: Impl[] = o.only ? [o.only] : ["qemu-ga", "denoga"];
  if (impls.includes("qemu-ga") && !hasQemuGa()) {
    const msg = `qemu-ga not found at ${QEMU_GA} (apt-get install qemu-guest-agent)`;
    if (o.only === "qemu-ga") throw new Error(msg);
    notes.push(`${msg}: denoga ran alone, no ratios`);
    console.log(`note: ${msg}; running denoga alone`);
    impls = ["denoga"];
  }
  const dirs: string[] = [];
  const binary = Deno.env.get("DENOGA_BIN") !== undefined;
  const form: BenchSummary["denogaForm"] = binary ? "binary" : o.source ? "source" : "bundle";
  let entry: string | undefined;
  if (form === "bundle" && impls.includes("denoga")) {
    const dir = await Deno.makeTempDir({ prefix: "denoga-bench-bundle-" });
    dirs.push(dir);
    entry = (await bundleAgent(dir)).agent;
    // Deno analyses a module the first time it runs it and caches the result; the module tree
    // is warm from earlier runs, so warm the new bundle the same way (a deployed agent starts
    // warm from its second start on; a compiled one never analyses at all).
    await new Deno.Command(Deno.execPath(), {
      args: ["run", ...AGENT_RUN_FLAGS, entry, "-V"],
      stdout: "null",
      stderr: "null",
    }).output();
  }
  let sourceIdleRssMiB: number | null = null;
  let poll: PollSummary | null = null;
  const agents = new Map<Runner, AgentProc>();
  const partial = new Map<Impl, Partial<AgentFigures>>();
  let floor: FloorFigures | null = null;
  const stopAll = async () => {
    for (const a of agents.values()) await a.stop();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    console.error("interrupted: stopping agents");
    void stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    if (!o.pollOnly) {
      if (entry !== undefined) {
        // The module tree's idle footprint, for comparison with the bundle's (same procedure).
        const a = await AgentProc.start("denoga", dirs);
        sourceIdleRssMiB = await idleRssMiB(a, o);
        await a.stop();
      }
      for (const impl of impls) {
        const a = await AgentProc.start(impl, dirs, impl === "denoga" ? entry : undefined);
        agents.set(impl, a);
        partial.set(impl, { pid: a.pid });
      }
      agents.set("floor", await startFloor(dirs));
      /** One progress line: what, agent, result, the agent's RSS now, extra. */
      const progress = (what: string, impl: Runner, result: string, extra = "") => {
        let rss = "";
        try {
          rss = `rss ${fmt(agents.get(impl)!.memory().rssMiB).padStart(6)} MiB`;
        } catch {
          // the process is gone; the next step reports it
        }
        console.log(
          `  ${what.padEnd(26)} ${impl.padEnd(8)} ${result.padStart(16)}  ${rss}  ${extra}`,
        );
      };
      const each = async (
        what: string,
        fn: (a: AgentProc, f: Partial<AgentFigures>) => Promise<string>,
      ) => {
        for (const impl of impls) {
          const t0 = performance.now();
          const result = await fn(agents.get(impl)!, partial.get(impl)!);
          const s = ((performance.now() - t0) / 1000).toFixed(1);
          progress(what, impl, result, `(${s} s)`);
        }
      };
      console.log(
        `bench: ${impls.join(" vs ")}, file size ${o.sizeMiB} MiB, ${o.pingIterations} pings, ` +
          `${o.rounds} round(s)` + (o.quick ? " (quick)" : "") + `; denoga: ${form}`,
      );
      const all = !o.pipelinedOnly;
      if (all) {
        await each("idle RSS", async (a, f) => {
          f.idleRssMiB = await idleRssMiB(a, o);
          return `${fmt(f.idleRssMiB)} MiB`;
        });
      }
      const chunk = all ? randomChunk() : new Uint8Array();
      if (all) {
        await each("create read file", async (a) => {
          await createReadFile(a, o, chunk);
          return `${o.sizeMiB} MiB`;
        });
      }
      const b64 = chunk.toBase64();
      type Runs = {
        ping: number[];
        pipe: number[];
        cpu: number[];
        read: number[];
        write: number[];
      };
      const runners: Runner[] = [...impls, "floor"];
      const runs = new Map<Runner, Runs>(
        runners.map((i) => [i, { ping: [], pipe: [], cpu: [], read: [], write: [] }]),
      );
      for (let r = 1; r <= o.rounds; r++) {
        const tag = o.rounds > 1 ? ` ${r}/${o.rounds}` : "";
        const list = runners.map((i) => agents.get(i)!);
        if (!all) {
          const { perSec, cpuNsPerReply } = await measurePipeline(list, o);
          list.forEach((a, k) => {
            runs.get(a.impl)!.pipe.push(perSec[k]);
            const cpu = `agent CPU ${fmt(cpuNsPerReply[k], 0)} ns/reply`;
            progress(`pipelined pings${tag}`, a.impl, `${fmt(perSec[k], 0)}/s`, cpu);
          });
          continue;
        }
        const t0 = performance.now();
        const pings = await measurePing(list, o);
        const pingSecs = ((performance.now() - t0) / 1000).toFixed(1);
        list.forEach((a, k) => {
          runs.get(a.impl)!.ping.push(...pings[k]);
          const v = `${fmt(median(pings[k]))} µs`;
          progress(`ping RTT${tag}`, a.impl, v);
        });
        console.log(`    (interleaved in blocks of ${PING_BLOCK}, ${pingSecs} s)`);
        const t1 = performance.now();
        const { perSec, cpuNsPerReply } = await measurePipeline(list, o);
        const pipeSecs = ((performance.now() - t1) / 1000).toFixed(1);
        list.forEach((a, k) => {
          runs.get(a.impl)!.pipe.push(perSec[k]);
          const v = `${fmt(perSec[k], 0)}/s`;
          progress(
            `pipelined pings${tag}`,
            a.impl,
            v,
            `agent CPU ${fmt(cpuNsPerReply[k], 0)} ns/reply`,
          );
        });
        console.log(`    (interleaved in ${PIPELINE_SLICE} s slices, ${pipeSecs} s)`);
        const t2 = performance.now();
        const cpu = await measureCpu(list, o);
        const cpuSecs = ((performance.now() - t2) / 1000).toFixed(1);
        list.forEach((a, k) => {
          runs.get(a.impl)!.cpu.push(cpu[k]);
          progress(`CPU per ping${tag}`, a.impl, `${fmt(cpu[k])} µs`);
        });
        console.log(
          `    (${o.cpuPings} pings each, interleaved in blocks of ${PING_BLOCK}, ${cpuSecs} s)`,
        );
        await each(`guest-file-read${tag}`, async (a) => {
          const v = await measureRead(a, o);
          runs.get(a.impl)!.read.push(v);
          return `${fmt(v)} MiB/s`;
        });
        await each(`guest-file-write${tag}`, async (a) => {
          const v = await measureWrite(a, o, b64);
          runs.get(a.impl)!.write.push(v);
          return `${fmt(v)} MiB/s`;
        });
      }
      if (!all) {
        const med = (i: Runner) => runs.has(i) ? median(runs.get(i)!.pipe) : undefined;
        const d = med("denoga");
        const fl = med("floor");
        console.log(
          `pipelined pings/s, median of ${o.rounds}: ` +
            runners.map((i) => `${i} ${fmt(med(i), 0)}`).join(", ") +
            `; denoga/floor ${fmt(ratio(d, fl), 2)} (target ≥ 0.8×)`,
        );
        notes.push("--pipelined-only: only the pipelined pings were measured (progress lines)");
      }
      for (const [impl, m] of all ? runs : []) {
        const ping = [...m.ping].sort((a, b) => a - b);
        const common = {
          pingMedianUs: percentile(ping, 50),
          pingP99Us: percentile(ping, 99),
          pipelinedPerSec: median(m.pipe),
          cpuPerPingUs: median(m.cpu),
        };
        if (impl === "floor") {
          floor = { pid: agents.get("floor")!.pid, ...common };
          continue;
        }
        const f = partial.get(impl)!;
        Object.assign(f, common);
        f.readMiBps = median(m.read);
        f.writeMiBps = median(m.write);
      }
      for (const [impl, a] of agents) {
        if (impl === "floor" || !all) continue;
        const m = a.memory();
        const f = partial.get(impl as Impl)!;
        f.peakRssMiB = m.hwmMiB;
        f.finalRssMiB = m.rssMiB;
      }
    }
    // The poll part runs its own agents (in a network namespace), after these have stopped and
    // before the bundle's temp dir goes.
    for (const a of agents.values()) await a.stop();
    if (o.poll && Deno.uid() !== 0) {
      notes.push("poll benchmark skipped: it needs root (namespaces, loop devices)");
    } else if (o.poll) {
      console.log("poll: KubeVirt cycle, 2→200 interfaces, 5→200 mounts, guest-exec /bin/true");
      poll = await runPollBench({ quick: o.quick, entry, impls, log: (l) => console.log(l) });
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await stopAll();
  }
  const complete = (impl: Impl): AgentFigures | null => {
    const f = partial.get(impl);
    if (!f || o.pollOnly || o.pipelinedOnly) return null;
    for (const k of FIGURE_KEYS) {
      if (typeof f[k] !== "number") throw new Error(`internal: ${impl} has no ${k}`);
    }
    return f as AgentFigures;
  };
  const d = complete("denoga");
  const q = complete("qemu-ga");
  return {
    quick: o.quick,
    sizeMiB: o.sizeMiB,
    pingIterations: o.pingIterations,
    pipelineDepth: PIPELINE_DEPTH,
    chunkBytes: CHUNK,
    deno: Deno.version.deno,
    qemuGaVersion: q ? await qemuGaVersion() : null,
    denogaForm: form,
    sourceIdleRssMiB,
    notes,
    denoga: d,
    qemuGa: q,
    floor,
    ...summarize(d, q, floor),
    poll,
  };
}

if (import.meta.main) {
  let o: BenchOptions;
  try {
    o = parseOptions(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  try {
    const s = await runBench(o);
    console.log("");
    if (!o.pipelinedOnly) {
      console.log(renderTable(s));
      console.log("");
    }
    console.log(`BENCH_JSON ${JSON.stringify(s)}`);
  } catch (e) {
    console.error(`bench failed: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
