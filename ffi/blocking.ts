/**
 * Where blocking system calls run: off the event loop, with errno read correctly.
 *
 * Callers (`ffi/file.ts`, `ffi/fsfreeze.ts`) only call {@link runBlocking} with a
 * {@link BlockingRequest}; this module picks one of two executors, once, on first use:
 *
 * 1. **Trampoline** (default): every system call of the request goes through the raw system-call
 *    trampoline of `ffi/rawsyscall.ts`: a `nonblocking` FFI call on one of the runtime's
 *    blocking-pool threads that returns the kernel's result itself (`-errno` on failure), so no
 *    thread-local errno is involved and no Worker is needed. Measured (Deno 2.9.6, x86-64): a
 *    runBlocking lseek round trip takes ~10 µs median (workers: ~25 µs); an agent that served a
 *    few file requests holds ~0.5 MiB more anonymous memory than one that only answered pings
 *    (workers: ~6–8 MiB more, plus ~6 MiB more of the deno binary's code pages).
 * 2. **Worker pool** (fallback): a pool of Web Workers that make *synchronous* libc calls and read
 *    errno on their own thread (`ffi/syscall_worker.ts`). Used when the trampoline cannot exist:
 *    an architecture without one, or executable memory refused (SELinux `deny_execmem`, systemd
 *    MemoryDenyWriteExecute, …; the refusal is remembered, see `trampolineStatus()`).
 *
 * `DENOGA_SYSCALL_EXECUTOR=worker|trampoline|auto` (environment) or {@link setExecutor} (tests)
 * forces one. Forcing "trampoline" where it is unavailable makes every request fail with the
 * reason, rather than silently running something else.
 *
 * Why not simply `nonblocking: true` libc symbols: errno is thread-local and a nonblocking FFI
 * call runs on a runtime pool thread, so errno read afterwards on the main thread is stale
 * (clients-and-peers.md §4.2, verified). Raw system calls sidestep errno entirely.
 *
 * Both executors guarantee the same thing: a call can stay stuck in the kernel indefinitely
 * (FIFREEZE waiting for writeback on a wedged device, a read or write on a frozen or hung
 * filesystem, open() of a FIFO) without delaying the event loop or other calls, up to a cap of
 * concurrently executing requests ({@link PoolOptions.maxTrampolineCalls} threads,
 * {@link PoolOptions.maxWorkers} workers); beyond it requests queue. The trampoline's cap matters
 * more than it seems: the runtime's blocking pool has only 32 threads (Deno 2.9.6, verified) and
 * Deno's own async file operations need them too, so stuck calls must never take them all.
 *
 * Footprint of the worker pool (measured on Deno 2.9.6, x86-64): an idle agent that never
 * spawned a worker is about 33–35 MiB RSS. The first worker adds about 20 MiB that is NOT
 * returned when it is terminated (about 14 MiB of the deno binary's code pages touched by isolate
 * start-up, the rest V8 pages and malloc memory); each further concurrently live worker adds about
 * 9–10 MiB of which most comes back on reaping. Workers are spawned lazily and terminated after
 * {@link PoolOptions.idleTimeoutMs} without work; after the last one is reaped, glibc's
 * malloc_trim() returns what malloc can give back. This is why the trampoline is the default.
 *
 * Process lifetime: a trampoline call in flight keeps the process alive until the kernel returns
 * (the runtime cannot abandon a thread in a system call); an idle trampoline executor holds
 * nothing. Deno offers no public `unref()` for Web Workers, so a worker keeps the process alive
 * until it is reaped (at most {@link PoolOptions.idleTimeoutMs} after its last call). The idle
 * timers themselves are unref'ed, and {@link shutdown} terminates all workers at once.
 *
 * `deno compile` note: the worker module is not statically imported, so a compiled agent that may
 * fall back to workers needs it included (`deno compile --include ...`, scripts/compile.ts)
 * (clients-and-peers.md §4.5). The worker URL below is resolved against `import.meta.url`, which
 * works both under `deno run` and inside the compiled binary's embedded file system.
 *
 * @module
 */

