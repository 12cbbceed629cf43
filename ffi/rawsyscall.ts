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
 * The same page holds a second routine, the *chain* ({@link syscallChain}): a list of system calls
 * run natively one after another in a single FFI call, an earlier call's result (an fd) feeding
 * a later call's first argument. Many small file look-ups then cost one thread hand-off in all
 * (`ffi/ops/chain.ts`).
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
  libcCore,
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

/**
 * The chain as a C function: `long chain(struct step *steps, long count)`, each step nine
 * machine words `{ nr, a0, a1, a2, a3, a4, a5, flags, ret }` (72 bytes). For each step in turn:
 * when flags bit 0 is set, a0 is replaced by the `ret` word found `flags >> 8` bytes from the
 * start of the array (an earlier step's result: the fd of an openat for its read and close);
 * if that result is negative (the openat failed) the call is skipped and the step's result is
 * that same error. Otherwise it traps into the kernel and stores the raw result in `ret`. Returns
 * the last step's result (0 for no steps). A whole open → read → close sequence, or many, thus
 * costs one FFI call and one thread hand-off instead of one each.
 *
 * x86-64: rbx (current step), r12 (steps left) and r13 (array start) are callee-saved, so pushed;
 * `syscall` clobbers rcx and r11, both reloaded per step. Assembled with GNU as and disassembled
 * with objdump to confirm.
 */
const CHAIN_X86_64: readonly number[] = [
  ...[0x53], //                             push rbx
  ...[0x41, 0x54], //                       push r12
  ...[0x41, 0x55], //                       push r13
  ...[0x48, 0x89, 0xfb], //                 mov rbx, rdi         current step
  ...[0x49, 0x89, 0xfd], //                 mov r13, rdi         array start
  ...[0x49, 0x89, 0xf4], //                 mov r12, rsi         steps left
  ...[0x31, 0xc0], //                       xor eax, eax         result of no steps
  ...[0x4d, 0x85, 0xe4], //           10:   test r12, r12
  ...[0x7e, 0x49], //                       jle 5e               done
  ...[0x48, 0x8b, 0x7b, 0x08], //           mov rdi, [rbx+8]     a0
  ...[0x48, 0x8b, 0x4b, 0x38], //           mov rcx, [rbx+56]    flags
  ...[0xf6, 0xc1, 0x01], //                 test cl, 1
  ...[0x74, 0x16], //                       je 38                a0 as given
  ...[0x48, 0x89, 0xca], //                 mov rdx, rcx
  ...[0x48, 0xc1, 0xea, 0x08], //           shr rdx, 8           byte offset of the source ret
  ...[0x49, 0x8b, 0x7c, 0x15, 0x00], //     mov rdi, [r13+rdx]   a0 = earlier result
  ...[0x48, 0x85, 0xff], //                 test rdi, rdi
  ...[0x79, 0x05], //                       jns 38               a valid fd: make the call
  ...[0x48, 0x89, 0xf8], //                 mov rax, rdi         skipped: its error is the result
  ...[0xeb, 0x19], //                       jmp 51
  ...[0x48, 0x8b, 0x03], //           38:   mov rax, [rbx]       number
  ...[0x48, 0x8b, 0x73, 0x10], //           mov rsi, [rbx+16]    a1
  ...[0x48, 0x8b, 0x53, 0x18], //           mov rdx, [rbx+24]    a2
  ...[0x4c, 0x8b, 0x53, 0x20], //           mov r10, [rbx+32]    a3
  ...[0x4c, 0x8b, 0x43, 0x28], //           mov r8, [rbx+40]     a4
  ...[0x4c, 0x8b, 0x4b, 0x30], //           mov r9, [rbx+48]     a5
  ...[0x0f, 0x05], //                       syscall
  ...[0x48, 0x89, 0x43, 0x40], //     51:   mov [rbx+64], rax    ret
  ...[0x48, 0x83, 0xc3, 0x48], //           add rbx, 72          next step
  ...[0x49, 0xff, 0xcc], //                 dec r12
  ...[0xeb, 0xb2], //                       jmp 10
  ...[0x41, 0x5d], //                 5e:   pop r13
  ...[0x41, 0x5c], //                       pop r12
  ...[0x5b], //                             pop rbx
  ...[0xc3], //                             ret
];

/**
 * aarch64: only caller-saved scratch registers (x9–x13); the kernel preserves every register
 * but x0 across `svc`. Assembled with llvm-mc and disassembled with llvm-objdump to confirm.
 */
const CHAIN_AARCH64: readonly number[] = [
  0xaa0003e9, //       mov x9, x0          current step
  0xaa0003ea, //       mov x10, x0         array start
  0xaa0103eb, //       mov x11, x1         steps left
  0xd2800000, //       mov x0, #0          result of no steps
  0xf100017f, // 10:   cmp x11, #0
  0x5400022d, //       b.le 58             done
  0xf9400520, //       ldr x0, [x9, #8]    a0
  0xf9401d2c, //       ldr x12, [x9, #56]  flags
  0x360000ac, //       tbz w12, #0, 34     a0 as given
  0xd348fd8d, //       lsr x13, x12, #8    byte offset of the source ret
  0xf86d6940, //       ldr x0, [x10, x13]  a0 = earlier result
  0xb6f80040, //       tbz x0, #63, 34     a valid fd: make the call
  0x14000006, //       b 48                skipped: its error is the result
  0xf9400128, // 34:   ldr x8, [x9]        number
  0xa9410921, //       ldp x1, x2, [x9, #16]
  0xa9421123, //       ldp x3, x4, [x9, #32]
  0xf9401925, //       ldr x5, [x9, #48]
  0xd4000001, //       svc #0
  0xf9002120, // 48:   str x0, [x9, #64]   ret
  0x91012129, //       add x9, x9, #72     next step
  0xd100056b, //       sub x11, x11, #1
  0x17ffffef, //       b 10
  0xd65f03c0, // 58:   ret
].flatMap((word) => [word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24]);

