/**
 * ffi/rawsyscall.ts: the machine-code trampoline against the real kernel. Exact negative errnos,
 * 64-bit words, all six arguments (the sixth travels on the stack on x86-64), buffers as
 * pointers, and the point of it all: a call sleeping in the kernel holds neither the event loop
 * nor other calls, and returns when the other end acts. Plus the refusal path (no executable
 * memory) in a subprocess.
 */

import assert from "node:assert/strict";
import {
  AT_FDCWD,
  pendingSyscalls,
  SYS,
  syscall6,
  syscall6Sync,
  trampolineAvailable,
  trampolineStatus,
} from "../../ffi/rawsyscall.ts";
import {
  cString,
  EAGAIN,
  EBADF,
  EEXIST,
  EINVAL,
  EISDIR,
  ENOENT,
  ENOTTY,
  ESPIPE,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  SEEK_END,
  SEEK_SET,
} from "../../ffi/libc.ts";
import { mdweUnsupported } from "../fixtures/emulation.ts";
import { track, until } from "../fixtures/wait.ts";

/** Calls only these tests need, per architecture (kernel uapi headers, like ffi/rawsyscall.ts). */
const EXTRA = Deno.build.arch === "x86_64"
  ? { pipe2: 293, copyFileRange: 326 }
  : { pipe2: 59, copyFileRange: 285 };

const enc = new TextEncoder();
const dec = new TextDecoder();

