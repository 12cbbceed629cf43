/**
 * The libc binding: every system call the agent makes through FFI, with constants, errno and
 * strerror.
 *
 * Facts this module relies on (clients-and-peers.md §4.1–4.2):
 * - libc is opened as `libc.so.6`; `libc.so` is a linker script on most distros.
 * - FFI has no variadic functions. `open(2)` and `ioctl(2)` are declared with a fixed third
 *   argument; on x86-64 System V and Linux aarch64 integer variadic arguments travel in the same
 *   registers as fixed ones, so this is ABI-safe for integer/pointer arguments.
 * - errno is thread-local. It is only meaningful right after a *synchronous* FFI call on the same
 *   thread. Never declare these symbols `nonblocking`: calls that may block go through
 *   `ffi/blocking.ts` instead, which either issues them as raw system calls that return the
 *   error number directly (`ffi/rawsyscall.ts`, no errno involved) or runs them synchronously
 *   inside a pool worker that reads errno itself.
 *
 * The library is opened lazily on first use, so importing this module (e.g. for the constants or
 * the `OsError` type) costs nothing. Each isolate (main thread, every pool worker) opens its own
 * handle; dlopen of the already-loaded libc is only a reference-count bump. Binding a symbol is
 * not free (Deno prepares a call path for each one), so what the raw system-call trampoline and
 * error texts need — all an agent needs to answer its first request — is a table of its own
 * ({@link libcCore}), and every other symbol is bound on its own first call ({@link libc}).
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------
// Constants. Values are the Linux "generic" ones shared by x86-64 and aarch64 (asm-generic
// fcntl.h / errno.h / mman-common.h); the library is not opened on other architectures, so a wrong
// value can never reach the kernel. O_DIRECTORY is deliberately absent: it differs between the two (§4.2).
// ---------------------------------------------------------------------------------------------

/** open(2): read only. */
export const O_RDONLY = 0o0;
/** open(2): write only. */
export const O_WRONLY = 0o1;
/** open(2): read and write. */
export const O_RDWR = 0o2;
/** open(2): create if missing. */
export const O_CREAT = 0o100;
/** open(2): with O_CREAT, fail with EEXIST if the file exists. */
export const O_EXCL = 0o200;
/** open(2): do not make a tty the controlling terminal. */
export const O_NOCTTY = 0o400;
/** open(2): truncate to length 0. */
export const O_TRUNC = 0o1000;
/** open(2): every write appends. */
export const O_APPEND = 0o2000;
/** open(2): non-blocking I/O (qemu-ga sets it on every guest-file-open handle, §3.2). */
export const O_NONBLOCK = 0o4000;
/** open(2): close on exec, so guest-exec children never inherit agent fds (§4.2). */
export const O_CLOEXEC = 0o2000000;

/** lseek(2) whence: absolute. */
export const SEEK_SET = 0;
/** lseek(2) whence: relative to the current offset. */
export const SEEK_CUR = 1;
/** lseek(2) whence: relative to the end of file. */
export const SEEK_END = 2;

/** `_IOWR('X', 119, int)`: freeze the filesystem containing the fd (§4.2). */
export const FIFREEZE = 0xC0045877;
/** `_IOWR('X', 120, int)`: thaw it. */
export const FITHAW = 0xC0045878;
/** `_IOWR('X', 121, struct fstrim_range)` (24 bytes on both architectures): discard free space. */
export const FITRIM = 0xC0185879;

/** mmap(2)/mprotect(2): pages may be read. */
export const PROT_READ = 0x1;
/** mmap(2)/mprotect(2): pages may be written. */
export const PROT_WRITE = 0x2;
/** mmap(2)/mprotect(2): pages may be executed. */
export const PROT_EXEC = 0x4;
/** mmap(2): changes are private to this process (copy on write). */
export const MAP_PRIVATE = 0x02;
/** mmap(2): not backed by a file; zero-filled. */
export const MAP_ANONYMOUS = 0x20;

