/**
 * The worker pool that keeps blocking system calls off the event loop.
 *
 * Why a pool of Workers and not `nonblocking: true` FFI symbols: errno is thread-local and a
 * nonblocking FFI call runs on a runtime pool thread, so errno read afterwards on the main thread
 * is stale (clients-and-peers.md §4.2, verified). Each worker therefore makes *synchronous* FFI
 * calls and reads errno itself (`ffi/syscall_worker.ts`).
 *
 * Why more than one worker: a call can stay stuck in the kernel indefinitely (FIFREEZE waiting for
 * writeback on a wedged device, a read or write on a frozen or hung filesystem, open() of a FIFO).
 * Such a call must never delay other calls, so a request goes to an idle worker, or to a newly
 * spawned one when all are busy, up to {@link PoolOptions.maxWorkers}; only beyond that cap are
 * requests queued.
 *
 * Footprint (measured on Deno 2.9.6, x86-64): an idle agent that never spawned a worker is about
 * 33–35 MiB RSS. The first worker adds about 20 MiB that is NOT returned when it is terminated
 * (about 14 MiB of the deno binary's code pages touched by isolate start-up, the rest V8 pages and
 * malloc memory); each further concurrently live worker adds about 9–10 MiB of which most comes
 * back on reaping. So reaping bounds bursts, but once any blocking call has been made the idle
 * process sits near 55–70 MiB, above the 40 MiB target. Workers are spawned lazily and terminated
 * after {@link PoolOptions.idleTimeoutMs} without work; after the last one is reaped, glibc's
 * malloc_trim() returns what malloc can give back.
 *
 * The request/reply types below are the seam: `ffi/file.ts` and `ffi/fsfreeze.ts` only call
 * {@link runBlocking}, so the executor can be swapped without touching them.
 *
 * Process lifetime: Deno offers no public `unref()` for Web Workers, so a worker keeps the process
 * alive until it is reaped (at most {@link PoolOptions.idleTimeoutMs} after the last call). The
 * idle timers themselves are unref'ed, and {@link shutdown} terminates everything at once: the
 * agent calls it on exit, short scripts call it so they exit promptly.
 *
 * `deno compile` note: the worker module is not statically imported, so a compiled agent needs
 * `deno compile --include ffi/syscall_worker.ts ...` (clients-and-peers.md §4.5). The worker URL
 * below is resolved against `import.meta.url`, which works both under `deno run` and inside the
 * compiled binary's embedded file system.
 *
 * @module
 */

import { mallocTrim } from "./libc.ts";

/** One request to a pool worker. Each maps to a short synchronous sequence of libc calls. */
export type BlockingRequest =
  /** Do nothing (latency measurement). */
  | { op: "noop" }
  /** open(path, flags, mode). */
  | { op: "open"; path: string; flags: number; mode: number }
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
  | { op: "freeze"; path: string }
  /** open(path, O_RDONLY|O_CLOEXEC), ioctl(FITHAW) until it fails, close. */
  | { op: "thaw"; path: string };

/** What a worker answers. */
export interface BlockingReply {
  /**
   * The call's result: a byte count for read/write (bytes transferred even when `errno` is set),
   * the fd for open, the offset (bigint) for lseek, the number of successful FITHAW calls for
   * thaw, 0/-1 otherwise.
   */
  ret: number | bigint;
  /** 0 on success, else the errno of the failed call (read on the worker thread, §4.2). */
  errno: number;
  /** strerror(errno), present when `errno` is not 0. */
  strerror?: string;
  /** read: exactly `ret` bytes, transferred from the worker (zero copy). */
  data?: ArrayBuffer;
  /** read: a read(2) returned 0. */
  eof?: boolean;
  /** freeze/thaw: which step set `errno`. */
  stage?: "open" | "freeze" | "thaw";
  /** An exception inside the worker (a bug, not a system call error); the call is rejected. */
  error?: string;
}

/** Tunables of the pool. */
export interface PoolOptions {
  /** Most workers alive at once (busy + idle); more requests are queued. */
  maxWorkers: number;
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

/** Compile needs `--include ffi/syscall_worker.ts` (module comment). */
const WORKER_URL = new URL("./syscall_worker.ts", import.meta.url);

const options: PoolOptions = { maxWorkers: 16, idleTimeoutMs: 10_000, workerUrl: WORKER_URL };

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
 * Change pool tunables (tests use a short idle timeout). A new idle timeout also restarts the
 * timers of workers idle right now.
 */
export function configurePool(changes: Partial<PoolOptions>): void {
  if (changes.maxWorkers !== undefined) {
    if (!Number.isInteger(changes.maxWorkers) || changes.maxWorkers < 1) {
      throw new RangeError("maxWorkers must be a positive integer");
    }
    options.maxWorkers = changes.maxWorkers;
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

/**
 * Execute `request` synchronously in a pool worker.
 *
 * Resolves with the worker's reply, including failed system calls (`errno` ≠ 0): turning those
 * into errors is the caller's business. Rejects only when the request could not be executed (the
 * worker crashed or failed to load, the request could not be posted, {@link shutdown} was called).
 *
 * @param transfer ArrayBuffers to move to the worker instead of copying (they are detached
 *   here afterwards).
 */
export function runBlocking(
  request: BlockingRequest,
  transfer: Transferable[] = [],
): Promise<BlockingReply> {
  return new Promise<BlockingReply>((resolve, reject) => {
    const job: Job = { request, transfer, resolve, reject };
    const pw = idleWorkers.pop() ?? (allWorkers.size < options.maxWorkers ? spawn() : undefined);
    if (pw === undefined) queue.push(job);
    else assign(pw, job);
  });
}

/**
 * Terminate every worker now and reject whatever is running or queued. A worker stuck in a
 * system call cannot be interrupted: its thread lingers until the call returns, but it no longer
 * holds the process open. The pool stays usable (new requests spawn new workers).
 */
export async function shutdown(): Promise<void> {
  const error = new Error("blocking pool shut down");
  for (const pw of [...allWorkers]) {
    const job = pw.job;
    retire(pw);
    job?.reject(error);
  }
  for (const job of queue.splice(0)) job.reject(error);
  // Let the runtime settle the terminated workers' pending message/control polls before the
  // caller continues (e.g. checks poolStats() or exits).
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
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
