/**
 * ffi/file.ts and the executors behind it (ffi/blocking.ts: the raw system-call trampoline of
 * ffi/rawsyscall.ts, and the worker pool of ffi/syscall_worker.ts): fread/fwrite semantics,
 * errors as OsError with glibc texts, buffer ownership, and the executors' guarantees (a stuck
 * call never blocks others, queueing at the cap, failures isolated; for workers also idle reaping
 * and load failures). Every file case runs once per executor; the choice of executor (environment
 * variable, automatic fallback when executable memory is refused) is tested in subprocesses.
 */

import assert from "node:assert/strict";
import { fileSyscalls as f } from "../../ffi/file.ts";
import {
  type BlockingRequest,
  blockingStats,
  configurePool,
  EXECUTOR_ENV,
  type ExecutorKind,
  executorStatus,
  poolOptions,
  poolStats,
  runBlocking,
  setExecutor,
  shutdown,
} from "../../ffi/blocking.ts";
import { pendingSyscalls } from "../../ffi/rawsyscall.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";
import {
  EAGAIN,
  EBADF,
  EEXIST,
  EINVAL,
  EISDIR,
  ENOENT,
  ESPIPE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  OsError,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from "../../ffi/libc.ts";
import { childDenoUnavailable, mdweUnsupported } from "../fixtures/emulation.ts";
import { track, until } from "../fixtures/wait.ts";

/** guest-file-open's extra flags (qemu-ga-behaviour.md §3.2). */
const QGA = O_NOCTTY | O_NONBLOCK | O_CLOEXEC;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denoga-file-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejectsOs(p: Promise<unknown>, errno: number, text: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OsError, String(e));
    assert.equal(e.errno, errno);
    assert.equal(e.message, text);
    return true;
  });
}

async function mkfifo(path: string): Promise<void> {
  const out = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(out.success, "mkfifo failed");
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Registers `fn` once per executor, forced for the test's duration (tests/fixtures/executors.ts). */
function testBoth(name: string, fn: (executor: ExecutorKind) => Promise<void>): void {
  for (const executor of EXECUTORS) {
    Deno.test(`${name} [${executor}]`, () => usingExecutor(executor, () => fn(executor)));
  }
}

/** Open fds of this process (to prove one was closed). */
function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

testBoth("read: fread semantics for eof, exact-size reads and count 0", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/hello`, "hello, world!\n"); // 14 bytes
    const fd = await f.open(`${dir}/hello`, O_RDONLY | QGA, 0);
    try {
      const all = await f.read(fd, 4096);
      assert.equal(dec.decode(all.data), "hello, world!\n");
      assert.equal(all.eof, true);
      // Small file, big count: only what is needed is allocated.
      assert.equal(all.data.buffer.byteLength, 14);

      assert.equal(await f.lseek(fd, 0n, SEEK_SET), 0n);
      const exact = await f.read(fd, 14); // exactly the rest: no extra read, so no eof
      assert.equal(exact.data.length, 14);
      assert.equal(exact.eof, false);
      const after = await f.read(fd, 10);
      assert.equal(after.data.length, 0);
      assert.equal(after.eof, true);

      const zero = await f.read(fd, 0);
      assert.deepEqual(zero, { data: new Uint8Array(0), eof: false });

      assert.equal(await f.lseek(fd, 7n, SEEK_SET), 7n);
      const part = await f.read(fd, 5);
      assert.equal(dec.decode(part.data), "world");
      assert.equal(part.eof, false);
      assert.equal(await f.lseek(fd, 0n, SEEK_CUR), 12n); // unbuffered: fd offset == position
    } finally {
      await f.close(fd);
    }
  });
});

testBoth("read: large files grow the buffer and return exactly the data", async () => {
  await withTempDir(async (dir) => {
    const size = 3 * 1024 * 1024 + 12345;
    const content = new Uint8Array(size);
    for (let i = 0; i < size; i++) content[i] = (i * 31 + 7) & 0xff;
    await Deno.writeFile(`${dir}/big`, content);
    const fd = await f.open(`${dir}/big`, O_RDONLY | QGA, 0);
    try {
      const r = await f.read(fd, 48 * 1024 * 1024);
      assert.equal(r.eof, true);
      assert.equal(r.data.length, size);
      assert.equal(r.data.buffer.byteLength, size); // trimmed, no slack kept
      assert.deepEqual(r.data, content);

      // A count smaller than the file, crossing several growth steps.
      await f.lseek(fd, 0n, SEEK_SET);
      const c = 1_000_003;
      const r2 = await f.read(fd, c);
      assert.equal(r2.eof, false);
      assert.deepEqual(r2.data, content.subarray(0, c));
    } finally {
      await f.close(fd);
    }
  });
});

testBoth(
  "write: loops until all is written; whole buffers move, sub-views are copied",
  async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/out`;
      const fd = await f.open(path, O_WRONLY | O_CREAT | O_TRUNC | QGA, 0o600);
      try {
        const size = 8 * 1024 * 1024 + 1;
        const data = new Uint8Array(size);
        for (let i = 0; i < size; i++) data[i] = i & 0xff;
        const expected = data.slice();
        assert.equal(await f.write(fd, data), size);
        assert.equal(data.byteLength, 0, "a whole buffer is transferred (detached here)");

        const backing = enc.encode("xxABCyy");
        const view = backing.subarray(2, 5);
        assert.equal(await f.write(fd, view), 3);
        assert.equal(dec.decode(backing), "xxABCyy", "a sub-view's buffer is left intact");
        assert.equal(await f.write(fd, new Uint8Array(0)), 0);

        const got = await Deno.readFile(path);
        assert.equal(got.length, size + 3);
        assert.deepEqual(got.subarray(0, size), expected);
        assert.equal(dec.decode(got.subarray(size)), "ABC");
      } finally {
        await f.close(fd);
      }
    });
  },
);