function sys(): NonNullable<typeof SYS> {
  assert.ok(SYS !== undefined, `no system call numbers for ${Deno.build.arch}`);
  return SYS;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denoga-raw-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A blocking pipe (no O_NONBLOCK), as [read end, write end]. */
async function pipe(flags = O_CLOEXEC): Promise<[number, number]> {
  const fds = new Int32Array(2);
  assert.equal(await syscall6(EXTRA.pipe2, fds, flags), 0n);
  return [fds[0], fds[1]];
}

async function openat(path: string, flags: number, mode = 0): Promise<bigint> {
  return await syscall6(sys().openat, AT_FDCWD, cString(path), flags, mode);
}

Deno.test("the trampoline builds here and passes its getpid self-test", async () => {
  assert.deepEqual(trampolineStatus(), { available: true });
  assert.equal(trampolineAvailable(), true);
  assert.equal(syscall6Sync(sys().getpid), BigInt(Deno.pid));
  assert.equal(await syscall6(sys().getpid), BigInt(Deno.pid));
  assert.equal(pendingSyscalls(), 0);
});

Deno.test("errors come back as exact negative errnos", async () => {
  const s = sys();
  await withTempDir(async (dir) => {
    assert.equal(await openat(`${dir}/missing`, O_RDONLY), BigInt(-ENOENT)); // -2
    assert.equal(await syscall6(s.read, 1_000_000, new Uint8Array(4), 4), BigInt(-EBADF)); // -9
    assert.equal(await syscall6(s.close, -1), BigInt(-EBADF));
    assert.equal(syscall6Sync(s.close, -1), BigInt(-EBADF));
    assert.equal(await openat(dir, O_WRONLY | O_CLOEXEC), BigInt(-EISDIR));

    const fd = await openat(`${dir}/f`, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600);
    assert.ok(fd >= 0n);
    assert.equal(
      await openat(`${dir}/f`, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600),
      BigInt(-EEXIST),
    );
    assert.equal(await syscall6(s.lseek, fd, -1, SEEK_SET), BigInt(-EINVAL));
    assert.equal(await syscall6(s.ioctl, fd, 0x5401, 0), BigInt(-ENOTTY)); // TCGETS: not a tty
    assert.equal(await syscall6(s.close, fd), 0n);

    const [r, w] = await pipe(O_CLOEXEC | O_NONBLOCK);
    assert.equal(await syscall6(s.lseek, r, 0, SEEK_SET), BigInt(-ESPIPE));
    assert.equal(await syscall6(s.read, r, new Uint8Array(8), 8), BigInt(-EAGAIN));
    await syscall6(s.close, r);
    await syscall6(s.close, w);
  });
});

Deno.test("results and arguments are full 64-bit words; fchmod and fsync work", async () => {
  const s = sys();
  await withTempDir(async (dir) => {
    const fd = await openat(`${dir}/sparse`, O_CREAT | O_RDWR | O_CLOEXEC, 0o600);
    const far = 5n * 1024n * 1024n * 1024n + 3n; // beyond 32 bits
    assert.equal(await syscall6(s.lseek, fd, far, SEEK_SET), far);
    assert.equal(await syscall6(s.write, fd, enc.encode("x"), 1), 1n);
    assert.equal(await syscall6(s.lseek, fd, 0, SEEK_END), far + 1n);
    assert.equal(await syscall6(s.fchmod, fd, 0o640), 0n);
    assert.equal(await syscall6(s.fsync, fd), 0n);
    assert.equal(await syscall6(s.close, fd), 0n);
    const st = await Deno.stat(`${dir}/sparse`);
    assert.equal(BigInt(st.size), far + 1n);
    assert.equal(st.mode! & 0o777, 0o640);
  });
});

Deno.test("all six arguments reach the kernel (copy_file_range), async and sync", async () => {
  const s = sys();
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/src`, "0123456789abcdef");
    const src = await openat(`${dir}/src`, O_RDONLY | O_CLOEXEC);
    const dst = await openat(`${dir}/dst`, O_CREAT | O_RDWR | O_CLOEXEC, 0o600);
    const offIn = new BigInt64Array([4n]);
    const offOut = new BigInt64Array([2n]);
    // copy_file_range(fd_in, *off_in, fd_out, *off_out, len, flags): a5 = flags is the 7th C
    // argument of the trampoline, read from the stack on x86-64. Non-zero flags are EINVAL.
    const cfr = EXTRA.copyFileRange;
    assert.equal(await syscall6(cfr, src, offIn, dst, offOut, 5, 1), BigInt(-EINVAL));
    assert.equal(syscall6Sync(cfr, src, offIn, dst, offOut, 5, 1), BigInt(-EINVAL));
    assert.equal(await syscall6(cfr, src, offIn, dst, offOut, 5, 0), 5n);
    assert.deepEqual([offIn[0], offOut[0]], [9n, 7n]); // the kernel updated both offsets
    assert.equal(syscall6Sync(cfr, src, offIn, dst, offOut, 3, 0), 3n);
    await syscall6(s.close, src);
    await syscall6(s.close, dst);
    assert.equal(await Deno.readTextFile(`${dir}/dst`), "\0\0" + "45678" + "9ab");
  });
});

Deno.test("buffers are passed as the address of their first byte, views included", async () => {
  const s = sys();
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "ABCDEFGH");
    const fd = await openat(`${dir}/f`, O_RDONLY | O_CLOEXEC);
    const backing = new ArrayBuffer(10);
    assert.equal(await syscall6(s.read, fd, new Uint8Array(backing, 3, 4), 4), 4n);
    assert.deepEqual([...new Uint8Array(backing)], [0, 0, 0, 65, 66, 67, 68, 0, 0, 0]);
    const small = new Uint8Array(2); // small enough to start inside the V8 heap
    assert.equal(await syscall6(s.read, fd, small, 2), 2n);
    assert.equal(dec.decode(small), "EF");
    const dv = new DataView(new ArrayBuffer(4), 1);
    assert.equal(syscall6Sync(s.read, fd, dv, 2), 2n);
    assert.equal(dec.decode(new Uint8Array(dv.buffer, 1, 2)), "GH");
    assert.equal(await syscall6(s.read, fd, null, 0), 0n); // EOF, NULL buffer
    await syscall6(s.close, fd);
  });
});

Deno.test("a read blocked on a pipe stops neither timers nor other calls, and is released", async () => {
  const s = sys();
  const [r, w] = await pipe();
  const buf = new Uint8Array(64);
  const read = track(syscall6(s.read, r, buf, buf.length));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    await until(() => ticks >= 10, "timers to fire while the read sleeps");
    for (let i = 0; i < 20; i++) assert.equal(await syscall6(s.getpid), BigInt(Deno.pid));
    assert.equal(read.settled(), false);
    assert.equal(pendingSyscalls(), 1);
  } finally {
    clearInterval(timer);
  }
  // The other end writes: the read returns what was written.
  assert.equal(await syscall6(s.write, w, enc.encode("hello"), 5), 5n);
  assert.equal(await read.p, 5n);
  assert.equal(dec.decode(buf.subarray(0, 5)), "hello");

  // The other end closes: a blocked read returns 0 (EOF).
  const again = track(syscall6(s.read, r, buf, buf.length));
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(again.settled(), false);
  assert.equal(await syscall6(s.close, w), 0n);
  assert.equal(await again.p, 0n);
  assert.equal(await syscall6(s.close, r), 0n);
  assert.equal(pendingSyscalls(), 0);
});

Deno.test("open of a FIFO without O_NONBLOCK sleeps until a writer opens it", async () => {
  const s = sys();
  await withTempDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success);
    const open = track(openat(fifo, O_RDONLY | O_CLOEXEC));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await until(() => ticks >= 10, "timers to fire while open() sleeps");
    } finally {
      clearInterval(timer);
    }
    assert.equal(open.settled(), false);
    const writer = await Deno.open(fifo, { write: true }); // a reader is waiting: no block
    const fd = await open.p;
    assert.ok(fd >= 0n);
    await writer.write(enc.encode("ping"));
    const buf = new Uint8Array(8);
    assert.equal(await syscall6(s.read, fd, buf, 8), 4n);
    writer.close();
    assert.equal(await syscall6(s.close, fd), 0n);
  });
});

Deno.test("bad arguments reject (async) or throw (sync) before any system call", async () => {
  const s = sys();
  await assert.rejects(syscall6(s.close, 1.5), RangeError);
  await assert.rejects(syscall6(s.close, "3" as unknown as number), TypeError);
  assert.throws(() => syscall6Sync(s.close, Number.NaN), RangeError);
  assert.equal(pendingSyscalls(), 0);
});

Deno.test({
  name: "no executable memory: unavailable with the reason; calls reject, sync calls throw" +
    (mdweUnsupported() ? ` [SKIPPED: ${mdweUnsupported()}]` : ""),
  ignore: mdweUnsupported() !== undefined,
  async fn() {
    const url = new URL("../../ffi/rawsyscall.ts", import.meta.url).href;
    // prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): from now on mprotect(PROT_EXEC) is refused.
    // V8 then needs --jitless (its JIT would be refused executable memory as well).
    const code = `
      const lib = Deno.dlopen("libc.so.6", {
        prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      });
      if (lib.symbols.prctl(65, 1n, 0n, 0n, 0n) !== 0) throw new Error("PR_SET_MDWE failed");
      const m = await import(${JSON.stringify(url)});
      const status = m.trampolineStatus();
      const rejected = await m.syscall6(m.SYS.getpid).then(() => "resolved", (e) => e.message);
      let thrown = "returned";
      try { m.syscall6Sync(m.SYS.getpid); } catch (e) { thrown = e.message; }
      console.log(JSON.stringify({ status, again: m.trampolineStatus(), rejected, thrown }));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", "--v8-flags=--jitless", code],
      stdout: "piped",
      stderr: "piped", // Deno's own "Failed to compile FFI turbocall" notices land here
    }).output();
    const text = dec.decode(out.stdout);
    assert.ok(out.success, text + dec.decode(out.stderr));
    const r = JSON.parse(text);
    assert.equal(r.status.available, false);
    assert.match(r.status.reason, /^mprotect\(PROT_READ\|PROT_EXEC\): Permission denied/);
    assert.deepEqual(r.again, r.status, "the refusal is remembered");
    assert.match(r.rejected, /^raw system calls unavailable: mprotect/);
    assert.match(r.thrown, /^raw system calls unavailable: mprotect/);
  },
});
