/**
 * The libc calls of `-d/--daemonize` and the pidfile (lib/daemon.ts): synchronous, on the main
 * thread, so errno is read right after each call (clients-and-peers.md §4.2). Plain libc rather
 * than the raw-syscall trampoline because daemonizing must work where executable memory is
 * refused, and none of these calls can sleep for long.
 *
 * @module
 */

import { arch } from "./arch/mod.ts";
import { cString, errno, libc, OsError } from "./libc.ts";

/** fcntl(2): set a record lock, failing at once if another process holds it. */
const F_SETLK = 6;
/** struct flock l_type: write (exclusive) lock. */
const F_WRLCK = 1;

/**
 * open(2).
 *
 * @throws OsError
 */
export function openFileSync(path: string, flags: number, mode: number): number {
  const fd = libc().open(cString(path), flags, mode);
  if (fd < 0) throw new OsError(errno());
  return fd;
}

/** close(2); errors ignored (nothing useful can be done about them). */
export function closeFileSync(fd: number): void {
  libc().close(fd);
}

/**
 * A write lock on the whole of `fd`'s file (fcntl F_SETLK, l_whence SEEK_SET, start 0, len 0),
 * held until the process exits or the fd is closed.
 *
 * @throws OsError (EAGAIN/EACCES while another process holds a lock).
 */
export function lockWholeFileSync(fd: number): void {
  const layout = arch().layout.flock;
  const lock = new Uint8Array(layout.size); // zeroed: SEEK_SET, start 0, len 0 = whole file
  new DataView(lock.buffer).setInt16(layout.type, F_WRLCK, true);
  if (libc().fcntl(fd, F_SETLK, lock) !== 0) throw new OsError(errno());
}

/**
 * ftruncate(2).
 *
 * @throws OsError
 */
export function truncateFileSync(fd: number, length: bigint): void {
  if (libc().ftruncate(fd, length) !== 0) throw new OsError(errno());
}

/** One write(2) of `data`: the byte count, or -1 on failure. */
export function writeOnceSync(fd: number, data: Uint8Array<ArrayBuffer>): number {
  return Number(libc().write(fd, data, BigInt(data.length)));
}

/** unlink(2); a failure is ignored (the callers clean up on their way out). */
export function unlinkSync(path: string): void {
  libc().unlink(cString(path));
}

/** umask(2): sets the file mode creation mask, returns the previous one. */
export function setUmask(mask: number): number {
  return libc().umask(mask);
}

/** setsid(2); EPERM (already a process group leader) is ignored, as for the other failures. */
export function newSession(): void {
  libc().setsid();
}

/** dup2(2); a failure is ignored (stdio redirection is best effort). */
export function dup2Sync(from: number, to: number): void {
  libc().dup2(from, to);
}
