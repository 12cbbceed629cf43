/**
 * Raw system calls through a tiny machine-code trampoline, so blocking calls can run off the
 * event loop *without* a Worker.
 *
 * Why: a `nonblocking: true` FFI call runs on one of the runtime's blocking-pool threads and
 * returns a Promise, which is exactly what a call that may sleep in the kernel needs (FIFREEZE,
 * I/O on a frozen or hung filesystem, open() of a FIFO). But through libc it is useless, because
 * libc reports failures in the thread-local errno of that pool thread, which the main thread
 * cannot read afterwards (clients-and-peers.md §4.2). The `syscall` / `svc #0` instruction itself
 * has no such problem: the kernel returns `-errno` in the result register. So instead of libc we
 * call a few bytes of machine code that load the registers, trap into the kernel and return its
 * raw result. No errno, no TLS, no Worker (which costs ~15–20 MiB of RSS that never comes back;
 * see `ffi/blocking.ts`).
 *
 * The code page is built once, lazily, on first use: mmap an anonymous read/write page, copy the
 * code in, then mprotect it read+execute. It is never writable and executable at the same time
 * (W^X). If the system refuses executable memory (SELinux `deny_execmem`, PaX/grsecurity
 * MPROTECT, systemd's MemoryDenyWriteExecute, the prctl MDWE flag) the build fails, the reason is
 * remembered, and {@link trampolineStatus} reports it so callers fall back to the worker pool.
 *
 * Threading caveat: the runtime's blocking pool is small (32 threads in Deno 2.9.6, verified by
 * experiment) and shared with Deno's own async file operations. Every call in flight here holds
 * one of those threads until the kernel returns. Callers that may block indefinitely must cap
 * how many such calls they have in flight (`ffi/blocking.ts` does).
 *
 * Architectures: Linux x86-64 and aarch64 only (the instruction bytes below and the system call
 * numbers of `ffi/arch/` are per architecture). Anything else reports "unavailable".
 *
 * @module
 */

import {
  EACCES,
  EPERM,
  errno,
  libc,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  strerror,
} from "./libc.ts";
import { ARCH, type SyscallNumbers } from "./arch/mod.ts";

/** `openat(2)`'s "relative to the current directory" dirfd (what libc's open() uses). */
export const AT_FDCWD = -100;

/** The system call numbers, per architecture (`ffi/arch/`). */
export type { SyscallNumbers } from "./arch/mod.ts";

/**
 * The trampoline as a C function: `long trampoline(long nr, long a0, …, long a5)`. The kernel's
 * system call ABI puts the number and the arguments in different registers from the C calling
 * convention, so the code only shuffles registers, traps, and returns the kernel's result as is.
 *
 * x86-64 (System V C ABI: rdi, rsi, rdx, rcx, r8, r9, then the stack; kernel: rax = number,
 * rdi, rsi, rdx, r10, r8, r9 = arguments, result in rax; `syscall` clobbers rcx and r11, which
 * are caller-saved anyway). Disassembled with objdump to confirm.
 */
const CODE_X86_64: readonly number[] = [
  ...[0x48, 0x89, 0xf8], //                 mov rax, rdi         number
  ...[0x48, 0x89, 0xf7], //                 mov rdi, rsi         a0
  ...[0x48, 0x89, 0xd6], //                 mov rsi, rdx         a1
  ...[0x48, 0x89, 0xca], //                 mov rdx, rcx         a2
  ...[0x4d, 0x89, 0xc2], //                 mov r10, r8          a3 (REX.WRB)
  ...[0x4d, 0x89, 0xc8], //                 mov r8, r9           a4 (REX.WRB)
  ...[0x4c, 0x8b, 0x4c, 0x24, 0x08], //     mov r9, [rsp+8]      a5: the 7th C argument is on the
  //                                                             stack, above the return address
  ...[0x0f, 0x05], //                       syscall              rax = result or -errno
  ...[0xc3], //                             ret
];

/**
 * aarch64 (AAPCS64: x0–x7; kernel: x8 = number, x0–x5 = arguments, result in x0). Each
 * instruction is one little-endian 32-bit word; `mov xd, xm` is `orr xd, xzr, xm` =
 * 0xAA0003E0 | m << 16 | d. Disassembled with aarch64-linux-gnu-objdump, and run under
 * qemu-aarch64 from a C harness, to confirm.
 */
const CODE_AARCH64: readonly number[] = [
  0xaa0003e8, // mov x8, x0   number
  0xaa0103e0, // mov x0, x1   a0
  0xaa0203e1, // mov x1, x2   a1
  0xaa0303e2, // mov x2, x3   a2
  0xaa0403e3, // mov x3, x4   a3
  0xaa0503e4, // mov x4, x5   a4
  0xaa0603e5, // mov x5, x6   a5 (x6 still a register argument: no stack access needed)
  0xd4000001, // svc #0       x0 = result or -errno
  0xd65f03c0, // ret
].flatMap((word) => [word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24]);

