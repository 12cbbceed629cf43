/**
 * Nonblocking file-descriptor I/O for the channels (issue #3): the extra system calls they need
 * (ppoll, eventfd, sockets, fcntl) through the raw-syscall trampoline of `ffi/rawsyscall.ts`,
 * and {@link FdStream}, the read/write/poll machinery shared by virtio-serial, isa-serial and
 * the FFI socket listeners.
 *
 * Why not `Deno.open`/`FsFile` (clients-and-peers.md §4.4): async ops on one FsFile pass through a
 * per-resource queue, so a reply write waits behind the pending read; `writeSync` runs on the
 * main thread and freezes the event loop while the virtio host is disconnected; closing during a
 * pending read leaks the dup'd fd (and the port answers EBUSY to a reopen). Here instead:
 *
 * - the fd is opened with O_NONBLOCK, so read(2) and write(2) never sleep: they run
 *   *synchronously* on the main thread through the trampoline (~2 µs, no thread hand-off) and
 *   answer EAGAIN when they would block;
 * - only the *waiting* leaves the event loop: `ppoll` on a runtime blocking-pool thread
 *   (`syscall6`), for POLLIN (reader) or POLLOUT (writer) independently, so a write never waits
 *   behind a pending read. A stream holds at most two pool threads (one waiting reader, one
 *   waiting writer) of the 32; far below `ffi/blocking.ts`'s cap of 16 for its own calls;
 * - every wait also polls a private eventfd, so {@link FdStream.close} wakes pending waits at
 *   once and closes the fd only after the last one returned (no fd leak, no EBUSY on reopen);
 * - a virtio port with no host attached reads 0 and polls POLLHUP at once for as long as nobody
 *   is there (§6: qemu-ga reads again every 100 ms); the stream instead waits for the port's
 *   next change with an edge-triggered epoll on the pool ({@link ChangeWaiter}), so an idle agent
 *   makes no system calls at all. Sleeps are ppolls on the eventfd with a timeout: no
 *   `setTimeout` (the first timer costs ~4 MiB RSS).
 *
 * Architectures: Linux x86-64 and aarch64 (system call numbers and the `struct epoll_event`
 * layout in `ffi/arch/`). aarch64 has no poll(2), so ppoll is used on both.
 *
 * @module
 */

import { arch, sys } from "./arch/mod.ts";
import { cString, EAGAIN, EINTR, O_CLOEXEC, O_NONBLOCK, OsError, type OsPath } from "./libc.ts";
import { AT_FDCWD, syscall6, syscall6Sync } from "./rawsyscall.ts";

/** poll(2) events (asm-generic/poll.h, same on both architectures). */
export const POLLIN = 0x001;
/** Writing will not block. */
export const POLLOUT = 0x004;
/** Error condition (revents only). */
export const POLLERR = 0x008;
/** Hang up: peer closed, or (virtio) no host attached (revents only). */
export const POLLHUP = 0x010;
/** Invalid fd (revents only). */
export const POLLNVAL = 0x020;

/** fcntl(2) commands and flags. */
export const F_GETFD = 1;
/** Set the fd flags. */
export const F_SETFD = 2;
/** Get the file status flags. */
export const F_GETFL = 3;
/** Set the file status flags. */
export const F_SETFL = 4;
/** The close-on-exec fd flag. */
export const FD_CLOEXEC = 1;

/** Broken pipe. */
export const EPIPE = 32;
/** Software caused connection abort (accept4 may report it; retried). */
export const ECONNABORTED = 103;

/** Linux returns errors as -4095..-1 (`IS_ERR_VALUE`). */
export function isErr(ret: bigint): boolean {
  return ret < 0n && ret >= -4095n;
}

/** A synchronous raw call that must succeed: its result, or an {@link OsError}. */
export function check(ret: bigint): number {
  if (isErr(ret)) throw new OsError(Number(-ret));
  return Number(ret);
}

/** Closes `fd` (errors ignored: nothing useful can be done about them). */
export function closeFd(fd: number): void {
  syscall6Sync(sys().close, fd);
}