testBoth("append mode and read/write on one fd", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/log`;
    await Deno.writeTextFile(path, "one\n");
    const fd = await f.open(path, O_RDWR | O_APPEND | QGA, 0);
    try {
      await f.write(fd, enc.encode("two\n"));
      assert.equal(await f.lseek(fd, 0n, SEEK_SET), 0n);
      assert.equal(dec.decode((await f.read(fd, 100)).data), "one\ntwo\n");
    } finally {
      await f.close(fd);
    }
  });
});

testBoth("errors are OsError with glibc's strerror text", async () => {
  await withTempDir(async (dir) => {
    await rejectsOs(
      f.open(`${dir}/missing`, O_RDONLY | QGA, 0),
      ENOENT,
      "No such file or directory",
    );
    await rejectsOs(f.open(dir, O_WRONLY | QGA, 0), EISDIR, "Is a directory");

    // `r` on a directory opens; reading fails (guest-file-read: "failed to read file: Is a directory").
    const dfd = await f.open(dir, O_RDONLY | QGA, 0);
    await rejectsOs(f.read(dfd, 10), EISDIR, "Is a directory");
    await f.close(dfd);

    await Deno.writeTextFile(`${dir}/ro`, "data");
    const ro = await f.open(`${dir}/ro`, O_RDONLY | QGA, 0);
    await rejectsOs(f.write(ro, enc.encode("x")), EBADF, "Bad file descriptor");
    await rejectsOs(f.lseek(ro, -10n, SEEK_CUR), EINVAL, "Invalid argument");
    assert.equal(await f.lseek(ro, 100n, SEEK_END), 104n); // past EOF is allowed
    await f.close(ro);
    await rejectsOs(f.close(ro), EBADF, "Bad file descriptor");
    await rejectsOs(f.read(ro, 1), EBADF, "Bad file descriptor");
  });
});

testBoth("ftruncate empties a file; a FIFO gives EINVAL (O_TRUNC's no-op there)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/data`;
    await Deno.writeTextFile(path, "data");
    const fd = await f.open(path, O_WRONLY | QGA, 0);
    await f.ftruncate(fd, 0n);
    await f.close(fd);
    assert.equal((await Deno.stat(path)).size, 0);
    await mkfifo(`${dir}/fifo`);
    const fifo = await f.open(`${dir}/fifo`, O_RDONLY | QGA, 0);
    await rejectsOs(f.ftruncate(fifo, 0n), EINVAL, "Invalid argument");
    await f.close(fifo);
  });
});

testBoth("exclusive create then fchmod 0666 ignores the umask (safe_open_or_create)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/new`;
    const old = Deno.umask(0o077);
    try {
      const fd = await f.open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | QGA, 0);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o000);
      await f.fchmod(fd, 0o666);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o666);
      await f.close(fd);
      await rejectsOs(
        f.open(path, O_WRONLY | O_CREAT | O_EXCL | QGA, 0),
        EEXIST,
        "File exists",
      );
      const again = await f.open(path, O_WRONLY | O_TRUNC | QGA, 0); // the second open()
      await f.close(again);
    } finally {
      Deno.umask(old);
    }
  });
});

