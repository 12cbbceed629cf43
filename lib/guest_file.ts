/**
 * An open guest file with the write buffering of the glibc stdio stream qemu-ga uses (§3.2), so
 * a host sees the same file contents at the same moments: small writes wait in a buffer of
 * st_blksize bytes (at most BUFSIZ) until guest-file-flush, a read, a seek, close, agent exit,
 * or the buffer filling; large writes go straight to the kernel in whole blocks. Reads are not
 * buffered: a read-ahead is invisible to the host because every read first flushes, and
 * positions are logical either way.
 *
 * @module
 */

import type { FileSyscalls } from "../ffi/file.ts";
import { EBADF, OsError, SEEK_CUR } from "../ffi/libc.ts";

/** glibc's BUFSIZ: the largest stdio buffer it allocates for a file. */
const BUFSIZ = 8192;

/**
 * glibc sizes a stream's buffer from st_blksize when that is smaller than BUFSIZ.
 *
 * @example
 * ```ts
 * stdioBufferSize(4096); // 4096 on ext4
 * ```
 */
export function stdioBufferSize(blksize: number | null | undefined): number {
  return blksize && blksize > 0 && blksize < BUFSIZ ? blksize : BUFSIZ;
}

/** The last operation on a handle, which decides the implicit flush or seek qemu-ga does. */
export type RwState = "new" | "reading" | "writing";

/** qemu-ga's GuestFileHandle: an fd plus stdio's pending writes. */
export class GuestFile {
  readonly fd: number;
  readonly path: string;
  rw: RwState = "new";
  readonly #io: FileSyscalls;
  readonly #bufSize: number;
  #buf: Uint8Array | undefined;
  #pending = 0;

  readonly #writable: boolean;

  constructor(io: FileSyscalls, fd: number, path: string, bufSize: number, writable: boolean) {
    this.#io = io;
    this.fd = fd;
    this.path = path;
    this.#bufSize = bufSize;
    this.#writable = writable;
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get pending(): number {
    return this.#pending;
  }

  /** Hands buffered bytes to the kernel (fflush). Throws OsError; the bytes are dropped then. */
  async flush(): Promise<void> {
    if (this.#pending === 0 || !this.#buf) return;
    const data = this.#buf.slice(0, this.#pending);
    this.#pending = 0;
    await this.#io.write(this.fd, data);
  }

  /** fwrite: fill the buffer; on overflow flush it, write whole blocks directly, buffer the rest. */
  async write(data: Uint8Array): Promise<number> {
    // A stream opened for reading refuses writes before buffering anything (_IO_NO_WRITES).
    if (!this.#writable) throw new OsError(EBADF);
    // Read the length first: the syscall layer may detach a buffer handed to it whole.
    const total = data.length;
    let off = 0;
    if (this.#buf) {
      off = Math.min(this.#bufSize - this.#pending, data.length);
      this.#buf.set(data.subarray(0, off), this.#pending);
      this.#pending += off;
    }
    const rest = total - off;
    if (rest === 0) return total;
    await this.flush();
    this.#buf ??= new Uint8Array(this.#bufSize);
    const direct = rest - (rest % this.#bufSize);
    // Buffer the tail before the direct write: the syscall layer may take over (detach) a
    // buffer that it is handed whole.
    const tail = data.subarray(off + direct);
    this.#buf.set(tail, 0);
    this.#pending = tail.length;
    if (direct > 0) {
      try {
        await this.#io.write(this.fd, data.subarray(off, off + direct));
      } catch (e) {
        this.#pending = 0;
        throw e;
      }
    }
    return total;
  }

  /** fread of up to `count` bytes; the caller flushes first when switching from writing. */
  read(count: number): Promise<{ data: Uint8Array; eof: boolean }> {
    return this.#io.read(this.fd, count);
  }

  /** fseek + ftell: flush, then move. */
  async seek(offset: bigint, whence: number): Promise<bigint> {
    await this.flush();
    return this.#io.lseek(this.fd, offset, whence);
  }

  /** The zero-length seek stdio needs between a read and a write (fails on pipes). */
  async syncPosition(): Promise<void> {
    await this.#io.lseek(this.fd, 0n, SEEK_CUR);
  }

  /** fclose: flush, then close the fd even when the flush failed; throws the first error. */
  async close(): Promise<void> {
    let failure: unknown;
    try {
      await this.flush();
    } catch (e) {
      failure = e;
    }
    try {
      await this.#io.close(this.fd);
    } catch (e) {
      failure ??= e;
    }
    if (failure !== undefined) throw failure;
  }
}
