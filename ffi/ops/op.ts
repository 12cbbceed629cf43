/**
 * The contract of one blocking operation: what `ffi/blocking.ts` needs to run it on either of
 * its executors. Each operation is one file in this folder holding both halves side by side —
 * the trampoline half (async raw system calls, `syscall6`) and the worker half (synchronous libc
 * calls, errno read on the worker's own thread) — plus its request and reply types; the registry
 * (`registry.ts`) lists them.
 *
 * Both halves must give the same reply for the same kernel behaviour: the tests run every case
 * on both executors.
 *
 * @module
 */

import { errno, strerror } from "../libc.ts";

/** What the trampoline half may ask about the job it runs. */
export interface TrampolineJob {
  /**
   * Set by `shutdown()`: the caller has been told the call failed. Steps that would change
   * something (a freeze, a trim, the rest of a read or write loop) are then skipped where safe.
   */
  readonly abandoned: boolean;
}

/**
 * One blocking operation. `Args` is its request without the `op` name (the registry adds it),
 * `Reply` what it resolves with; both must survive structured cloning (they cross to and from
 * workers).
 */
export interface BlockingOp<Args, Reply> {
  /** The trampoline half: raw system calls through `syscall6`, off the event loop. */
  trampoline(args: Args, job: TrampolineJob): Promise<Reply>;
  /** The worker half: the same with synchronous libc calls, inside a pool worker. */
  worker(args: Args): Reply;
  /**
   * Trampoline only, before the job is queued: make the request's buffers the executor's own
   * (moved when listed in `transfer`, else copied), as postMessage does for workers. May throw
   * to reject the call (e.g. a detached buffer).
   */
  adopt?(args: Args, transfer: readonly Transferable[]): Args;
  /** Worker only: the reply's buffers to transfer back instead of copying them. */
  transferables?(reply: Reply): Transferable[];
  /**
   * Trampoline only: the reply of a job abandoned by `shutdown()` arrived; release what it holds
   * that nobody else will (an fd an abandoned open returned).
   */
  release?(reply: Reply): void;
}

/** The usual reply: a result plus the errno of the failed call (0 on success). */
export interface SyscallReply<Ret extends number | bigint = number> {
  /** The call's result (-1 or a partial count on failure, as the op documents). */
  ret: Ret;
  /** 0 on success, else the errno of the failed call. */
  errno: number;
  /** strerror(errno), present when `errno` is not 0. */
  strerror?: string;
}

/**
 * Linux returns errors as -4095..-1 (`IS_ERR_VALUE`); anything else is a result, even a
 * "negative" lseek offset of a device with unsigned offsets (glibc's wrappers test the same
 * range).
 */
export function isError(ret: bigint): boolean {
  return ret < 0n && ret >= -4095n;
}

/** A failure reply for `e`, with its strerror text and any op-specific fields. */
export function failed<Ret extends number | bigint, Extra extends object = Record<never, never>>(
  ret: Ret,
  e: number,
  extra?: Extra,
): SyscallReply<Ret> & Extra {
  return { ret, errno: e, strerror: strerror(e), ...extra } as SyscallReply<Ret> & Extra;
}

/** Trampoline: a raw result as libc would report it (the number, or -1 with errno). */
export function rawReply(ret: bigint): SyscallReply {
  return isError(ret) ? failed(-1, Number(-ret)) : { ret: Number(ret), errno: 0 };
}

/** Worker: a libc result (-1 means failure, errno read now on this thread). */
export function libcReply(ret: number): SyscallReply {
  return ret === -1 ? failed(-1, errno()) : { ret, errno: 0 };
}