/** The trampoline's FFI signature: nr and six arguments, all machine words. */
const SIGNATURE = {
  parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"],
  result: "i64",
  nonblocking: false,
} as const satisfies Deno.ForeignFunction;
/** The same, called on a runtime blocking-pool thread; the call returns a Promise. */
const SIGNATURE_NONBLOCKING = { ...SIGNATURE, nonblocking: true } as const;
/** What `Deno.UnsafeFnPointer` wants to be handed: a pointer typed with the signature. */
type CodePointer = Deno.PointerObject<Omit<typeof SIGNATURE, "nonblocking">>;

/** mmap/mprotect length: rounded up by the kernel to the real page size (4 KiB–64 KiB). */
const CODE_PAGE = 4096n;
/** mmap's MAP_FAILED, `(void *)-1`. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** The system call numbers of this machine, or undefined when the trampoline does not exist here. */
export const SYS: Readonly<SyscallNumbers> | undefined = ARCH?.sys;

/** Whether the trampoline could be built, and if not why (for logs and the executor choice). */
export type TrampolineStatus = { available: true } | { available: false; reason: string };

/**
 * One argument: an integer (number or bigint, passed as a 64-bit word), `null` (a NULL
 * pointer), or a buffer, passed as the address of its first byte. A buffer is kept referenced
 * until the call settles; it must not be detached, transferred or shrunk meanwhile (the kernel
 * would write into memory that no longer belongs to it).
 */
export type SyscallArg = number | bigint | null | ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

interface Built {
  sync: Deno.UnsafeFnPointer<typeof SIGNATURE>;
  nonblocking: Deno.UnsafeFnPointer<typeof SIGNATURE_NONBLOCKING>;
}

let built: Built | undefined;
let status: TrampolineStatus | undefined;
/** Buffers of calls in flight, one array per call: what keeps them alive until the kernel is done. */
const pinned = new Set<SyscallArg[]>();
let pending = 0;

/**
 * Whether the trampoline exists, building it on the first call (mmap + mprotect, a few µs). The
 * answer is remembered: a refusal is not retried.
 */
export function trampolineStatus(): TrampolineStatus {
  if (status === undefined) status = build();
  return status;
}

/** Shorthand for `trampolineStatus().available`. */
export function trampolineAvailable(): boolean {
  return trampolineStatus().available;
}

/** Calls started with {@link syscall6} whose promise has not settled yet (threads in use). */
export function pendingSyscalls(): number {
  return pending;
}

function build(): TrampolineStatus {
  const arch = Deno.build.arch;
  if (SYS === undefined) {
    return { available: false, reason: `no trampoline for ${Deno.build.os}/${arch}` };
  }
  const code = arch === "x86_64" ? CODE_X86_64 : CODE_AARCH64;
  let sys: ReturnType<typeof libc>;
  try {
    sys = libc();
  } catch (e) {
    return { available: false, reason: `libc: ${e instanceof Error ? e.message : String(e)}` };
  }
  const page = sys.mmap(
    null,
    CODE_PAGE,
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS,
    -1,
    0n,
  );
  if (page === null || Deno.UnsafePointer.value(page) === MAP_FAILED) {
    return { available: false, reason: `mmap: ${strerror(errno())}` };
  }
  // A view aliasing the page (no copy); dropped before the page turns read-only.
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(page, code.length)).set(code);
  // Read+execute, never write+execute. aarch64 has no coherent instruction cache in general;
  // no explicit flush is done because the arm64 kernel cleans a user page to the point of
  // unification when it first becomes executable (__sync_icache_dcache on the PTE change made
  // by this mprotect). Hedge: verified only under qemu-aarch64, which does not model caches.
  if (sys.mprotect(page, CODE_PAGE, PROT_READ | PROT_EXEC) !== 0) {
    const e = errno();
    sys.munmap(page, CODE_PAGE);
    const hint = e === EACCES || e === EPERM
      ? " (executable memory refused: SELinux deny_execmem, MemoryDenyWriteExecute or similar)"
      : "";
    return { available: false, reason: `mprotect(PROT_READ|PROT_EXEC): ${strerror(e)}${hint}` };
  }
  const entry = page as CodePointer;
  const sync = new Deno.UnsafeFnPointer(entry, SIGNATURE);
  // Self-test with a call that can neither fail nor block: wrong bytes or numbers would show
  // here rather than as a wrong result of a real call later.
  const pid = sync.call(BigInt(SYS.getpid), 0n, 0n, 0n, 0n, 0n, 0n);
  if (pid !== BigInt(Deno.pid)) {
    sys.munmap(page, CODE_PAGE);
    return { available: false, reason: `self-test: getpid returned ${pid}, expected ${Deno.pid}` };
  }
  built = {
    sync,
    nonblocking: new Deno.UnsafeFnPointer(entry, SIGNATURE_NONBLOCKING),
  };
  return { available: true };
}

