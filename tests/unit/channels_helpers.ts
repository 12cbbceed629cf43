/**
 * Stand-ins for the virtio port and the serial line in channel tests (no real device exists on
 * the build host): socketpairs, FIFOs and pty pairs made with raw system calls, plus the
 * process's CPU time from /proc/self/stat.
 *
 * @module
 */

import { sys as fdSys } from "../../ffi/arch/mod.ts";
import { check, closeFd } from "../../ffi/fdio.ts";
import { cString, O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_RDWR } from "../../ffi/libc.ts";
import { AT_FDCWD, syscall6Sync } from "../../ffi/rawsyscall.ts";

/** AF_UNIX. */
const AF_UNIX = 1;
/** SOCK_STREAM. */
const SOCK_STREAM = 1;
/** `_IOW('T', 0x31, int)`: lock/unlock the pty slave (asm-generic/ioctls.h, both arches). */
const TIOCSPTLCK = 0x40045431;
/** `_IOR('T', 0x30, unsigned int)`: the pty number. */
const TIOCGPTN = 0x80045430;

/** A connected AF_UNIX stream pair, both nonblocking and close-on-exec. */
export function socketPair(): [number, number] {
  const sv = new Int32Array(2);
  check(
    syscall6Sync(fdSys().socketpair, AF_UNIX, SOCK_STREAM | O_NONBLOCK | O_CLOEXEC, 0, sv),
  );
  return [sv[0], sv[1]];
}

/** Opens `path` with raw flags. */
export function openRaw(path: string, flags: number): number {
  return check(syscall6Sync(fdSys().openat, AT_FDCWD, cString(path), flags, 0));
}

/** A pty pair: the master fd (nonblocking) and the slave's path. */
export function openPty(): { master: number; slavePath: string } {
  const master = openRaw("/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  const zero = new Int32Array([0]);
  check(syscall6Sync(fdSys().ioctl, master, TIOCSPTLCK, zero));
  const n = new Uint32Array(1);
  check(syscall6Sync(fdSys().ioctl, master, TIOCGPTN, n));
  return { master, slavePath: `/dev/pts/${n[0]}` };
}

/** write(2) all of `data` to a nonblocking fd synchronously (small data only). */
export function writeSyncAll(fd: number, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let off = 0;
  while (off < bytes.length) {
    off += check(syscall6Sync(fdSys().write, fd, bytes.subarray(off), bytes.length - off));
  }
}

/** read(2) once, synchronously: the bytes, [] on EAGAIN, null at EOF. */
export function readSyncOnce(fd: number, max = 65536): Uint8Array | null {
  const buf = new Uint8Array(max);
  const n = syscall6Sync(fdSys().read, fd, buf, max);
  if (n === -11n) return new Uint8Array(0);
  if (n === 0n) return null;
  return buf.slice(0, check(n));
}

/** Reads from `fd` until `want` bytes arrived (polling every 5 ms, at most `ms`). */
export async function readExactly(fd: number, want: number, ms = 5000): Promise<Uint8Array> {
  const out = new Uint8Array(want);
  let got = 0;
  const deadline = Date.now() + ms;
  while (got < want) {
    const chunk = readSyncOnce(fd, want - got);
    if (chunk === null) throw new Error(`EOF after ${got} of ${want} bytes`);
    out.set(chunk, got);
    got += chunk.length;
    if (chunk.length === 0) {
      if (Date.now() > deadline) throw new Error(`timeout after ${got} of ${want} bytes`);
      await delay(5);
    }
  }
  return out;
}

/** shutdown(fd, SHUT_WR). */
export function shutdownWrite(fd: number): void {
  check(syscall6Sync(fdSys().shutdown, fd, 1));
}

/** close(2). */
export { closeFd };

/** A timer-based delay (tests only: the agent itself avoids timers on idle paths). */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** utime + stime of this process, in clock ticks (normally 10 ms each). */
export function cpuTicks(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  // Fields after the ")" closing the command name: state is field 3; utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

/** Whether `fd` is open in this process. */
export function fdOpen(fd: number): boolean {
  try {
    Deno.readLinkSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}