testBoth("pipes: EAGAIN is an error even after partial data; seek is ESPIPE", async () => {
  await withTempDir(async (dir) => {
    await mkfifo(`${dir}/fifo`);
    const fd = await f.open(`${dir}/fifo`, O_RDWR | QGA, 0);
    try {
      await rejectsOs(f.read(fd, 10), EAGAIN, "Resource temporarily unavailable");
      await f.write(fd, enc.encode("abc"));
      // fread would get 3 bytes, then EAGAIN: ferror() is set and qemu-ga reports the error.
      await rejectsOs(f.read(fd, 10), EAGAIN, "Resource temporarily unavailable");
      await f.write(fd, enc.encode("abc"));
      assert.deepEqual(await f.read(fd, 3), { data: enc.encode("abc"), eof: false });
      await rejectsOs(f.lseek(fd, 0n, SEEK_CUR), ESPIPE, "Illegal seek");
    } finally {
      await f.close(fd);
    }
  });
});

testBoth("a call stuck in the kernel blocks neither the event loop nor other calls", async (ex) => {
  await withTempDir(async (dir) => {
    await mkfifo(`${dir}/fifo`);
    await Deno.writeTextFile(`${dir}/file`, "0123456789");
    // open(O_RDONLY) of a FIFO without O_NONBLOCK sleeps in the kernel until a writer appears.
    const stuck = track(f.open(`${dir}/fifo`, O_RDONLY | O_CLOEXEC, 0));
    await until(() => blockingStats().busy >= 1, "the stuck open to occupy a thread or worker");

    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const fd = await f.open(`${dir}/file`, O_RDONLY | QGA, 0);
      for (let i = 0; i < 20; i++) {
        assert.equal(await f.lseek(fd, BigInt(i % 10), SEEK_SET), BigInt(i % 10));
      }
      await f.lseek(fd, 4n, SEEK_SET);
      assert.equal(dec.decode((await f.read(fd, 3)).data), "456");
      await f.close(fd);
      await until(() => ticks >= 5, "timers to fire");
    } finally {
      clearInterval(timer);
    }
    assert.equal(stuck.settled(), false, "the FIFO open is still blocked");
    assert.equal(blockingStats().busy, 1);
    if (ex === "worker") assert.ok(poolStats().workers >= 2, "other calls ran in another worker");

    // Give the FIFO a writer: the stuck open returns.
    const w = await f.open(`${dir}/fifo`, O_RDWR | QGA, 0);
    const rfd = await stuck.p;
    assert.ok(rfd >= 0);
    await f.close(rfd);
    await f.close(w);
  });
});

testBoth("beyond the cap requests queue, and run when a slot frees up", async (ex) => {
  const saved = poolOptions();
  configurePool(ex === "worker" ? { maxWorkers: 2 } : { maxTrampolineCalls: 2 });
  try {
    await withTempDir(async (dir) => {
      await mkfifo(`${dir}/a`);
      await mkfifo(`${dir}/b`);
      const a = track(f.open(`${dir}/a`, O_RDONLY | O_CLOEXEC, 0));
      const b = track(f.open(`${dir}/b`, O_RDONLY | O_CLOEXEC, 0));
      await until(() => blockingStats().busy === 2, "two stuck calls");
      const noop = track(runBlocking({ op: "noop" }));
      assert.equal(blockingStats().queued, 1);
      if (ex === "worker") assert.equal(poolStats().workers, 2);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(noop.settled(), false, "a queued request waits");

      // Unblock `a` from the main thread directly (the executor is full): Deno.open is async and
      // O_RDWR on a FIFO never blocks.
      const wa = await Deno.open(`${dir}/a`, { read: true, write: true });
      const afd = await a.p;
      await noop.p;
      assert.equal(blockingStats().queued, 0);
      assert.equal(b.settled(), false);
      const wb = await Deno.open(`${dir}/b`, { read: true, write: true });
      const bfd = await b.p;
      await f.close(afd);
      await f.close(bfd);
      wa.close();
      wb.close();
    });
  } finally {
    configurePool(saved);
  }
});

testBoth("a request that cannot be taken (detached buffer) fails alone", async () => {
  const buffer = new ArrayBuffer(8);
  structuredClone(buffer, { transfer: [buffer] }); // detach it
  const write: BlockingRequest = { op: "write", fd: 1, buffer, byteOffset: 0, byteLength: 8 };
  await assert.rejects(runBlocking(write, [buffer]), (e: unknown) => e instanceof Error);
  assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
  assert.equal(blockingStats().busy, 0);
});