/** A new eventfd (nonblocking, close-on-exec); the waker of {@link FdStream} and sleeps. */
export function newEventFd(): number {
  return check(syscall6Sync(sys().eventfd2, 0, O_NONBLOCK | O_CLOEXEC));
}

const ONE = new BigUint64Array([1n]);

/** Makes `efd` readable for good (its counter never goes back to 0: nobody reads it). */
export function signalEventFd(efd: number): void {
  syscall6Sync(sys().write, efd, ONE, 8);
}

/**
 * open(2) of `path` on the main thread, for devices opened with O_NONBLOCK in `flags` (such an
 * open never sleeps): the fd.
 *
 * @throws OsError
 */
export function openDeviceSync(path: OsPath, flags: number): number {
  return check(syscall6Sync(sys().openat, AT_FDCWD, cString(path), flags, 0));
}

/** Adds O_NONBLOCK to `fd`'s file status flags; a failure is ignored (the fd stays as it was). */
export function setNonblocking(fd: number): void {
  const fl = syscall6Sync(sys().fcntl, fd, F_GETFL, 0);
  if (!isErr(fl)) syscall6Sync(sys().fcntl, fd, F_SETFL, Number(fl) | O_NONBLOCK);
}

/**
 * Sets FD_CLOEXEC on `fd`.
 *
 * @throws OsError (EBADF for an fd that is not open).
 */
export function setCloseOnExec(fd: number): void {
  const r = syscall6Sync(sys().fcntl, fd, F_GETFD, 0);
  check(isErr(r) ? r : syscall6Sync(sys().fcntl, fd, F_SETFD, Number(r) | FD_CLOEXEC));
}

/** Builds the `struct timespec` for a ppoll timeout; null for "no timeout". */
function timespec(ms: number | undefined): BigInt64Array | null {
  if (ms === undefined || ms < 0) return null;
  return new BigInt64Array([BigInt(Math.floor(ms / 1000)), BigInt((ms % 1000) * 1_000_000)]);
}

/**
 * Waits on a pool thread until `fd` reports one of `events` (or POLLERR/POLLHUP/POLLNVAL), `wake`
 * becomes readable, or `timeoutMs` passes. Resolves `fd`'s revents (0 on timeout or wake).
 * `fd` -1 waits on `wake` alone (a sleep that {@link signalEventFd} cuts short).
 */
export async function pollWait(
  fd: number,
  events: number,
  wake: number,
  timeoutMs?: number,
): Promise<number> {
  // struct pollfd { int fd; short events; short revents; } x2: 16 bytes, written by the kernel,
  // so each call has its own buffer (pinned by syscall6 until the call returns).
  const pfds = new Int32Array(4);
  const view = new Int16Array(pfds.buffer);
  pfds[0] = fd;
  view[2] = events;
  pfds[2] = wake;
  view[6] = POLLIN;
  for (;;) {
    const ret = await syscall6(sys().ppoll, pfds, 2, timespec(timeoutMs), null, 8);
    if (ret === -BigInt(EINTR)) continue;
    if (isErr(ret)) throw new OsError(Number(-ret));
    return fd < 0 ? 0 : view[3];
  }
}

/** epoll(7) flags (uapi/linux/eventpoll.h). */
const EPOLLIN = 0x001;
const EPOLLOUT = 0x004;
const EPOLLET = 0x8000_0000;
const EPOLL_CTL_ADD = 1;

/** A `struct epoll_event` (layout per architecture, `ffi/arch/`) with only `events` set. */
function epollEvent(events: number): Uint8Array {
  const layout = arch().layout.epollEvent;
  const b = new Uint8Array(layout.size);
  new DataView(b.buffer).setUint32(layout.events, events >>> 0, true);
  return b;
}

