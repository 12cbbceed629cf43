/**
 * write(2) in a loop, fwrite-style: everything, or up to the first error.
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { EINTR, errno, libc } from "../libc.ts";
import { syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, failed, isError, type SyscallReply } from "./op.ts";

/**
 * The bytes are `buffer[byteOffset, byteOffset+byteLength)`; `buffer` is normally transferred
 * with the request (zero copy).
 */
export interface WriteArgs {
  fd: number;
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
}

// Both halves: loop until all is written; an error ends it (bytes so far are reported in `ret`,
// the caller throws). EINTR is retried as stdio does.

/** `ret` is the byte count (bytes written so far when `errno` is set). */
export const write: BlockingOp<WriteArgs, SyscallReply> = {
  /**
   * The bytes, owned by the executor: a buffer listed in `transfer` is moved
   * (`ArrayBuffer.prototype.transfer`: zero copy, the caller's buffer is detached, exactly as
   * postMessage would do), anything else is copied. Either way the caller can neither change nor
   * free the memory while the kernel reads it.
   */
  adopt(args, transfer) {
    const { buffer, byteOffset, byteLength } = args;
    if (!(buffer instanceof ArrayBuffer)) {
      throw new TypeError("write: buffer is not an ArrayBuffer");
    }
    new Uint8Array(buffer, byteOffset, byteLength); // RangeError before anything is detached
    if (transfer.includes(buffer)) return { ...args, buffer: buffer.transfer() };
    return {
      ...args,
      buffer: buffer.slice(byteOffset, byteOffset + byteLength),
      byteOffset: 0,
    };
  },

  async trampoline({ fd, buffer, byteOffset, byteLength }, job) {
    const bytes = new Uint8Array(buffer, byteOffset, byteLength);
    const nr = sys().write;
    let done = 0;
    try {
      while (done < byteLength && !job.abandoned) {
        const n = await syscall6(nr, fd, bytes.subarray(done), byteLength - done);
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
      // adopt() made these bytes the job's and no system call uses them any more: free them now
      // by detaching, instead of leaving up to 48 MiB per write to the next garbage collection
      // (streaming 4 MiB writes peaked noticeably higher without this).
      buffer.transfer(0);
    }
  },

  worker({ fd, buffer, byteOffset, byteLength }) {
    const c = libc();
    const view = new Uint8Array(buffer, byteOffset, byteLength);
    let done = 0;
    while (done < byteLength) {
      const n = Number(c.write(fd, view.subarray(done), BigInt(byteLength - done)));
      if (n > 0) {
        done += n;
      } else if (n === 0) {
        break; // the kernel accepts nothing more (not seen for files); report the short count
      } else {
        const e = errno();
        if (e === EINTR) continue;
        return failed(done, e);
      }
    }
    return { ret: done, errno: 0 };
  },
};