/** Where the chain starts in the code page (after the trampoline, cache-line aligned). */
const CHAIN_OFFSET = 64;

/** Words per chain step (`{ nr, a0..a5, flags, ret }`). */
export const CHAIN_STEP_WORDS = 9;
/** Flags bit 0: a0 is an earlier step's result (its ret's byte offset in `flags >> 8`). */
export const CHAIN_A0_FROM = 1;

/** The chain's FFI signature: the steps' address and their count. */
const CHAIN_SIGNATURE = {
  parameters: ["buffer", "i64"],
  result: "i64",
  nonblocking: true,
} as const satisfies Deno.ForeignFunction;
/** The same, synchronous (the build-time self-test only). */
const CHAIN_SIGNATURE_SYNC = { ...CHAIN_SIGNATURE, nonblocking: false } as const;

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
  chain: Deno.UnsafeFnPointer<typeof CHAIN_SIGNATURE>;
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
  const chainCode = arch === "x86_64" ? CHAIN_X86_64 : CHAIN_AARCH64;
  let sys: ReturnType<typeof libcCore>;
  try {
    sys = libcCore();
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
  const view = new Uint8Array(
    Deno.UnsafePointerView.getArrayBuffer(page, CHAIN_OFFSET + chainCode.length),
  );
  view.set(code);
  view.set(chainCode, CHAIN_OFFSET);
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
  const chainEntry = Deno.UnsafePointer.offset(page, CHAIN_OFFSET) as Deno.PointerObject<
    Omit<typeof CHAIN_SIGNATURE, "nonblocking">
  >;
  const chainFault = chainSelfTest(new Deno.UnsafeFnPointer(chainEntry, CHAIN_SIGNATURE_SYNC));
  if (chainFault !== undefined) {
    sys.munmap(page, CODE_PAGE);
    return { available: false, reason: `chain self-test: ${chainFault}` };
  }
  built = {
    sync,
    nonblocking: new Deno.UnsafeFnPointer(entry, SIGNATURE_NONBLOCKING),
    chain: new Deno.UnsafeFnPointer(chainEntry, CHAIN_SIGNATURE),
  };
  return { available: true };
}

/**
 * Runs a chain whose every step is harmless: getpid; getpid with a0 taken from step 0 (the
 * substitution); close(-1), which fails with EBADF; getpid with a0 from that failure (skipped,
 * so its result is the same -EBADF). Returns what went wrong, or undefined.
 */
function chainSelfTest(
  chain: Deno.UnsafeFnPointer<typeof CHAIN_SIGNATURE_SYNC>,
): string | undefined {
  const getpid = BigInt(SYS!.getpid);
  const from = (step: number) => BigInt(CHAIN_A0_FROM | (chainRetOffset(step) << 8));
  const steps = new BigInt64Array(4 * CHAIN_STEP_WORDS);
  steps.set([getpid], 0);
  steps.set([getpid, 0n, 0n, 0n, 0n, 0n, 0n, from(0)], CHAIN_STEP_WORDS);
  steps.set([BigInt(SYS!.close), -1n], 2 * CHAIN_STEP_WORDS);
  steps.set([getpid, 0n, 0n, 0n, 0n, 0n, 0n, from(2)], 3 * CHAIN_STEP_WORDS);
  const last = chain.call(steps, 4n);
  const pid = BigInt(Deno.pid);
  const rets = [0, 1, 2, 3].map((i) => steps[i * CHAIN_STEP_WORDS + 8]);
  const want = [pid, pid, -9n, -9n];
  if (last !== -9n || rets.some((r, i) => r !== want[i])) {
    return `results ${rets.join(",")} (returned ${last}), expected ${want.join(",")}`;
  }
  return undefined;
}

/** Byte offset of step `index`'s `ret` word in a chain's step array. */
export function chainRetOffset(index: number): number {
  return (index * CHAIN_STEP_WORDS + 8) * 8;
}

/**
 * Runs `count` steps of `steps` (layout: {@link CHAIN_STEP_WORDS} words each, see the chain's
 * code above) natively in one call on a runtime blocking-pool thread; each step's raw result
 * (≥ 0, or -errno) lands in its `ret` word. The buffers whose addresses the steps carry must be
 * listed in `buffers`: they are kept referenced until the call settles, and must not be
 * detached or shrunk meanwhile.
 *
 * Rejects only when the trampoline is unavailable.
 */
export function syscallChain(
  steps: BigInt64Array<ArrayBuffer>,
  count: number,
  buffers: readonly (ArrayBuffer | ArrayBufferView)[],
): Promise<bigint> {
  const t = trampoline();
  if (t instanceof Error) return Promise.reject(t);
  if (count * CHAIN_STEP_WORDS > steps.length) {
    return Promise.reject(new RangeError("chain: more steps than the array holds"));
  }
  const list: SyscallArg[] = [steps, ...buffers];
  // Fixed off-heap storage before addresses are taken (see `word`).
  for (const b of list) if (ArrayBuffer.isView(b)) void b.buffer;
  const call = t.chain.call(steps, BigInt(count));
  pending++;
  pinned.add(list);
  return call.finally(() => {
    pending--;
    pinned.delete(list);
  });
}

/**
 * The address of a buffer's first byte, for a chain step's argument; the buffer must be passed
 * in {@link syscallChain}'s `buffers` too.
 */
export function addressOf(buffer: ArrayBuffer | ArrayBufferView): bigint {
  if (ArrayBuffer.isView(buffer)) void buffer.buffer;
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer));
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
