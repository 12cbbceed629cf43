/**
 * Pool worker: executes one request at a time with its operation's *worker half* (`ffi/ops/`),
 * whose synchronous FFI calls read errno on the thread that made them (clients-and-peers.md
 * §4.2), and answers with a {@link WorkerAnswer}. Only `ffi/blocking.ts` spawns it.
 *
 * Big buffers never get copied between isolates: read data is allocated here and transferred to
 * the main thread (`BlockingOp.transferables`), write data arrives as a transferred ArrayBuffer.
 *
 * `deno compile` needs `--include ffi/syscall_worker.ts` (this module is only referenced by URL).
 *
 * @module
 */

import { type BlockingRequest, findOp } from "./ops/mod.ts";

/**
 * What the worker posts back: the operation's reply, or the text of an exception inside the
 * worker (a bug, not a system call error; the call is rejected).
 */
export type WorkerAnswer = { reply: unknown } | { error: string };

/** The worker global, typed minimally (the `deno.worker` lib would clash with `deno check`). */
interface WorkerScope {
  onmessage: ((ev: MessageEvent<BlockingRequest>) => void) | null;
  postMessage(message: WorkerAnswer, transfer: Transferable[]): void;
}

/**
 * Executes one request on this thread: its reply and the buffers to transfer with it. Exported
 * for direct (same-thread) use in benchmarks and tests.
 *
 * @throws Error for an unknown operation or a bad request.
 */
export function execute(request: BlockingRequest): [unknown, Transferable[]] {
  const op = findOp(request.op);
  if (op === undefined) throw new Error(`unknown op ${JSON.stringify(request.op)}`);
  const reply = op.worker(request);
  return [reply, op.transferables?.(reply) ?? []];
}

// Only act as a worker when running as one (this module may also be imported for `execute`).
// `WorkerGlobalScope` exists only inside workers (the main thread's global is a `Window`).
const scope = globalThis as unknown as WorkerScope & { WorkerGlobalScope?: unknown };
if (scope.WorkerGlobalScope !== undefined) {
  scope.onmessage = (ev) => {
    let answer: WorkerAnswer;
    let transfer: Transferable[] = [];
    try {
      const [reply, buffers] = execute(ev.data);
      answer = { reply };
      transfer = buffers;
    } catch (e) {
      answer = { error: e instanceof Error ? e.message : String(e) };
    }
    scope.postMessage(answer, transfer);
  };
}
