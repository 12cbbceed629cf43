/**
 * Raw mode for the isa-serial channel (§6): glibc's termios functions through FFI, opened lazily
 * in their own small library handle so an agent on virtio never binds them.
 *
 * `struct termios` as glibc declares it on Linux x86-64 and aarch64 (sysdeps/unix/sysv/linux/
 * bits/termios-struct.h; both use the generic layout, NCCS 32):
 *
 * | offset | field                  |
 * | ------ | ---------------------- |
 * | 0      | tcflag_t c_iflag (u32) |
 * | 4      | tcflag_t c_oflag       |
 * | 8      | tcflag_t c_cflag       |
 * | 12     | tcflag_t c_lflag       |
 * | 16     | cc_t c_line (u8)       |
 * | 17     | cc_t c_cc[32]          |
 * | 52     | speed_t c_ispeed (u32) |
 * | 56     | speed_t c_ospeed (u32) |
 *
 * 60 bytes (3 bytes of padding before c_ispeed for its 4-byte alignment). The c_cc indexes
 * VTIME 5 and VMIN 6 and the flag values below are the asm-generic ones, shared by both
 * architectures (x86's termbits.h agrees for everything used here). glibc does the translation
 * to the kernel's smaller `struct termios` itself, which is why the libc functions are called
 * rather than the TCGETS ioctl.
 *
 * The calls are synchronous on the main thread (errno valid, §4.2); none of them can block on an
 * fd opened O_NONBLOCK (TCSANOW, no drain).
 *
 * @module
 */

import { OsError } from "./libc.ts";

/** sizeof(struct termios), glibc Linux x86-64/aarch64. */
export const TERMIOS_SIZE = 60;
/** Offsets into the struct (module comment). */
export const TERMIOS = { iflag: 0, oflag: 4, cflag: 8, lflag: 12, line: 16, cc: 17 } as const;
/** c_cc index of VTIME. */
export const VTIME = 5;
/** c_cc index of VMIN. */
export const VMIN = 6;
/** The 38400 baud speed_t (qemu-ga's GA_CHANNEL_BAUDRATE_DEFAULT). */
export const B38400 = 0o17;
/** tcsetattr: apply now. */
export const TCSANOW = 0;
/** tcflush: discard received, unread input. */
export const TCIFLUSH = 0;

/** c_iflag bits qemu-ga clears on top of cfmakeraw (channel-posix.c). */
const IGNBRK = 0o1;
const BRKINT = 0o2;
const IGNPAR = 0o4;
const PARMRK = 0o10;
const INPCK = 0o20;
const ISTRIP = 0o40;
const INLCR = 0o100;
const IGNCR = 0o200;
const ICRNL = 0o400;
const IXON = 0o2000;
const IXANY = 0o4000;
const IXOFF = 0o10000;
const IMAXBEL = 0o20000;

const SYMBOLS = {
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  cfsetispeed: { parameters: ["buffer", "u32"], result: "i32" },
  cfsetospeed: { parameters: ["buffer", "u32"], result: "i32" },
  tcflush: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function termiosLib(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  const arch = Deno.build.arch;
  if (Deno.build.os !== "linux" || (arch !== "x86_64" && arch !== "aarch64")) {
    throw new Error(`ffi/termios.ts: unsupported platform ${Deno.build.os}/${arch}`);
  }
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

function errnoNow(): number {
  const p = termiosLib().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
}

/** tcgetattr(fd): the raw struct bytes. */
export function tcgetattr(fd: number): Uint8Array<ArrayBuffer> {
  const t = new Uint8Array(TERMIOS_SIZE);
  if (termiosLib().tcgetattr(fd, t) !== 0) throw new OsError(errnoNow());
  return t;
}

/**
 * Puts the tty on `fd` into qemu-ga's isa-serial mode (§6, channel-posix.c): non-canonical, no
 * echo, no translation, 38400 baud, VMIN 1 / VTIME 0, pending input discarded. cfmakeraw does
 * most of it (and 8-bit characters); qemu-ga's extra c_iflag bits and zero c_oflag/c_lflag are
 * applied on top so the result is what qemu-ga sets.
 *
 * qemu-ga ignores the results of these calls; so does this, except tcgetattr failing (then the
 * fd is not a tty and there is nothing to configure): that is reported by returning false.
 */
export function makeRawTty(fd: number): boolean {
  const sym = termiosLib();
  const t = new Uint8Array(TERMIOS_SIZE);
  if (sym.tcgetattr(fd, t) !== 0) return false;
  sym.cfmakeraw(t);
  const v = new DataView(t.buffer);
  const iflag = v.getUint32(TERMIOS.iflag, true) &
    ~(IGNBRK | BRKINT | IGNPAR | PARMRK | INPCK | ISTRIP | INLCR | IGNCR | ICRNL | IXON |
      IXOFF | IXANY | IMAXBEL);
  v.setUint32(TERMIOS.iflag, iflag >>> 0, true);
  v.setUint32(TERMIOS.oflag, 0, true);
  v.setUint32(TERMIOS.lflag, 0, true);
  sym.cfsetispeed(t, B38400);
  sym.cfsetospeed(t, B38400);
  t[TERMIOS.cc + VMIN] = 1;
  t[TERMIOS.cc + VTIME] = 0;
  // Same order as qemu-ga: flush what is waiting (garbage at this point), then apply.
  sym.tcflush(fd, TCIFLUSH);
  sym.tcsetattr(fd, TCSANOW, t);
  return true;
}