import {
  cString,
  EINTR,
  FIFREEZE,
  FITHAW,
  mallocTrim,
  O_CLOEXEC,
  O_RDONLY,
  type OsPath,
  strerror,
} from "./libc.ts";
import { AT_FDCWD, SYS, syscall6, type SyscallNumbers, trampolineStatus } from "./rawsyscall.ts";

/** One request to an executor. Each maps to a short sequence of system calls. */
export type BlockingRequest =
  /** Do nothing (latency measurement). */
  | { op: "noop" }
  /** open(path, flags, mode). */
  | { op: "open"; path: OsPath; flags: number; mode: number }
  /** close(fd). */
  | { op: "close"; fd: number }
  /** fchmod(fd, mode). */
  | { op: "fchmod"; fd: number; mode: number }
  /** fsync(fd). */
  | { op: "fsync"; fd: number }
  /** lseek(fd, offset, whence). */
  | { op: "lseek"; fd: number; offset: bigint; whence: number }
  /** read(2) in a loop, fread-style: up to `count` bytes, stops at EOF or error. */
  | { op: "read"; fd: number; count: number }
  /**
   * write(2) in a loop, fwrite-style. The bytes are `buffer[byteOffset, byteOffset+byteLength)`;
   * `buffer` is normally transferred with the request (zero copy).
   */
  | { op: "write"; fd: number; buffer: ArrayBuffer; byteOffset: number; byteLength: number }
  /** open(path, O_RDONLY|O_CLOEXEC), ioctl(FIFREEZE), close. */
  | { op: "freeze"; path: OsPath }
  /** open(path, O_RDONLY|O_CLOEXEC), ioctl(FITHAW) until it fails, close. */
  | { op: "thaw"; path: OsPath };

/** What the executor answers. */
export interface BlockingReply {
  /**
   * The call's result: a byte count for read/write (bytes transferred even when `errno` is set),
   * the fd for open, the offset (bigint) for lseek, the number of successful FITHAW calls for
   * thaw, 0/-1 otherwise.
   */
  ret: number | bigint;
  /**
   * 0 on success, else the errno of the failed call (the kernel's `-result` in the trampoline,
   * errno read on the worker thread in a worker, §4.2).
   */
  errno: number;
  /** strerror(errno), present when `errno` is not 0. */
  strerror?: string;
  /** read: exactly `ret` bytes (transferred from the worker, zero copy, in the worker pool). */
  data?: ArrayBuffer;
  /** read: a read(2) returned 0. */
  eof?: boolean;
  /** freeze/thaw: which step set `errno`. */
  stage?: "open" | "freeze" | "thaw";
  /**
   * An exception inside the worker (a bug, not a system call error); the call is rejected. Never
   * seen by callers of {@link runBlocking}.
   */
  error?: string;
}

/** Tunables of the executors. */
export interface PoolOptions {
  /** Most workers alive at once (busy + idle); more requests are queued. */
  maxWorkers: number;
  /**
   * Most requests executing at once on the trampoline; more are queued. Each holds one of the
   * runtime's 32 blocking threads while its current system call runs (module comment), so this
   * must stay well below 32.
   */
  maxTrampolineCalls: number;
  /** A worker idle this long is terminated. */
  idleTimeoutMs: number;
  /** The worker module (tests point it elsewhere to exercise load failures). */
  workerUrl: URL;
}

/** A snapshot of the pool for tests and diagnostics. */
export interface PoolStats {
  /** Workers alive (busy + idle). */
  workers: number;
  /** Workers waiting for work. */
  idle: number;
  /** Workers executing a request. */
  busy: number;
  /** Requests waiting for a worker. */
  queued: number;
  /** Workers spawned since the process started. */
  spawned: number;
}