testBoth("an exception while executing rejects that call only", async (ex) => {
  const prefix = new RegExp(`^Error: syscall ${ex}: `);
  const bogus = { op: "bogus" } as unknown as BlockingRequest;
  await assert.rejects(runBlocking(bogus), prefix);
  const badPath = { op: "open", path: 42, flags: 0, mode: 0 } as unknown as BlockingRequest;
  await assert.rejects(runBlocking(badPath), prefix);
  const badFd = { op: "close", fd: 1.5 } as unknown as BlockingRequest;
  if (ex === "trampoline") await assert.rejects(runBlocking(badFd), prefix); // BigInt(1.5)
  assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
});

testBoth("shutdown rejects a stuck call and leaves the executor usable", async (ex) => {
  await withTempDir(async (dir) => {
    await mkfifo(`${dir}/fifo`);
    const fdsBefore = openFds();
    const stuck = assert.rejects(
      f.open(`${dir}/fifo`, O_RDONLY | O_CLOEXEC, 0),
      /blocking pool shut down/,
    );
    await until(() => blockingStats().busy >= 1, "the stuck open");
    await shutdown();
    await stuck;
    if (ex === "worker") {
      assert.equal(poolStats().workers, 0);
    } else {
      // The trampoline cannot abandon a thread in a system call: it stays busy until the kernel
      // returns.
      assert.equal(blockingStats().busy, 1);
    }
    // Release the abandoned call (open() returns once a writer shows up).
    const w = await Deno.open(`${dir}/fifo`, { read: true, write: true });
    assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
    if (ex === "trampoline") {
      // The fd the abandoned open returned is closed, not leaked (workers leak it: their
      // terminated isolate never runs JS again).
      await until(() => blockingStats().busy === 0 && pendingSyscalls() === 0, "the release");
      assert.equal(openFds(), fdsBefore + 1); // + the writer `w` only
    }
    w.close();
  });
});

Deno.test("[worker] idle workers are reaped, then spawned again on demand", async () => {
  setExecutor("worker");
  const saved = poolOptions();
  configurePool({ idleTimeoutMs: 30 });
  try {
    await runBlocking({ op: "noop" });
    assert.ok(poolStats().workers >= 1);
    await until(() => poolStats().workers === 0, "idle workers to be reaped");
    const spawned = poolStats().spawned;
    assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
    assert.equal(poolStats().spawned, spawned + 1);
  } finally {
    configurePool(saved);
    setExecutor(undefined);
    await shutdown();
  }
});

Deno.test("[worker] a request that cannot be posted fails alone; the worker is reused", async () => {
  setExecutor("worker");
  try {
    const bad = { op: "noop", oops: () => 1 } as unknown as BlockingRequest;
    await runBlocking({ op: "noop" });
    const spawned = poolStats().spawned;
    await assert.rejects(runBlocking(bad), (e: unknown) => e instanceof Error);
    assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
    assert.equal(poolStats().spawned, spawned);
  } finally {
    setExecutor(undefined);
    await shutdown();
  }
});

Deno.test("[worker] a worker that fails to load fails its requests instead of hanging", async () => {
  // What a `deno compile`d agent built without `--include ffi/syscall_worker.ts` would hit.
  setExecutor("worker");
  const saved = poolOptions();
  await shutdown();
  configurePool({ workerUrl: new URL("./no-such-worker.ts", import.meta.url), maxWorkers: 1 });
  try {
    const calls = [1, 2, 3].map(() => runBlocking({ op: "noop" }));
    for (const call of calls) {
      await assert.rejects(call, /^Error: syscall worker failed: /);
    }
    assert.equal(poolStats().workers, 0);
    assert.equal(poolStats().queued, 0);
  } finally {
    configurePool(saved);
  }
  try {
    assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
  } finally {
    setExecutor(undefined);
    await shutdown();
  }
});

Deno.test("the trampoline is the default executor here; setExecutor overrides it", () => {
  setExecutor(undefined);
  if (Deno.env.get(EXECUTOR_ENV) === undefined) {
    assert.deepEqual(executorStatus(), { requested: "auto", active: "trampoline" });
  }
  setExecutor("worker");
  assert.equal(executorStatus().active, "worker");
  setExecutor(undefined);
});

