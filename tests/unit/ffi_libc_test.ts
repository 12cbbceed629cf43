/**
 * ffi/libc.ts: constants against the kernel's own view, errno after synchronous calls, exact
 * glibc strerror texts, OsError, lazy dlopen, the mmap/mprotect the trampoline is built with,
 * and agreement between libc's errno and the raw trampoline's `-errno` for the same failures
 * (the two executors of ffi/blocking.ts must report identical errors).
 */

import assert from "node:assert/strict";
import {
  cString,
  EAGAIN,
  EBADF,
  EBUSY,
  EEXIST,
  EINVAL,
  EISDIR,
  ENOENT,
  ENOTTY,
  EOPNOTSUPP,
  errno,
  ESPIPE,
  FIFREEZE,
  FITHAW,
  libc,
  libcCore,
  libcIsOpen,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  OsError,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
  strerror,
} from "../../ffi/libc.ts";
import { AT_FDCWD, SYS, syscall6Sync } from "../../ffi/rawsyscall.ts";
import { childDenoUnavailable } from "../fixtures/emulation.ts";

Deno.test({
  name: "libc is opened lazily, on first use only" +
    (childDenoUnavailable() ? ` [SKIPPED: ${childDenoUnavailable()}]` : ""),
  ignore: childDenoUnavailable() !== undefined,
}, async () => {
  // A fresh isolate: importing the modules must not dlopen (nor mmap a trampoline) anything.
  const url = new URL("../../ffi/libc.ts", import.meta.url).href;
  const others = ["rawsyscall.ts", "blocking.ts", "file.ts", "fsfreeze.ts"]
    .map((f) => `await import(${JSON.stringify(new URL(`../../ffi/${f}`, import.meta.url).href)});`)
    .join(" ");
  const code = `const m = await import(${JSON.stringify(url)}); ${others}
    const before = m.libcIsOpen(); m.O_RDONLY; new m.OsError(2, "x");
    const stillClosed = m.libcIsOpen(); m.strerror(2);
    console.log(JSON.stringify([before, stillClosed, m.libcIsOpen()]));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [false, false, true]);
  libc();
  assert.equal(libcIsOpen(), true);
});

Deno.test("strerror gives glibc's exact texts", () => {
  assert.equal(strerror(0), "Success");
  assert.equal(strerror(2), "No such file or directory");
  assert.equal(strerror(9), "Bad file descriptor");
  assert.equal(strerror(11), "Resource temporarily unavailable");
  assert.equal(strerror(16), "Device or resource busy");
  assert.equal(strerror(21), "Is a directory");
  assert.equal(strerror(22), "Invalid argument");
  assert.equal(strerror(29), "Illegal seek");
  assert.equal(strerror(95), "Operation not supported");
  assert.equal(strerror(4242), "Unknown error 4242");
  assert.equal(strerror(4242), "Unknown error 4242"); // cached path
});

Deno.test("OsError carries errno and the bare strerror text", () => {
  const e = new OsError(ENOENT);
  assert.ok(e instanceof Error);
  assert.equal(e.name, "OsError");
  assert.equal(e.errno, 2);
  assert.equal(e.strerror, "No such file or directory");
  assert.equal(e.message, "No such file or directory");
  const f = new OsError(EISDIR, "given text");
  assert.equal(f.message, "given text");
  assert.equal(f.strerror, "given text");
});

Deno.test("errno is valid right after a failed synchronous call", () => {
  const sys = libc();
  assert.equal(sys.open(cString("/nonexistent/denoga"), O_RDONLY, 0), -1);
  assert.equal(errno(), ENOENT);
  assert.equal(sys.close(-1), -1);
  assert.equal(errno(), EBADF);
});

Deno.test("errno values match the kernel (EEXIST, EISDIR, ESPIPE, EINVAL, EAGAIN)", async () => {
  const sys = libc();
  const dir = await Deno.makeTempDir({ prefix: "denoga-libc-" });
  try {
    const path = cString(`${dir}/f`);
    const fd = sys.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600);
    assert.ok(fd >= 0);
    assert.equal(sys.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600), -1);
    assert.equal(errno(), EEXIST);
    assert.equal(sys.open(cString(dir), O_WRONLY | O_CLOEXEC, 0), -1);
    assert.equal(errno(), EISDIR);
    assert.equal(sys.lseek(fd, -1n, SEEK_SET), -1n);
    assert.equal(errno(), EINVAL);
    sys.close(fd);

    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    const ff = sys.open(cString(`${dir}/fifo`), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    assert.ok(ff >= 0);
    assert.equal(sys.lseek(ff, 0n, SEEK_CUR), -1n);
    assert.equal(errno(), ESPIPE);
    assert.equal(sys.read(ff, new Uint8Array(8), 8n), -1n);
    assert.equal(errno(), EAGAIN);
    sys.close(ff);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(EBUSY, 16);
  assert.equal(EOPNOTSUPP, 95);
});

/** The `flags:` field of /proc/self/fdinfo/<fd> (octal f_flags as the kernel keeps them). */
function fdFlags(fd: number): number {
  const info = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`);
  const m = /^flags:\s+([0-7]+)$/m.exec(info);
  assert.ok(m, info);
  return parseInt(m[1], 8);
}

