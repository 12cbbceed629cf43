/**
 * Pool worker: executes one {@link BlockingRequest} at a time with *synchronous* FFI calls, so
 * errno is read on the thread that made the call (clients-and-peers.md §4.2), and answers with a
 * {@link BlockingReply}. Only `ffi/blocking.ts` spawns it.
 *
 * Big buffers never get copied between isolates: read data is allocated here and transferred to
 * the main thread, write data arrives as a transferred ArrayBuffer.
 *
 * `deno compile` needs `--include ffi/syscall_worker.ts` (this module is only referenced by URL).
 *
 * @module
 */

import {
  cString,
  EINTR,
  errno,
  FIFREEZE,
  FITHAW,
  libc,
  O_CLOEXEC,
  O_RDONLY,
  type OsPath,
  strerror,
} from "./libc.ts";
import type { BlockingReply, BlockingRequest } from "./blocking.ts";

/**
 * First read allocation. A read of `count` bytes starts with min(count, this) and doubles as the
 * file keeps delivering, so a 14-byte file never costs a 48 MiB buffer (qemu-ga-behaviour.md §3.2:
 * count may be up to 48 MiB).
 */
const READ_INITIAL = 64 * 1024;

/** The worker global, typed minimally (the `deno.worker` lib would clash with `deno check`). */
interface WorkerScope {
  onmessage: ((ev: MessageEvent<BlockingRequest>) => void) | null;
  postMessage(message: BlockingReply, transfer: Transferable[]): void;
}

function fail(ret: number | bigint, e: number, extra?: Partial<BlockingReply>): BlockingReply {
  return { ret, errno: e, strerror: strerror(e), ...extra };
}

function doRead(fd: number, count: number): [BlockingReply, Transferable[]] {
  const sys = libc();
  let buffer = new ArrayBuffer(Math.min(count, READ_INITIAL));
  let view = new Uint8Array(buffer);
  let got = 0;
  let eof = false;
  // fread semantics (§3.2): loop until `count` bytes, EOF (a read returning 0) or an error. No
  // extra read once `count` is reached, so reading exactly the rest of a file reports eof false,
  // as glibc's fread does.
  while (got < count) {
    if (got === buffer.byteLength) {
      buffer = buffer.transfer(Math.min(count, buffer.byteLength * 2));
      view = new Uint8Array(buffer);
    }
    const n = Number(sys.read(fd, view.subarray(got), BigInt(buffer.byteLength - got)));
    if (n > 0) {
      got += n;
    } else if (n === 0) {
      eof = true;
      break;
    } else {
      const e = errno();
      // stdio retries EINTR; EAGAIN (O_NONBLOCK fd without data) is an error like in ferror().
      if (e === EINTR) continue;
      // qemu-ga discards partial data when ferror() is set: no data in the reply.
      return [fail(got, e), []];
    }
  }
  // Trim to the exact size so the main thread holds no slack (a copy of `got` bytes at most).
  if (got !== buffer.byteLength) buffer = buffer.transfer(got);
  return [{ ret: got, errno: 0, data: buffer, eof }, [buffer]];
}

function doWrite(fd: number, buffer: ArrayBuffer, offset: number, length: number): BlockingReply {
  const sys = libc();
  const view = new Uint8Array(buffer, offset, length);
  let done = 0;
  // fwrite semantics: loop until all is written; an error ends it (bytes so far are reported in
  // `ret`, the caller throws). EINTR is retried as stdio does.
  while (done < length) {
    const n = Number(sys.write(fd, view.subarray(done), BigInt(length - done)));
    if (n > 0) {
      done += n;
    } else if (n === 0) {
      break; // the kernel accepts nothing more (not seen for files); report the short count
    } else {
      const e = errno();
      if (e === EINTR) continue;
      return fail(done, e);
    }
  }
  return { ret: done, errno: 0 };
}

function doFreeze(path: OsPath): BlockingReply {
  const sys = libc();
  // qemu-ga: qga_open_cloexec(dirname, O_RDONLY, 0) (§3.4; O_CLOEXEC keeps the fd out of
  // guest-exec children, §4.2).
  const fd = sys.open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd === -1) return fail(-1, errno(), { stage: "open" });
  const ret = sys.ioctl(fd, BigInt(FIFREEZE), 0n);
  const e = ret === -1 ? errno() : 0; // before close(), which may overwrite errno
  sys.close(fd);
  return e === 0 ? { ret: 0, errno: 0 } : fail(-1, e, { stage: "freeze" });
}

function doThaw(path: OsPath): BlockingReply {
  const sys = libc();
  const fd = sys.open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd === -1) return fail(0, errno(), { stage: "open" });
  // qemu-ga repeats FITHAW until it fails: nested FIFREEZEs by others each need one FITHAW, and
  // the final error (normally EINVAL, "not frozen") means the fs is thawed (§3.4). The kernel
  // freeze count is bounded, so this terminates.
  let successes = 0;
  while (sys.ioctl(fd, BigInt(FITHAW), 0n) === 0) successes++;
  const e = errno();
  sys.close(fd);
  return { ret: successes, errno: e, strerror: strerror(e), stage: "thaw" };
}

function simple(ret: number): BlockingReply {
  return ret === -1 ? fail(-1, errno()) : { ret, errno: 0 };
}

/** Executes one request. Exported for direct (same-thread) use in benchmarks and tests. */
export function execute(req: BlockingRequest): [BlockingReply, Transferable[]] {
  const sys = libc();
  switch (req.op) {
    case "noop":
      return [{ ret: 0, errno: 0 }, []];
    case "open":
      return [simple(sys.open(cString(req.path), req.flags, req.mode)), []];
    case "close":
      return [simple(sys.close(req.fd)), []];
    case "fchmod":
      return [simple(sys.fchmod(req.fd, req.mode)), []];
    case "fsync":
      return [simple(sys.fsync(req.fd)), []];
    case "lseek": {
      const pos = sys.lseek(req.fd, req.offset, req.whence);
      return [pos === -1n ? fail(-1n, errno()) : { ret: pos, errno: 0 }, []];
    }
    case "read":
      return req.count === 0
        ? [{ ret: 0, errno: 0, data: new ArrayBuffer(0), eof: false }, []]
        : doRead(req.fd, req.count);
    case "write":
      return [doWrite(req.fd, req.buffer, req.byteOffset, req.byteLength), []];
    case "freeze":
      return [doFreeze(req.path), []];
    case "thaw":
      return [doThaw(req.path), []];
  }
}

// Only act as a worker when running as one (this module may also be imported for `execute`).
// `WorkerGlobalScope` exists only inside workers (the main thread's global is a `Window`).
const scope = globalThis as unknown as WorkerScope & { WorkerGlobalScope?: unknown };
if (scope.WorkerGlobalScope !== undefined) {
  scope.onmessage = (ev) => {
    let reply: BlockingReply;
    let transfer: Transferable[] = [];
    try {
      [reply, transfer] = execute(ev.data);
    } catch (e) {
      reply = { ret: -1, errno: 0, error: e instanceof Error ? e.message : String(e) };
    }
    scope.postMessage(reply, transfer);
  };
}