/** The trampoline, or an Error saying why there is none. */
function trampoline(): Built | Error {
  const s = trampolineStatus();
  if (built !== undefined) return built;
  return new Error(`raw system calls unavailable: ${s.available ? "?" : s.reason}`);
}

/**
 * Turns one argument into a machine word; buffers are recorded in `pins` (created on demand) so
 * they outlive the call.
 */
function word(arg: SyscallArg, pins: { list?: SyscallArg[] }): bigint {
  if (typeof arg === "bigint") return arg;
  // BigInt() also rejects what is not an integer (1.5, NaN) with a RangeError: no silent
  // truncation of a bad argument on its way to the kernel.
  if (typeof arg === "number") return BigInt(arg);
  if (arg === null) return 0n;
  if (!ArrayBuffer.isView(arg) && !(arg instanceof ArrayBuffer) && !isSharedArrayBuffer(arg)) {
    throw new TypeError(`system call argument is neither an integer nor a buffer: ${typeof arg}`);
  }
  // A small typed array may live inside the V8 heap, where the garbage collector moves it.
  // Reading `.buffer` makes V8 move its storage to a fixed off-heap allocation first.
  if (ArrayBuffer.isView(arg)) void arg.buffer;
  (pins.list ??= []).push(arg);
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(arg));
}

function isSharedArrayBuffer(arg: unknown): boolean {
  return typeof SharedArrayBuffer === "function" && arg instanceof SharedArrayBuffer;
}

/**
 * System call `nr` with up to six arguments, on a runtime blocking-pool thread: the event loop
 * runs on while the kernel sleeps. Resolves with the kernel's raw result: ≥ 0 on success,
 * `-errno` on failure (e.g. -2n for ENOENT). Never rejects for a failed system call; rejects only
 * when the trampoline is unavailable (see {@link trampolineStatus}).
 *
 * The numbers are in {@link SYS}; arguments are passed as machine words exactly as the kernel
 * takes them (no libc conveniences: e.g. use openat with {@link AT_FDCWD} for open).
 */
export function syscall6(
  nr: number,
  a0: SyscallArg = 0,
  a1: SyscallArg = 0,
  a2: SyscallArg = 0,
  a3: SyscallArg = 0,
  a4: SyscallArg = 0,
  a5: SyscallArg = 0,
): Promise<bigint> {
  const t = trampoline();
  if (t instanceof Error) return Promise.reject(t);
  const pins: { list?: SyscallArg[] } = {};
  let call: Promise<bigint>;
  try {
    call = t.nonblocking.call(
      BigInt(nr),
      word(a0, pins),
      word(a1, pins),
      word(a2, pins),
      word(a3, pins),
      word(a4, pins),
      word(a5, pins),
    );
  } catch (e) {
    return Promise.reject(e); // an argument FFI cannot convert (e.g. a string)
  }
  pending++;
  const list = pins.list;
  if (list !== undefined) pinned.add(list);
  // The Set holds the buffers until the kernel has returned, whatever the caller does with the
  // promise: only then may the garbage collector free them.
  return call.finally(() => {
    pending--;
    if (list !== undefined) pinned.delete(list);
  });
}

/**
 * Like {@link syscall6} but synchronous, on the calling (main) thread: only for calls that cannot
 * block (getpid, close of a pipe end, …), where it saves the thread hand-off (about 2 µs instead
 * of about 10 µs). A call that sleeps in the kernel here freezes the whole event loop.
 *
 * @throws Error when the trampoline is unavailable.
 */
export function syscall6Sync(
  nr: number,
  a0: SyscallArg = 0,
  a1: SyscallArg = 0,
  a2: SyscallArg = 0,
  a3: SyscallArg = 0,
  a4: SyscallArg = 0,
  a5: SyscallArg = 0,
): bigint {
  const t = trampoline();
  if (t instanceof Error) throw t;
  const pins: { list?: SyscallArg[] } = {};
  const w0 = word(a0, pins);
  const w1 = word(a1, pins);
  const w2 = word(a2, pins);
  const w3 = word(a3, pins);
  const w4 = word(a4, pins);
  const w5 = word(a5, pins);
  const list = pins.list;
  if (list === undefined) return t.sync.call(BigInt(nr), w0, w1, w2, w3, w4, w5);
  // Referenced from module state across the call, so no optimisation can consider the buffers
  // dead while the kernel uses them (their memory may be freed by a background GC thread).
  pinned.add(list);
  try {
    return t.sync.call(BigInt(nr), w0, w1, w2, w3, w4, w5);
  } finally {
    pinned.delete(list);
  }
}
