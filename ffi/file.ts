/**
 * System calls behind guest-file-open/read/write/seek/close (qemu-ga-behaviour.md §3.2).
 *
 * Every call runs off the event loop through `runBlocking` (`ffi/blocking.ts`: the raw-syscall
 * trampoline, or pool workers where executable memory is refused): a read or write on a frozen
 * or hung filesystem, or open() of a FIFO, may block for as long as it likes without stalling
 * the agent, and the error number stays exact.
 *
 * `read` and `write` reproduce fread()/fwrite()'s *loop* semantics with bytes going straight to
 * the kernel; stdio's write buffering, which hosts can observe, is layered on top by
 * `lib/guest_file.ts`. The caller remains responsible for the qemu-ga-visible details (the
 * exclusive-create-then-fchmod(0666) dance of `safe_open_or_create`, O_NOCTTY|O_NONBLOCK|O_CLOEXEC
 * flags, error message prefixes).
 *
 * Calls on *different* fds run in parallel. The pool does not serialize calls on the same fd; a
 * caller that needs per-handle ordering must await one call before issuing the next.
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import { OsError, type OsPath } from "./libc.ts";
import type { SyscallReply } from "./ops/mod.ts";

/** The file system calls the file commands use. All async, all executed in the pool. */
export interface FileSyscalls {
  /** open(2); throws OsError. */
  open(path: OsPath, flags: number, mode: number): Promise<number>;
  /** fchmod(2); throws OsError. */
  fchmod(fd: number, mode: number): Promise<void>;
  /** ftruncate(2); throws OsError. */
  ftruncate(fd: number, length: bigint): Promise<void>;
  /**
   * Like fread(count): loops until `count` bytes, end of file, or an error. eof = a read returned
   * 0. If an error happens the call throws OsError (even after partial data, as qemu-ga reports
   * ferror). EAGAIN/EINTR handling like stdio's: EINTR retried, EAGAIN is an error.
   *
   * Memory: the buffer starts at min(count, 64 KiB) and doubles while the file keeps delivering;
   * the returned array is exactly as long as the data (no 48 MiB allocation for a small file).
   */
  read(fd: number, count: number): Promise<{ data: Uint8Array; eof: boolean }>;
  /**
   * Like fwrite: loops until everything is written; throws OsError. Returns bytes written.
   *
   * Ownership: when `data` spans its whole (non-shared) ArrayBuffer, that buffer is *transferred*
   * to the worker (zero copy) and is detached afterwards; do not use `data` again. A sub-view is
   * copied instead, so a view into a larger buffer never detaches its neighbours.
   */
  write(fd: number, data: Uint8Array): Promise<number>;
  /** lseek(2); returns the new offset; throws OsError. */
  lseek(fd: number, offset: bigint, whence: number): Promise<bigint>;
  /** close(2); throws OsError (the fd is released by the kernel even then, as on Linux). */
  close(fd: number): Promise<void>;
}

/** The reply of a call that succeeded; a failed one throws its OsError. */
function check<R extends SyscallReply<number | bigint>>(reply: R): R {
  if (reply.errno !== 0) throw new OsError(reply.errno, reply.strerror);
  return reply;
}

function assertFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new RangeError(`bad fd ${fd}`);
}

/** The real implementation, backed by the blocking pool. */
export const fileSyscalls: FileSyscalls = {
  async open(path, flags, mode) {
    const reply = check(await runBlocking({ op: "open", path, flags, mode }));
    return Number(reply.ret);
  },

  async fchmod(fd, mode) {
    assertFd(fd);
    check(await runBlocking({ op: "fchmod", fd, mode }));
  },

  async ftruncate(fd, length) {
    assertFd(fd);
    check(await runBlocking({ op: "ftruncate", fd, length }));
  },

  async read(fd, count) {
    assertFd(fd);
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`bad count ${count}`);
    const reply = check(await runBlocking({ op: "read", fd, count }));
    return { data: new Uint8Array(reply.data ?? new ArrayBuffer(0)), eof: reply.eof === true };
  },

  async write(fd, data) {
    assertFd(fd);
    let buffer: ArrayBuffer;
    let byteOffset = 0;
    if (
      data.buffer instanceof ArrayBuffer && data.byteOffset === 0 &&
      data.byteLength === data.buffer.byteLength
    ) {
      buffer = data.buffer; // moved, not copied
    } else {
      // A view into a larger (or shared) buffer: copy just these bytes; transferring the whole
      // buffer would detach memory the caller may still use.
      const copy = data.slice();
      buffer = copy.buffer;
      byteOffset = copy.byteOffset;
    }
    const byteLength = data.byteLength;
    const reply = check(
      await runBlocking({ op: "write", fd, buffer, byteOffset, byteLength }, [buffer]),
    );
    return Number(reply.ret);
  },

  async lseek(fd, offset, whence) {
    assertFd(fd);
    const reply = check(await runBlocking({ op: "lseek", fd, offset, whence }));
    return BigInt(reply.ret);
  },

  async close(fd) {
    assertFd(fd);
    check(await runBlocking({ op: "close", fd }));
  },
};