/** Operation not permitted. */
export const EPERM = 1;
/** No such file or directory. */
export const ENOENT = 2;
/** Interrupted system call. */
export const EINTR = 4;
/** Input/output error. */
export const EIO = 5;
/** Bad file descriptor. */
export const EBADF = 9;
/** Resource temporarily unavailable (== EWOULDBLOCK on Linux). */
export const EAGAIN = 11;
/** Cannot allocate memory. */
export const ENOMEM = 12;
/** Permission denied. */
export const EACCES = 13;
/** Device or resource busy (FIFREEZE on an already frozen fs, §3.4). */
export const EBUSY = 16;
/** File exists (exclusive create of an existing file, §3.2). */
export const EEXIST = 17;
/** Not a directory. */
export const ENOTDIR = 20;
/** Is a directory. */
export const EISDIR = 21;
/** Invalid argument (FITHAW on a thawed fs). */
export const EINVAL = 22;
/** Inappropriate ioctl for device. */
export const ENOTTY = 25;
/** No space left on device. */
export const ENOSPC = 28;
/** Illegal seek (lseek on a pipe). */
export const ESPIPE = 29;
/** Read-only file system. */
export const EROFS = 30;
/** Operation not supported (== ENOTSUP on Linux; FIFREEZE on tmpfs/proc, §3.4). */
export const EOPNOTSUPP = 95;

// ---------------------------------------------------------------------------------------------
// The dlopen'd library.
// ---------------------------------------------------------------------------------------------

/**
 * The symbols the raw system-call trampoline is built with (ffi/rawsyscall.ts), and errno and
 * strerror: bound on their own, first (module comment). mmap's offset is off_t, 64-bit on both
 * supported architectures. Its MAP_FAILED is the all-ones pointer.
 */
