/**
 * read(2) in a loop, fread-style (qemu-ga-behaviour.md §3.2): up to `count` bytes, stopping at
 * end of file or at an error.
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { EINTR, errno, libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, failed, isError, type SyscallReply } from "./op.ts";

/** What to read. */
export interface ReadArgs {
  fd: number;
  /** Most bytes to read. */
  count: number;
}

/** `ret` is the byte count (bytes read so far when `errno` is set). */
export interface ReadReply extends SyscallReply {
  /** Exactly `ret` bytes; absent on failure (qemu-ga discards partial data when ferror()). */
  data?: ArrayBuffer;
  /** A read(2) returned 0. */
  eof?: boolean;
}

/**
 * First allocation; the buffer doubles while the file keeps delivering, so a 14-byte file never
 * costs a 48 MiB buffer (count may be up to 48 MiB, §3.2).
 */
const READ_INITIAL = 64 * 1024;

/** `count` 0 reads nothing, not even to find EOF. */
const EMPTY: () => ReadReply = () => ({ ret: 0, errno: 0, data: new ArrayBuffer(0), eof: false });

/**
 * The buffer once `got` bytes are in: trimmed to the exact size so the caller holds no slack (a
 * copy of `got` bytes at most).
 */
function done(buffer: ArrayBuffer, got: number, eof: boolean): ReadReply {
  if (got !== buffer.byteLength) buffer = buffer.transfer(got);
  return { ret: got, errno: 0, data: buffer, eof };
}

// Both halves: loop until `count` bytes, EOF (a read returning 0) or an error. No extra read once
// `count` is reached, so reading exactly the rest of a file reports eof false, as glibc's fread
// does. stdio retries EINTR; EAGAIN (O_NONBLOCK fd without data) is an error like in ferror().

/** fread(count) on `fd`. */
export const read: BlockingOp<ReadArgs, ReadReply> = {
  async trampoline({ fd, count }, job) {
    if (count === 0) return EMPTY();
    const nr = sys().read;
    let buffer = new ArrayBuffer(Math.min(count, READ_INITIAL));
    let got = 0;
    let eof = false;
    while (got < count && !job.abandoned) {
      // Safe to move the buffer here: no system call is using it between two awaits.
      if (got === buffer.byteLength) {
        buffer = buffer.transfer(Math.min(count, buffer.byteLength * 2));
      }
      const n = await syscall6(nr, fd, new Uint8Array(buffer, got), buffer.byteLength - got);
      if (isError(n)) {
        const e = Number(-n);
        if (e === EINTR) continue;
        return failed(got, e);
      }
      if (n === 0n) {
        eof = true;
        break;
      }
      got += Number(n);
    }
    return done(buffer, got, eof);
  },

  worker({ fd, count }) {
    if (count === 0) return EMPTY();
    const c = libc();
    let buffer = new ArrayBuffer(Math.min(count, READ_INITIAL));
    let view = new Uint8Array(buffer);
    let got = 0;
    let eof = false;
    while (got < count) {
      if (got === buffer.byteLength) {
        buffer = buffer.transfer(Math.min(count, buffer.byteLength * 2));
        view = new Uint8Array(buffer);
      }
      const n = Number(c.read(fd, view.subarray(got), BigInt(buffer.byteLength - got)));
      if (n > 0) {
        got += n;
      } else if (n === 0) {
        eof = true;
        break;
      } else {
        const e = errno();
        if (e === EINTR) continue;
        return failed(got, e);
      }
    }
    return done(buffer, got, eof);
  },

  // The data moves to the main thread instead of being copied (zero copy).
  transferables: (reply) => reply.data === undefined ? [] : [reply.data],
};
