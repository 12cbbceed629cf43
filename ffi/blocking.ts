/**
 * Where blocking system calls run: off the event loop, with errno read correctly.
 *
 * Callers (`ffi/file.ts`, `ffi/fsfreeze.ts`, `ffi/statfs.ts`, …) only call {@link runBlocking}
 * with a {@link BlockingRequest}. What each operation does lives in its own file under `ffi/ops/`
 * (both halves, listed in `ffi/ops/registry.ts`); this module only holds the two executors that
 * run them, and picks one, once, on first use:
 *
 * 1. **Trampoline** (default): the operation's trampoline half, whose system calls go through the
 *    raw system-call trampoline of `ffi/rawsyscall.ts`: a `nonblocking` FFI call on one of the
 *    runtime's blocking-pool threads that returns the kernel's result itself (`-errno` on
 *    failure), so no thread-local errno is involved and no Worker is needed. Measured (Deno 2.9.6,
 *    x86-64): a runBlocking lseek round trip takes ~10 µs median (workers: ~25 µs); an agent that
 *    served a few file requests holds ~0.5 MiB more anonymous memory than one that only answered
 *    pings (workers: ~6–8 MiB more, plus ~6 MiB more of the deno binary's code pages).
 * 2. **Worker pool** (fallback): a pool of Web Workers that run the operation's worker half,
 *    *synchronous* libc calls that read errno on their own thread (`ffi/syscall_worker.ts`). Used
 *    when the trampoline cannot exist: an architecture without one, or executable memory refused
 *    (SELinux `deny_execmem`, systemd MemoryDenyWriteExecute, …; the refusal is remembered, see
 *    `trampolineStatus()`).
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

import { mallocTrim } from "./libc.ts";
import {
  type AnyOp,
  type BlockingRequest,
  findOp,
  type OpArgs,
  type OpName,
  type OpReply,
} from "./ops/mod.ts";
import { trampolineStatus } from "./rawsyscall.ts";
import {
  type ExecutorChoice,
  type ExecutorKind,
  type ExecutorStatus,
  tellDecided,
} from "./executor_status.ts";
import type { WorkerAnswer } from "./syscall_worker.ts";

export type { BlockingRequest, OpArgs, OpName, OpReply } from "./ops/mod.ts";
export type { ExecutorChoice, ExecutorKind, ExecutorStatus };
export { onExecutorDecided } from "./executor_status.ts";

/** What operation `K` resolves with (by default: any operation's reply). */
export type BlockingReply<K extends OpName = OpName> = OpReply<K>;

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
  resolve: (reply: unknown) => void;
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
  if (decided === undefined) {
    decided = decide();
    tellDecided({ ...decided });
  }
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
 * The operations and their request and reply types are those of the registry
 * (`ffi/ops/registry.ts`); the reply type follows from `request.op`.
 *
 * Resolves with the reply, including failed system calls (`errno` ≠ 0 or `ok: false`): turning
 * those into errors is the caller's business. Rejects only when the request could not be
 * executed (a bug in the request, no executor available, a worker crashed or failed to load, the
 * request could not be posted, {@link shutdown} was called).
 *
 * @param transfer ArrayBuffers whose ownership moves to the executor instead of being copied:
 *   they are detached here as soon as the request is taken (zero copy with either executor).
 */
export function runBlocking<K extends OpName>(
  request: { op: K } & OpArgs<K>,
  transfer: Transferable[] = [],
): Promise<OpReply<K>> {
  const status = decided ?? executorStatus();
  // The registry guarantees the reply type of `request.op`; the executors handle ops untyped.
  const req = request as unknown as BlockingRequest;
  switch (status.active) {
    case "trampoline":
      return runOnTrampoline(req, transfer) as Promise<OpReply<K>>;
    case "worker":
      return runInWorker(req, transfer) as Promise<OpReply<K>>;
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
// Trampoline executor: each request runs its operation's trampoline half (ffi/ops/), an async
// sequence of raw system calls (ffi/rawsyscall.ts).
// ---------------------------------------------------------------------------------------------

interface TrampolineJob {
  op: AnyOp;
  /** The request, its buffers owned by the job from submission on (`BlockingOp.adopt`). */
  args: object;
  resolve: (reply: unknown) => void;
  reject: (error: Error) => void;
  /** Set by shutdown(): the caller was rejected; remaining steps are skipped where safe. */
  abandoned: boolean;
}

/** Jobs executing (each has at most one system call in flight), including abandoned ones. */
const trampolineRunning = new Set<TrampolineJob>();
const trampolineQueue: TrampolineJob[] = [];

function runOnTrampoline(request: BlockingRequest, transfer: Transferable[]): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    const op = findOp(request.op);
    if (op === undefined) {
      // Same shape as any other exception while executing (finishTrampolineJob).
      reject(new Error(`syscall trampoline: unknown op ${JSON.stringify(request.op)}`));
      return;
    }
    let args: object = request;
    try {
      if (op.adopt !== undefined) args = op.adopt(request, transfer);
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const job: TrampolineJob = { op, args, resolve, reject, abandoned: false };
    if (trampolineRunning.size < options.maxTrampolineCalls) startTrampolineJob(job);
    else trampolineQueue.push(job);
  });
}

function startTrampolineJob(job: TrampolineJob): void {
  trampolineRunning.add(job);
  // new Promise: an op that throws before its first await rejects like one that throws later.
  new Promise<unknown>((resolve) => resolve(job.op.trampoline(job.args, job))).then(
    (reply) => finishTrampolineJob(job, { reply }),
    (e: unknown) => finishTrampolineJob(job, { error: e }),
  );
}

function finishTrampolineJob(
  job: TrampolineJob,
  outcome: { reply: unknown } | { error: unknown },
): void {
  trampolineRunning.delete(job);
  if (job.abandoned) {
    // Nobody will ever see this reply: let the op free what it holds (an fd it opened).
    if ("reply" in outcome) job.op.release?.(outcome.reply);
  } else if ("reply" in outcome) {
    job.resolve(outcome.reply);
  } else {
    // An exception while executing: a bug in the request (e.g. a path that is not a string),
    // never a failed system call. Same shape as the worker's "syscall worker: …".
    const e = outcome.error;
    job.reject(new Error(`syscall trampoline: ${e instanceof Error ? e.message : String(e)}`));
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

// ---------------------------------------------------------------------------------------------
// Worker pool executor.
// ---------------------------------------------------------------------------------------------

/** Execute `request` synchronously in a pool worker (its operation's worker half). */
function runInWorker(request: BlockingRequest, transfer: Transferable[]): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
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
  worker.onmessage = (ev: MessageEvent<WorkerAnswer>) => onReply(pw, ev.data);
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

function onReply(pw: PoolWorker, answer: WorkerAnswer): void {
  const job = pw.job;
  pw.job = undefined;
  release(pw);
  if (job === undefined) return; // a reply after shutdown() rejected the job
  if ("error" in answer) job.reject(new Error(`syscall worker: ${answer.error}`));
  else job.resolve(answer.reply);
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