const CORE_SYMBOLS = {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * Everything else. All synchronous on purpose (module comment). Results typed `isize`/`i64` come
 * back as bigint from Deno; callers convert.
 */
const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  fsync: { parameters: ["i32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  // ioctl whose argument is a struct the kernel reads and writes (FITRIM's fstrim_range).
  ioctl_buffer: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  // statfs, fitrim and clock ops on the worker side (ffi/ops/).
  statfs: { parameters: ["buffer", "buffer"], result: "i32" },
  settimeofday: { parameters: ["buffer", "pointer"], result: "i32" },
  // -d and the pidfile (ffi/daemon.ts). fcntl's third argument is a `struct flock *` there.
  fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  umask: { parameters: ["u32"], result: "u32" },
  setsid: { parameters: [], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  // The chain op's worker half (ffi/ops/chain.ts). getdents64 is a glibc 2.30 addition.
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize", optional: true },
  // The change notifier (ffi/inotify.ts): calls that cannot block, made on the event loop.
  inotify_init1: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The notifier's uevent socket: a netlink address, nothing that can block.
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // glibc extension; used after idle workers are reaped to hand their freed malloc arenas back
  // to the kernel (idle RSS target, ffi/blocking.ts). Optional so a libc without it still loads.
  malloc_trim: { parameters: ["usize"], result: "i32", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The typed symbol set of the opened libc. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
/** The typed symbol set of {@link libcCore}. */
export type LibcCoreSymbols = Deno.DynamicLibrary<typeof CORE_SYMBOLS>["symbols"];

let library: LibcSymbols | undefined;
let core: Deno.DynamicLibrary<typeof CORE_SYMBOLS> | undefined;
let errnoView: Deno.UnsafePointerView | undefined;
let errnoCell: Int32Array | undefined;
/** The single-symbol handles {@link libc} bound, kept open for the life of the isolate. */
const handles: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];

/** Opens libc.so.6 with `symbols`, refusing platforms whose constants differ from those above. */
function open<S extends Deno.ForeignLibraryInterface>(symbols: S): Deno.DynamicLibrary<S> {
  const arch = Deno.build.arch;
  if (Deno.build.os !== "linux" || (arch !== "x86_64" && arch !== "aarch64")) {
    throw new Error(`ffi/libc.ts: unsupported platform ${Deno.build.os}/${arch}`);
  }
  return Deno.dlopen("libc.so.6", symbols);
}

/**
 * The libc symbols, each bound on its first use (per isolate): binding costs Deno a compiled
 * call path per symbol, and the first request that needs FFI (the change notifier of a first
 * guest-get-timezone or -osinfo) would otherwise wait for the whole table (README, "Boot time").
 * Binding keeps errno as it was, so a symbol first touched between a failed call and the read
 * of its errno cannot change it. mmap, mprotect, munmap, errno and strerror are
 * {@link libcCore}'s.
 *
 * @throws Error on an architecture whose open(2) flag values differ from the constants above.
 */
export function libc(): LibcSymbols {
  if (library === undefined) {
    libcCore();
    const lazy: Record<string, unknown> = {};
    for (const name of Object.keys(SYMBOLS) as (keyof typeof SYMBOLS)[]) {
      Object.defineProperty(lazy, name, {
        configurable: true,
        enumerable: true,
        get() {
          const saved = errno();
          const handle = open({ [name]: SYMBOLS[name] });
          handles.push(handle);
          const fn = handle.symbols[name];
          errnoCell![0] = saved;
          Object.defineProperty(lazy, name, { value: fn, enumerable: true });
          return fn;
        },
      });
    }
    library = lazy as LibcSymbols;
  }
  return library;
}

/**
 * The few symbols the raw system-call trampoline is built with (mmap, mprotect, munmap), plus
 * `__errno_location` and `strerror`, opening the library on first use (per isolate).
 *
 * @throws Error on an unsupported platform, as {@link libc}.
 */
export function libcCore(): LibcCoreSymbols {
  core ??= open(CORE_SYMBOLS);
  return core.symbols;
}

/** Whether this isolate has opened libc yet (on the first {@link libc} or {@link libcCore}). */
export function libcIsOpen(): boolean {
  return library !== undefined || core !== undefined;
}

/**
 * errno of the calling thread. Only meaningful immediately after a failed *synchronous* FFI call
 * made on this same thread (§4.2): read it before doing anything else.
 */
export function errno(): number {
  if (errnoView === undefined) {
    // __errno_location() returns the address of this thread's errno; it is stable for the life of
    // the thread, and every isolate (worker) has its own module instance, hence its own view.
    const p = libcCore().__errno_location();
    if (p === null) throw new Error("__errno_location() returned NULL");
    errnoView = new Deno.UnsafePointerView(p);
    errnoCell = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4));
  }
  return errnoView.getInt32(0);
}

const strerrorCache = new Map<number, string>();

/**
 * glibc's strerror text for `n`, exactly (e.g. 2 → "No such file or directory", unknown values →
 * "Unknown error N"). Deno never calls setlocale(), so libc runs in the "C" locale and the texts
 * are the untranslated English ones qemu-ga emits under LANG=C.
 */
export function strerror(n: number): string {
  let text = strerrorCache.get(n);
  if (text === undefined) {
    const p = libcCore().strerror(n);
    text = p === null ? `Unknown error ${n}` : Deno.UnsafePointerView.getCString(p);
    strerrorCache.set(n, text);
  }
  return text;
}

/**
 * A failed system call. `message` is the bare strerror text, because qemu-ga's replies are built
 * as `<context>: <strerror>` (qemu-ga-behaviour.md §3) and the command layer adds the context.
 */
export class OsError extends Error {
  /** The errno value. */
  readonly errno: number;
  /** strerror(errno), identical to `message`. */
  readonly strerror: string;

  /**
   * @param errnoValue the errno of the failed call
   * @param text its strerror text; looked up with {@link strerror} when omitted
   */
  constructor(errnoValue: number, text?: string) {
    const s = text ?? strerror(errnoValue);
    super(s);
    this.name = "OsError";
    this.errno = errnoValue;
    this.strerror = s;
  }
}

const encoder = new TextEncoder();

/**
 * A path in the form an OS call takes it: exact bytes (as read from /proc), or a string from the
 * wire. Strings are encoded as QEMU holds them, in modified UTF-8: U+0000 (`\u0000` in JSON)
 * becomes the two bytes C0 80, so it can never cut a path short.
 */
export type OsPath = string | Uint8Array;

/**
 * An {@link OsPath} as the NUL-terminated C string libc expects. Exact bytes are cut at an
 * embedded NUL, as a C caller would.
 */
export function cString(path: OsPath): Uint8Array<ArrayBuffer> {
  let encoded: Uint8Array;
  if (typeof path === "string") {
    encoded = path.includes("\0") ? modUtf8Nul(path) : encoder.encode(path);
  } else {
    const nul = path.indexOf(0);
    encoded = nul === -1 ? path : path.subarray(0, nul);
  }
  const bytes = new Uint8Array(encoded.length + 1); // zero-filled: the last byte is the NUL
  bytes.set(encoded);
  return bytes;
}

/** UTF-8 with every U+0000 written as C0 80 (QEMU's modified UTF-8). */
function modUtf8Nul(s: string): Uint8Array {
  const parts = s.split("\0").map((p) => encoder.encode(p));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 2 * (parts.length - 1));
  let o = 0;
  parts.forEach((p, i) => {
    if (i > 0) {
      out[o++] = 0xc0;
      out[o++] = 0x80;
    }
    out.set(p, o);
    o += p.length;
  });
  return out;
}

/**
 * glibc `malloc_trim(0)`: return free heap memory of every malloc arena to the kernel. Returns
 * false when the symbol is missing or nothing could be released.
 */
export function mallocTrim(): boolean {
  const trim = libc().malloc_trim;
  return trim !== null && trim(0n) === 1;
}