/**
 * The worker module, a sibling of this one: `syscall_worker.ts` in the source tree,
 * `syscall_worker.js` next to the bundled agent (scripts/bundle.ts), whose code this module then
 * is part of. Compile needs it `--include`d (module comment).
 */
const WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./syscall_worker.ts" : "./syscall_worker.js",
  import.meta.url,
);

const options: PoolOptions = {
  maxWorkers: 16,
  // Half of the runtime's blocking threads: the other half stays for Deno's own file operations
  // (state files, logging) even when this many calls are stuck in the kernel.
  maxTrampolineCalls: 16,
  idleTimeoutMs: 10_000,
  workerUrl: WORKER_URL,
};

interface Job {
  request: BlockingRequest;
  transfer: Transferable[];
  resolve: (reply: BlockingReply) => void;
  reject: (error: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  /** The request being executed, if any. */
  job?: Job;
  /** Pending reap timer while idle. */
  idleTimer?: ReturnType<typeof setTimeout>;
}

const allWorkers = new Set<PoolWorker>();
/** Idle workers, most recently used last: reuse takes the hottest, the others age out. */
const idleWorkers: PoolWorker[] = [];
const queue: Job[] = [];
let spawnedTotal = 0;

/**
 * Change executor tunables (tests use a short idle timeout). A new idle timeout also restarts the
 * timers of workers idle right now.
 */
export function configurePool(changes: Partial<PoolOptions>): void {
  if (changes.maxWorkers !== undefined) {
    if (!Number.isInteger(changes.maxWorkers) || changes.maxWorkers < 1) {
      throw new RangeError("maxWorkers must be a positive integer");
    }
    options.maxWorkers = changes.maxWorkers;
  }
  if (changes.maxTrampolineCalls !== undefined) {
    if (!Number.isInteger(changes.maxTrampolineCalls) || changes.maxTrampolineCalls < 1) {
      throw new RangeError("maxTrampolineCalls must be a positive integer");
    }
    options.maxTrampolineCalls = changes.maxTrampolineCalls;
    startQueuedTrampolineJobs(); // a raised cap lets queued requests start now
  }
  if (changes.idleTimeoutMs !== undefined) {
    if (!(changes.idleTimeoutMs >= 0)) throw new RangeError("idleTimeoutMs must be >= 0");
    options.idleTimeoutMs = changes.idleTimeoutMs;
    for (const pw of idleWorkers) armIdleTimer(pw); // restart with the new timeout
  }
  if (changes.workerUrl !== undefined) options.workerUrl = changes.workerUrl; // new spawns only
}

/** The current tunables. */
export function poolOptions(): Readonly<PoolOptions> {
  return { ...options };
}

/** Counts of workers and queued requests. */
export function poolStats(): PoolStats {
  return {
    workers: allWorkers.size,
    idle: idleWorkers.length,
    busy: allWorkers.size - idleWorkers.length,
    queued: queue.length,
    spawned: spawnedTotal,
  };
}

/** The two ways of executing requests (module comment). */
export type ExecutorKind = "trampoline" | "worker";
/** What may be asked for: one executor, or "auto" (the trampoline when it exists). */
export type ExecutorChoice = ExecutorKind | "auto";

/** Which executor runs requests, and why. */
export interface ExecutorStatus {
  /** What was asked for: {@link setExecutor}, else `DENOGA_SYSCALL_EXECUTOR`, else "auto". */
  requested: ExecutorChoice;
  /** What runs requests; "none" when "trampoline" was forced but cannot exist (all fail). */
  active: ExecutorKind | "none";
  /** Why the trampoline is not used, when it is not; or a note on an ignored setting. */
  reason?: string;
}

/** Requests executing and waiting, over both executors (tests, diagnostics). */
export interface BlockingStats {
  /** The executor new requests go to (decided on first use; this call decides it too). */
  executor: ExecutorKind | "none";
  /** Requests executing now (a stuck one counts until the kernel returns). */
  busy: number;
  /** Requests waiting for a free slot. */
  queued: number;
}

/** Environment variable that forces an executor (module comment). */
export const EXECUTOR_ENV = "DENOGA_SYSCALL_EXECUTOR";

/** {@link setExecutor}'s override; undefined = the environment decides. */
let override: ExecutorChoice | undefined;
/** The decision, made on first use and kept (executable memory is not re-tried per call). */
let decided: ExecutorStatus | undefined;

/**
 * Force an executor for the requests that follow (tests run the same cases on both), or with
 * `undefined` go back to what the environment says. Requests already executing finish where
 * they are.
 */
export function setExecutor(choice: ExecutorChoice | undefined): void {
  override = choice;
  decided = undefined;
}

/** Which executor runs requests, deciding it now if no request has yet. */
export function executorStatus(): ExecutorStatus {
  if (decided === undefined) decided = decide();
  return { ...decided };
}

function decide(): ExecutorStatus {
  let requested: ExecutorChoice = "auto";
  let note: string | undefined;
  if (override !== undefined) {
    requested = override;
  } else {
    const value = readEnv(EXECUTOR_ENV);
    if (value === "worker" || value === "trampoline" || value === "auto") requested = value;
    else if (value !== undefined && value !== "") note = `${EXECUTOR_ENV}="${value}" ignored`;
  }
  if (requested === "worker") {
    // Not even built: where the trampoline misbehaves, forcing workers must avoid touching it.
    const by = override !== undefined ? 'setExecutor("worker")' : `${EXECUTOR_ENV}=worker`;
    return { requested, active: "worker", reason: `${by} forces the worker pool` };
  }
  const t = trampolineStatus();
  if (t.available) return { requested, active: "trampoline", ...(note ? { reason: note } : {}) };
  return { requested, active: requested === "trampoline" ? "none" : "worker", reason: t.reason };
}

/** An environment variable, or undefined when unset or not readable (no --allow-env). */
function readEnv(name: string): string | undefined {
  try {
    // Query first: a plain get() could prompt for permission on a terminal.
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Busy and queued requests over both executors. */
export function blockingStats(): BlockingStats {
  return {
    executor: executorStatus().active,
    busy: trampolineRunning.size + (allWorkers.size - idleWorkers.length),
    queued: trampolineQueue.length + queue.length,
  };
}

/**
 * Execute `request` off the event loop, on the trampoline or in a pool worker (module comment).
 *
 * Resolves with the reply, including failed system calls (`errno` ≠ 0): turning those into
 * errors is the caller's business. Rejects only when the request could not be executed (a bug in
 * the request, no executor available, a worker crashed or failed to load, the request could not
 * be posted, {@link shutdown} was called).
 *
 * @param transfer ArrayBuffers whose ownership moves to the executor instead of being copied:
 *   they are detached here as soon as the request is taken (zero copy with either executor).
 */
export function runBlocking(
  request: BlockingRequest,
  transfer: Transferable[] = [],
): Promise<BlockingReply> {
  const status = decided ?? executorStatus();
  switch (status.active) {
    case "trampoline":
      return runOnTrampoline(request, transfer);
    case "worker":
      return runInWorker(request, transfer);
    case "none":
      return Promise.reject(new Error(`trampoline executor forced but ${status.reason}`));
  }
}

/**
 * Reject whatever is executing or queued, in both executors, and terminate every worker. A call
 * stuck in the kernel cannot be interrupted: a worker's thread lingers until the call returns but
 * no longer holds the process open; a trampoline call keeps its thread (and the process) until
 * the kernel returns, then its result is dropped (an fd it opened is closed). Both executors stay
 * usable.
 */
export async function shutdown(): Promise<void> {
  const error = new Error("blocking pool shut down");
  for (const pw of [...allWorkers]) {
    const job = pw.job;
    retire(pw);
    job?.reject(error);
  }
  for (const job of queue.splice(0)) job.reject(error);
  for (const job of trampolineRunning) {
    if (job.abandoned) continue;
    job.abandoned = true;
    job.reject(error);
  }
  for (const job of trampolineQueue.splice(0)) job.reject(error);
  // Let the runtime settle the terminated workers' pending message/control polls before the
  // caller continues (e.g. checks poolStats() or exits).
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

// ---------------------------------------------------------------------------------------------
// Trampoline executor: each request is an async sequence of raw system calls (ffi/rawsyscall.ts)
// with the same semantics, step for step, as `execute()` in ffi/syscall_worker.ts.
// ---------------------------------------------------------------------------------------------

/**
 * First read allocation; the buffer doubles while the file keeps delivering, so a 14-byte file
 * never costs a 48 MiB buffer. Same value as in ffi/syscall_worker.ts (qemu-ga-behaviour.md §3.2).
 */
const READ_INITIAL = 64 * 1024;

interface TrampolineJob {
  request: BlockingRequest;
  /** write: the bytes, owned by the job from submission on (moved or copied). */
  bytes?: Uint8Array<ArrayBuffer>;
  resolve: (reply: BlockingReply) => void;
  reject: (error: Error) => void;
  /** Set by shutdown(): the caller was rejected; remaining steps are skipped where safe. */
  abandoned: boolean;
}

/** Jobs executing (each has at most one system call in flight), including abandoned ones. */
const trampolineRunning = new Set<TrampolineJob>();
const trampolineQueue: TrampolineJob[] = [];

function runOnTrampoline(
  request: BlockingRequest,
  transfer: Transferable[],
): Promise<BlockingReply> {
  return new Promise<BlockingReply>((resolve, reject) => {
    let bytes: Uint8Array<ArrayBuffer> | undefined;
    try {
      bytes = request.op === "write" ? takeWriteBytes(request, transfer) : undefined;
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const job: TrampolineJob = { request, bytes, resolve, reject, abandoned: false };
    if (trampolineRunning.size < options.maxTrampolineCalls) startTrampolineJob(job);
    else trampolineQueue.push(job);
  });
}

/**
 * The bytes of a write request, owned by the executor: a buffer listed in `transfer` is moved
 * (`ArrayBuffer.prototype.transfer`: zero copy, the caller's buffer is detached, exactly as
 * postMessage would do), anything else is copied. Either way the caller can neither change nor
 * free the memory while the kernel reads it.
 */
function takeWriteBytes(
  request: Extract<BlockingRequest, { op: "write" }>,
  transfer: Transferable[],
): Uint8Array<ArrayBuffer> {
  const { buffer, byteOffset, byteLength } = request;
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError("write: buffer is not an ArrayBuffer");
  new Uint8Array(buffer, byteOffset, byteLength); // RangeError before anything is detached
  if (transfer.includes(buffer)) return new Uint8Array(buffer.transfer(), byteOffset, byteLength);
  return new Uint8Array(buffer.slice(byteOffset, byteOffset + byteLength));
}

function startTrampolineJob(job: TrampolineJob): void {
  trampolineRunning.add(job);
  executeOnTrampoline(job).then(
    (reply) => finishTrampolineJob(job, reply, undefined),
    (e: unknown) => finishTrampolineJob(job, undefined, e),
  );
}

function finishTrampolineJob(job: TrampolineJob, reply?: BlockingReply, error?: unknown): void {
  trampolineRunning.delete(job);
  if (job.abandoned) {
    // Nobody will ever see this fd: close it rather than leak it.
    if (reply !== undefined && job.request.op === "open" && reply.errno === 0) {
      syscall6(numbers().close, Number(reply.ret)).catch(() => {});
    }
  } else if (reply !== undefined) {
    job.resolve(reply);
  } else {
    // An exception while executing: a bug in the request (e.g. a path that is not a string),
    // never a failed system call. Same shape as the worker's "syscall worker: …".
    const text = error instanceof Error ? error.message : String(error);
    job.reject(new Error(`syscall trampoline: ${text}`));
  }
  startQueuedTrampolineJobs();
}

function startQueuedTrampolineJobs(): void {
  while (trampolineRunning.size < options.maxTrampolineCalls) {
    const next = trampolineQueue.shift();
    if (next === undefined) return;
    startTrampolineJob(next);
  }
}

/** The system call numbers; only reached once the trampoline was found available. */
function numbers(): SyscallNumbers {
  if (SYS === undefined) throw new Error("no system call numbers for this architecture");
  return SYS;
}

/**
 * Linux returns errors as -4095..-1 (`IS_ERR_VALUE`); anything else is a result, even a
 * "negative" lseek offset of a device with unsigned offsets (glibc's syscall wrappers test the
 * same range).
 */
function isError(ret: bigint): boolean {
  return ret < 0n && ret >= -4095n;
}

function failed(ret: number | bigint, e: number, extra?: Partial<BlockingReply>): BlockingReply {
  return { ret, errno: e, strerror: strerror(e), ...extra };
}

/** open/close/fchmod/fsync: the result as a number, or -1 with errno like libc. */
function simple(ret: bigint): BlockingReply {
  return isError(ret) ? failed(-1, Number(-ret)) : { ret: Number(ret), errno: 0 };
}

async function executeOnTrampoline(job: TrampolineJob): Promise<BlockingReply> {
  const req = job.request;
  const sys = numbers();
  switch (req.op) {
    case "noop":
      return { ret: 0, errno: 0 };
    case "open":
      // libc's open() is openat(AT_FDCWD, …) on both architectures; the kernel adds
      // O_LARGEFILE itself on 64-bit, as glibc would.
      return simple(await syscall6(sys.openat, AT_FDCWD, cString(req.path), req.flags, req.mode));
    case "close":
      return simple(await syscall6(sys.close, req.fd));
    case "fchmod":
      return simple(await syscall6(sys.fchmod, req.fd, req.mode));
    case "fsync":
      return simple(await syscall6(sys.fsync, req.fd));
    case "lseek": {
      const pos = await syscall6(sys.lseek, req.fd, req.offset, req.whence);
      return isError(pos) ? failed(-1n, Number(-pos)) : { ret: pos, errno: 0 };
    }
    case "read":
      return req.count === 0
        ? { ret: 0, errno: 0, data: new ArrayBuffer(0), eof: false }
        : await trampolineRead(job, sys, req.fd, req.count);
    case "write":
      return await trampolineWrite(job, sys, req.fd, job.bytes ?? new Uint8Array(0));
    case "freeze":
      return await trampolineFreeze(job, sys, req.path);
    case "thaw":
      return await trampolineThaw(sys, req.path);
    default:
      throw new Error(`unknown op ${JSON.stringify((req as { op: unknown }).op)}`);
  }
}

async function trampolineRead(
  job: TrampolineJob,
  sys: SyscallNumbers,
  fd: number,
  count: number,
): Promise<BlockingReply> {
  let buffer = new ArrayBuffer(Math.min(count, READ_INITIAL));
  let got = 0;
  let eof = false;
  // fread semantics (§3.2): loop until `count` bytes, EOF (a read returning 0) or an error. No
  // extra read once `count` is reached, so reading exactly the rest of a file reports eof false,
  // as glibc's fread does.
  while (got < count && !job.abandoned) {
    // Safe to move the buffer here: no system call is using it between two awaits.
    if (got === buffer.byteLength) buffer = buffer.transfer(Math.min(count, buffer.byteLength * 2));
    const n = await syscall6(sys.read, fd, new Uint8Array(buffer, got), buffer.byteLength - got);
    if (isError(n)) {
      const e = Number(-n);
      // stdio retries EINTR; EAGAIN (O_NONBLOCK fd without data) is an error like in ferror().
      if (e === EINTR) continue;
      // qemu-ga discards partial data when ferror() is set: no data in the reply.
      return failed(got, e);
    }
    if (n === 0n) {
      eof = true;
      break;
    }
    got += Number(n);
  }
  // Trim to the exact size so the caller holds no slack (a copy of `got` bytes at most).
  if (got !== buffer.byteLength) buffer = buffer.transfer(got);
  return { ret: got, errno: 0, data: buffer, eof };
}

async function trampolineWrite(
  job: TrampolineJob,
  sys: SyscallNumbers,
  fd: number,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<BlockingReply> {
  const length = bytes.byteLength;
  let done = 0;
  try {
    // fwrite semantics: loop until all is written; an error ends it (bytes so far are reported
    // in `ret`, the caller throws). EINTR is retried as stdio does.
    while (done < length && !job.abandoned) {
      const n = await syscall6(sys.write, fd, bytes.subarray(done), length - done);
      if (isError(n)) {
        const e = Number(-n);
        if (e === EINTR) continue;
        return failed(done, e);
      }
      if (n === 0n) break; // the kernel accepts nothing more (not seen for files); short count
      done += Number(n);
    }
    return { ret: done, errno: 0 };
  } finally {
    // The job owns these bytes and no system call uses them any more: free them now by
    // detaching, instead of leaving up to 48 MiB per write to the next garbage collection
    // (measured: streaming 256 MiB in 4 MiB writes peaked ~20 MiB higher without this).
    bytes.buffer.transfer(0);
  }
}

async function trampolineFreeze(
  job: TrampolineJob,
  sys: SyscallNumbers,
  path: OsPath,
): Promise<BlockingReply> {
  // qemu-ga: qga_open_cloexec(dirname, O_RDONLY, 0) (§3.4; O_CLOEXEC keeps the fd out of
  // guest-exec children, §4.2).
  const fd = await syscall6(sys.openat, AT_FDCWD, cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (isError(fd)) return failed(-1, Number(-fd), { stage: "open" });
  // Abandoned by shutdown() while opening: the caller was told it failed, so do not freeze.
  const ret = job.abandoned ? 0n : await syscall6(sys.ioctl, fd, FIFREEZE, 0);
  await syscall6(sys.close, fd);
  return isError(ret) ? failed(-1, Number(-ret), { stage: "freeze" }) : { ret: 0, errno: 0 };
}

async function trampolineThaw(sys: SyscallNumbers, path: OsPath): Promise<BlockingReply> {
  const fd = await syscall6(sys.openat, AT_FDCWD, cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (isError(fd)) return failed(0, Number(-fd), { stage: "open" });
  // qemu-ga repeats FITHAW until it fails: nested FIFREEZEs by others each need one FITHAW, and
  // the final error (normally EINVAL, "not frozen") means the fs is thawed (§3.4). The kernel
  // freeze count is bounded, so this terminates. Not cut short by shutdown(): thawing is always
  // the safe direction.
  let successes = 0;
  let ret: bigint;
  while (!isError(ret = await syscall6(sys.ioctl, fd, FITHAW, 0))) successes++;
  await syscall6(sys.close, fd);
  return failed(successes, Number(-ret), { stage: "thaw" });
}

// ---------------------------------------------------------------------------------------------
// Worker pool executor.
// ---------------------------------------------------------------------------------------------

/** Execute `request` synchronously in a pool worker. */
function runInWorker(request: BlockingRequest, transfer: Transferable[]): Promise<BlockingReply> {
  return new Promise<BlockingReply>((resolve, reject) => {
    const job: Job = { request, transfer, resolve, reject };
    const pw = idleWorkers.pop() ?? (allWorkers.size < options.maxWorkers ? spawn() : undefined);
    if (pw === undefined) queue.push(job);
    else assign(pw, job);
  });
}

function spawn(): PoolWorker {
  const worker = new Worker(options.workerUrl, { type: "module", name: "denoga-syscall" });
  const pw: PoolWorker = { worker };
  spawnedTotal++;
  allWorkers.add(pw);
  worker.onmessage = (ev: MessageEvent<BlockingReply>) => onReply(pw, ev.data);
  worker.onerror = (ev: ErrorEvent) => {
    // Without preventDefault an uncaught worker error is re-thrown on the main thread and kills
    // the agent; a syscall worker failing (or failing to load) must only fail its request.
    ev.preventDefault();
    onCrash(pw, `syscall worker failed: ${ev.message}`);
  };
  worker.onmessageerror = () => onCrash(pw, "syscall worker reply could not be deserialized");
  return pw;
}

function assign(pw: PoolWorker, job: Job): void {
  if (pw.idleTimer !== undefined) {
    clearTimeout(pw.idleTimer);
    pw.idleTimer = undefined;
  }
  pw.job = job;
  try {
    pw.worker.postMessage(job.request, job.transfer);
  } catch (e) {
    // DataCloneError (e.g. a buffer already detached): the worker never saw the request.
    pw.job = undefined;
    job.reject(e instanceof Error ? e : new Error(String(e)));
    release(pw);
  }
}

function onReply(pw: PoolWorker, reply: BlockingReply): void {
  const job = pw.job;
  pw.job = undefined;
  release(pw);
  if (job === undefined) return; // a reply after shutdown() rejected the job
  if (reply.error !== undefined) job.reject(new Error(`syscall worker: ${reply.error}`));
  else job.resolve(reply);
}

function onCrash(pw: PoolWorker, message: string): void {
  const job = pw.job;
  retire(pw);
  job?.reject(new Error(message));
  // The crashed worker's slot is free again: give a queued request a fresh worker.
  const next = queue.shift();
  if (next === undefined) return;
  let fresh: PoolWorker;
  try {
    fresh = spawn();
  } catch (e) {
    next.reject(e instanceof Error ? e : new Error(String(e)));
    return;
  }
  assign(fresh, next);
}

/** A worker finished a request: hand it the next queued one, or park it with a reap timer. */
function release(pw: PoolWorker): void {
  if (!allWorkers.has(pw)) return;
  const next = queue.shift();
  if (next !== undefined) {
    assign(pw, next);
    return;
  }
  idleWorkers.push(pw);
  armIdleTimer(pw);
}

function armIdleTimer(pw: PoolWorker): void {
  if (pw.idleTimer !== undefined) clearTimeout(pw.idleTimer);
  const timer = setTimeout(() => reap(pw), options.idleTimeoutMs);
  // An idle pool must not be what keeps the process alive (only the worker itself does, until
  // this timer reaps it; module comment).
  Deno.unrefTimer(timer);
  pw.idleTimer = timer;
}

function reap(pw: PoolWorker): void {
  pw.idleTimer = undefined;
  if (pw.job !== undefined) return; // picked up in the meantime (assign clears the timer anyway)
  retire(pw);
  if (allWorkers.size === 0) {
    // Freed malloc memory of the terminated isolates' threads stays in RSS until trimmed
    // (measured: about 2 MiB per worker; the rest of a worker's footprint is not returned at
    // all, see the module comment).
    try {
      mallocTrim();
    } catch {
      // No libc (cannot happen on Linux/glibc); the memory is merely not returned early.
    }
  }
}

function retire(pw: PoolWorker): void {
  if (pw.idleTimer !== undefined) clearTimeout(pw.idleTimer);
  pw.idleTimer = undefined;
  pw.job = undefined;
  allWorkers.delete(pw);
  const i = idleWorkers.indexOf(pw);
  if (i !== -1) idleWorkers.splice(i, 1);
  pw.worker.terminate();
}