/**
 * Waits for the *next change* of an fd's state, which plain poll cannot do for a virtio port with
 * no host attached: it reports POLLHUP (and POLLIN, with read() returning 0) for as long as the
 * host stays away, so a poll returns at once. An edge-triggered epoll registration is only
 * reported again after the driver wakes the port's wait queue, which it does when a host
 * attaches or detaches, data arrives or sent data is consumed (virtio_console.c). The stream's
 * wake eventfd is registered level-triggered, so {@link FdStream.close} ends a wait at once.
 * One waiter per direction: an edge is reported to one epoll_wait only.
 */
class ChangeWaiter {
  readonly #epfd: number;

  constructor(fd: number, wake: number) {
    const nr = sys();
    this.#epfd = check(syscall6Sync(nr.epoll_create1, O_CLOEXEC));
    try {
      check(syscall6Sync(nr.epoll_ctl, this.#epfd, EPOLL_CTL_ADD, wake, epollEvent(EPOLLIN)));
      const ev = epollEvent(EPOLLIN | EPOLLOUT | EPOLLET);
      check(syscall6Sync(nr.epoll_ctl, this.#epfd, EPOLL_CTL_ADD, fd, ev));
    } catch (e) {
      closeFd(this.#epfd);
      throw e;
    }
  }

  /** Resolves after the next change of the fd (or the first wait: its current state), a close, or `timeoutMs`. */
  async wait(timeoutMs: number): Promise<void> {
    const events = new Uint8Array(32); // room for both registrations on either layout
    for (;;) {
      const ret = await syscall6(sys().epoll_pwait, this.#epfd, events, 2, timeoutMs, null, 8);
      if (ret === -BigInt(EINTR)) continue;
      if (isErr(ret)) throw new OsError(Number(-ret));
      return;
    }
  }

  close(): void {
    closeFd(this.#epfd);
  }
}

/** What a read of 0 bytes (end of file) means for a stream. */
export type EofPolicy =
  /**
   * virtio-serial: no host attached; wait for the port's next change (a host attaching, data)
   * and read again, forever (§6).
   */
  | "backoff"
  /** sockets: the peer is gone; the read resolves null. */
  | "end";

/**
 * How long a persistent error is slept on before trying again (qemu-ga's 100 ms back-off, §6);
 * also the EOF/HUP back-off where an fd's changes cannot be waited for (no epoll).
 */
export const EOF_BACKOFF_MS = 100;

/**
 * The longest wait for a change of a port with no host attached before looking again anyway: a
 * safety net, not the mechanism (one wake-up per 5 s instead of qemu-ga's ten per second).
 */
export const CHANGE_WAIT_MAX_MS = 5000;

/**
 * One nonblocking fd with reads and writes that can be in flight at the same time (module
 * comment). Reads and writes are each serialised on their own; reads never wait for writes.
 */
export class FdStream {
  /** The descriptor; -1 once closed. */
  fd: number;
  readonly #wake: number;
  #closed = false;
  #waits = 0;
  #writeChain: Promise<void> = Promise.resolve();
  /** Change waiters for reads at EOF and writes at HUP (created on first need). */
  #changes: { read?: ChangeWaiter | null; write?: ChangeWaiter | null } = {};
  /** EOF handling; may be changed between reads. */
  eof: EofPolicy;
  /** Waits taken because of EOF since the last byte was read (tests, diagnostics). */
  eofBackoffs = 0;
  /** Bytes read so far. */
  bytesRead = 0;

  /** Takes ownership of `fd`, which must be O_NONBLOCK. */
  constructor(fd: number, eof: EofPolicy) {
    this.fd = fd;
    this.eof = eof;
    this.#wake = newEventFd();
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  async #wait(fd: number, events: number, timeoutMs?: number): Promise<number> {
    this.#waits++;
    try {
      return await pollWait(fd, events, this.#wake, timeoutMs);
    } finally {
      this.#waits--;
      this.#closeIfIdle();
    }
  }

  /** Sleeps `ms` on a pool thread (cut short by {@link close}). */
  sleep(ms: number): Promise<number> {
    return this.#wait(-1, 0, ms);
  }

  /**
   * Waits until the fd's state changes (see {@link ChangeWaiter}), at most
   * {@link CHANGE_WAIT_MAX_MS}; where epoll cannot watch the fd, sleeps {@link EOF_BACKOFF_MS}.
   */
  async #waitForChange(direction: "read" | "write"): Promise<void> {
    let waiter = this.#changes[direction];
    if (waiter === undefined) {
      try {
        waiter = new ChangeWaiter(this.fd, this.#wake);
      } catch {
        waiter = null; // e.g. EPERM: a regular file cannot be watched
      }
      this.#changes[direction] = waiter;
    }
    if (waiter === null) {
      await this.sleep(EOF_BACKOFF_MS);
      return;
    }
    this.#waits++;
    try {
      await waiter.wait(CHANGE_WAIT_MAX_MS);
    } finally {
      this.#waits--;
      this.#closeIfIdle();
    }
  }

  /**
   * Reads into `buf`: the byte count; null at EOF under the "end" policy or once closed.
   *
   * @throws OsError on a read error (for virtio that ends the channel, §6).
   */
  async read(buf: Uint8Array): Promise<number | null> {
    if (buf.length === 0) return 0;
    const nr = sys();
    for (;;) {
      if (this.#closed) return null;
      const n = syscall6Sync(nr.read, this.fd, buf, buf.length);
      if (n > 0n) {
        this.eofBackoffs = 0;
        this.bytesRead += Number(n);
        return Number(n);
      }
      if (n === 0n) {
        if (this.eof === "end") return null;
        // virtio: read() returns 0 at once while no host is attached and POLLHUP stays set, so
        // polling would spin; qemu-ga sleeps 100 ms and reads again (§6, clients-and-peers.md
        // §4.4). Here the wait ends when the port changes: no wake-ups while nobody is there,
        // and no delay when a host attaches.
        this.eofBackoffs++;
        await this.#waitForChange("read");
        continue;
      }
      const e = Number(-n);
      if (e === EINTR) continue;
      if (e !== EAGAIN) throw new OsError(e);
      const revents = await this.#wait(this.fd, POLLIN);
      // POLLHUP with nothing to read: the next read returns 0 (EOF) or an error; either way it
      // is handled above, so just loop.
      if (revents & POLLNVAL) throw new OsError(9);
    }
  }

  /**
   * Writes all of `data` (writes are queued behind each other, never behind a read). EAGAIN waits
   * for POLLOUT; a HUP without POLLOUT (virtio with the host gone) waits for the port's next
   * change and retries, as qemu-ga retries until everything is written (§6) but without its
   * busy loop.
   *
   * @throws OsError on a write error, Error once closed.
   */
  writeAll(data: Uint8Array): Promise<void> {
    const next = this.#writeChain.then(() => this.#writeAll(data));
    this.#writeChain = next.catch(() => {});
    return next;
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    const nr = sys();
    let off = 0;
    while (off < data.length) {
      if (this.#closed) throw new Error("channel closed");
      const n = syscall6Sync(nr.write, this.fd, data.subarray(off), data.length - off);
      if (n > 0n) {
        off += Number(n);
        continue;
      }
      const e = n === 0n ? EAGAIN : Number(-n);
      if (e === EINTR) continue;
      if (e !== EAGAIN) throw new OsError(e);
      const revents = await this.#wait(this.fd, POLLOUT);
      if (revents & POLLNVAL) throw new OsError(9);
      if ((revents & (POLLHUP | POLLERR)) && !(revents & POLLOUT)) {
        // virtio reports POLLHUP (and no POLLOUT) for as long as the host is detached.
        await this.#waitForChange("write");
      }
    }
  }

  /**
   * Stops the stream: pending reads resolve null, pending writes reject, and the fd is closed as
   * soon as no wait is in flight any more (at once if none is).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    signalEventFd(this.#wake);
    this.#closeIfIdle();
  }

  #closeIfIdle(): void {
    if (!this.#closed || this.#waits > 0 || this.fd === -1) return;
    this.#changes.read?.close();
    this.#changes.write?.close();
    closeFd(this.fd);
    closeFd(this.#wake);
    this.fd = -1;
  }
}