/** Runs `code` in a fresh `deno eval` with `env` and extra flags; returns its JSON output. */
async function evalJson(code: string, env: Record<string, string>, flags: string[] = []) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", ...flags, code],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `subprocess failed: ${stdout}${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(stdout);
}

/** A subprocess that reads a file through runBlocking and reports the executor used. */
const READ_WITH_EXECUTOR = `
  const b = await import(${JSON.stringify(new URL("../../ffi/blocking.ts", import.meta.url).href)});
  const f = await import(${JSON.stringify(new URL("../../ffi/file.ts", import.meta.url).href)});
  const fd = await f.fileSyscalls.open("/proc/self/stat", 0, 0);
  const { data } = await f.fileSyscalls.read(fd, 1 << 20);
  await f.fileSyscalls.close(fd);
  const status = b.executorStatus();
  const workers = b.poolStats().spawned;
  await b.shutdown();
  console.log(JSON.stringify({ ...status, workers, read: data.length > 0 }));`;

Deno.test({
  name: `${EXECUTOR_ENV} forces an executor; an unknown value is ignored` +
    (childDenoUnavailable() ? ` [SKIPPED: ${childDenoUnavailable()}]` : ""),
  ignore: childDenoUnavailable() !== undefined,
}, async () => {
  const worker = await evalJson(READ_WITH_EXECUTOR, { [EXECUTOR_ENV]: "worker" });
  assert.equal(worker.active, "worker");
  assert.equal(worker.requested, "worker");
  assert.equal(worker.workers, 1);
  assert.equal(worker.read, true);

  const trampoline = await evalJson(READ_WITH_EXECUTOR, { [EXECUTOR_ENV]: "trampoline" });
  assert.deepEqual(trampoline, {
    requested: "trampoline",
    active: "trampoline",
    workers: 0,
    read: true,
  });

  const bogus = await evalJson(READ_WITH_EXECUTOR, { [EXECUTOR_ENV]: "fast" });
  assert.deepEqual(bogus, {
    requested: "auto",
    active: "trampoline",
    reason: `${EXECUTOR_ENV}="fast" ignored`,
    workers: 0,
    read: true,
  });
});

Deno.test({
  name: "executable memory refused: falls back to workers by itself" +
    (mdweUnsupported() ? ` [SKIPPED: ${mdweUnsupported()}]` : ""),
  ignore: mdweUnsupported() !== undefined,
  async fn() {
    // prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) refuses executable memory to this process
    // from then on, as SELinux deny_execmem would. V8 itself then needs --jitless (a JIT needs
    // executable memory too), which is also how Deno would have to run on such a guest.
    const code = `
      const lib = Deno.dlopen("libc.so.6", {
        prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      });
      if (lib.symbols.prctl(65, 1n, 0n, 0n, 0n) !== 0) throw new Error("PR_SET_MDWE failed");
      ${READ_WITH_EXECUTOR}`;
    const r = await evalJson(code, { [EXECUTOR_ENV]: "auto" }, ["--v8-flags=--jitless"]);
    assert.equal(r.requested, "auto");
    assert.equal(r.active, "worker");
    assert.match(r.reason, /^mprotect\(PROT_READ\|PROT_EXEC\): Permission denied \(executable/);
    assert.equal(r.workers, 1);
    assert.equal(r.read, true);

    // Forcing the trampoline there fails every request with the reason instead.
    const forced = `
      const lib = Deno.dlopen("libc.so.6", {
        prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      });
      if (lib.symbols.prctl(65, 1n, 0n, 0n, 0n) !== 0) throw new Error("PR_SET_MDWE failed");
      const b = await import(${
      JSON.stringify(new URL("../../ffi/blocking.ts", import.meta.url).href)
    });
      const e = await b.runBlocking({ op: "noop" }).then(() => "resolved", (e) => e.message);
      console.log(JSON.stringify({ ...b.executorStatus(), e }));`;
    const f2 = await evalJson(forced, { [EXECUTOR_ENV]: "trampoline" }, ["--v8-flags=--jitless"]);
    assert.equal(f2.active, "none");
    assert.match(f2.e, /^trampoline executor forced but mprotect/);
  },
});

testBoth("argument validation happens before any system call", async () => {
  await assert.rejects(f.read(3, -1), RangeError);
  await assert.rejects(f.read(3, 1.5), RangeError);
  await assert.rejects(f.close(-1), RangeError);
  await assert.rejects(f.lseek(2 ** 40, 0n, SEEK_SET), RangeError);
  assert.equal(blockingStats().busy, 0);
});