Deno.test("open flag constants are what the kernel records", async () => {
  const sys = libc();
  const dir = await Deno.makeTempDir({ prefix: "denoga-libc-" });
  try {
    const path = cString(`${dir}/f`);
    const fd = sys.open(path, O_CREAT | O_RDWR | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0o644);
    assert.ok(fd >= 0);
    const flags = fdFlags(fd);
    assert.equal(flags & 3, O_RDWR);
    assert.equal(flags & O_APPEND, O_APPEND);
    assert.equal(flags & O_NONBLOCK, O_NONBLOCK);
    assert.equal(flags & O_CLOEXEC, O_CLOEXEC);
    sys.close(fd);
    const wr = sys.open(path, O_WRONLY | O_TRUNC, 0);
    const wflags = fdFlags(wr);
    assert.equal(wflags & 3, O_WRONLY);
    assert.equal(wflags & O_CLOEXEC, 0);
    assert.equal(wflags & O_NONBLOCK, 0);
    sys.close(wr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lseek takes and returns 64-bit offsets", async () => {
  const sys = libc();
  const dir = await Deno.makeTempDir({ prefix: "denoga-libc-" });
  try {
    const fd = sys.open(cString(`${dir}/sparse`), O_CREAT | O_RDWR | O_CLOEXEC, 0o600);
    const far = 5n * 1024n * 1024n * 1024n + 3n; // beyond 32 bits
    assert.equal(sys.lseek(fd, far, SEEK_SET), far);
    assert.equal(Number(sys.write(fd, new Uint8Array([1]), 1n)), 1);
    assert.equal(sys.lseek(fd, 0n, SEEK_END), far + 1n);
    assert.equal(sys.lseek(fd, -1n, SEEK_CUR), far);
    sys.close(fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FIFREEZE/FITHAW are _IOWR('X', 119/120, int)", () => {
  const iowr = (type: string, nr: number, size: number) =>
    ((3 << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
  assert.equal(FIFREEZE, iowr("X", 119, 4));
  assert.equal(FITHAW, iowr("X", 120, 4));
  assert.equal(FIFREEZE, 0xC0045877);
  assert.equal(FITHAW, 0xC0045878);
});

Deno.test("ioctl with an unknown request on a regular file fails with ENOTTY", async () => {
  const sys = libc();
  const dir = await Deno.makeTempDir({ prefix: "denoga-libc-" });
  try {
    const fd = sys.open(cString(`${dir}/f`), O_CREAT | O_RDWR | O_CLOEXEC, 0o600);
    // 0x5401 = TCGETS: not a tty. Exercises the 3-argument ioctl declaration without risk.
    assert.equal(sys.ioctl(fd, 0x5401n, 0n), -1);
    assert.equal(errno(), 25);
    sys.close(fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cString: strings in modified UTF-8 (U+0000 is C0 80), bytes cut at a NUL", () => {
  assert.deepEqual([...cString("a/é")], [0x61, 0x2f, 0xc3, 0xa9, 0]);
  // A JSON "\u0000" reaches open() as C0 80 in qemu-ga, never as a terminator.
  assert.deepEqual([...cString("ab\0cd")], [0x61, 0x62, 0xc0, 0x80, 0x63, 0x64, 0]);
  assert.deepEqual([...cString("")], [0]);
  assert.deepEqual([...cString(new Uint8Array([0x2f, 0xff, 0, 0x41]))], [0x2f, 0xff, 0]);
});

Deno.test("mmap/mprotect/munmap: the W^X sequence the trampoline uses; MAP_FAILED and errno", () => {
  const sys = libcCore();
  const page = sys.mmap(null, 4096n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  assert.ok(page !== null);
  assert.notEqual(Deno.UnsafePointer.value(page), 0xffff_ffff_ffff_ffffn);
  const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(page, 4));
  view.set([1, 2, 3, 4]);
  assert.equal(sys.mprotect(page, 4096n, PROT_READ | PROT_EXEC), 0);
  assert.equal(new Deno.UnsafePointerView(page).getUint8(3), 4); // still readable
  assert.equal(sys.munmap(page, 4096n), 0);
  // Length 0 is EINVAL; the failure value is MAP_FAILED, (void *)-1.
  const bad = sys.mmap(null, 0n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  assert.equal(Deno.UnsafePointer.value(bad), 0xffff_ffff_ffff_ffffn);
  assert.equal(errno(), EINVAL);
});

Deno.test("the trampoline's -errno equals libc's errno for the same failures", async () => {
  const sys = libc();
  const raw = SYS;
  assert.ok(raw !== undefined);
  const dir = await Deno.makeTempDir({ prefix: "denoga-libc-" });
  try {
    const file = cString(`${dir}/f`);
    const fd = sys.open(file, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600);
    assert.ok(fd >= 0);
    /** [libc call returning -1 or -1n, the same call as a raw system call, expected errno] */
    const cases: [() => number | bigint, () => bigint, number][] = [
      [
        () => sys.open(cString(`${dir}/missing`), O_RDONLY, 0),
        () => syscall6Sync(raw.openat, AT_FDCWD, cString(`${dir}/missing`), O_RDONLY, 0),
        ENOENT,
      ],
      [
        () => sys.open(file, O_CREAT | O_EXCL | O_WRONLY, 0o600),
        () => syscall6Sync(raw.openat, AT_FDCWD, file, O_CREAT | O_EXCL | O_WRONLY, 0o600),
        EEXIST,
      ],
      [
        () => sys.open(cString(dir), O_WRONLY, 0),
        () => syscall6Sync(raw.openat, AT_FDCWD, cString(dir), O_WRONLY, 0),
        EISDIR,
      ],
      [() => sys.close(-1), () => syscall6Sync(raw.close, -1), EBADF],
      [
        () => sys.read(-1, new Uint8Array(1), 1n),
        () => syscall6Sync(raw.read, -1, new Uint8Array(1), 1),
        EBADF,
      ],
      [() => sys.lseek(fd, -1n, SEEK_SET), () => syscall6Sync(raw.lseek, fd, -1, SEEK_SET), EINVAL],
      [() => sys.ioctl(fd, 0x5401n, 0n), () => syscall6Sync(raw.ioctl, fd, 0x5401, 0), ENOTTY],
    ];
    for (const [viaLibc, viaRaw, expected] of cases) {
      assert.equal(Number(viaLibc()), -1);
      assert.equal(errno(), expected);
      assert.equal(viaRaw(), BigInt(-expected));
    }
    sys.close(fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("libc(): a symbol is bound on first use, and binding keeps errno as it was", () => {
  const c = libc();
  assert.equal(c.close(-1), -1);
  assert.equal(errno(), EBADF);
  // Touched nowhere else in this file: its first access binds it, after the failed call.
  assert.equal(typeof c.epoll_create1, "function");
  assert.equal(errno(), EBADF, "binding epoll_create1 left errno alone");
  assert.equal(c.epoll_create1, c.epoll_create1, "bound once");
  assert.deepEqual(Object.keys(c).sort().slice(0, 3), ["bind", "close", "dup2"]);
});
