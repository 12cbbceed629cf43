/**
 * The syscall chain (ffi/rawsyscall.ts `syscallChain`) and the chain op over it
 * (ffi/ops/chain.ts, ffi/sysfs.ts `lookUp`) on both executors, over files the test lays out in a
 * temp dir: exact contents, link targets and listings, the errno of the call that failed,
 * `incomplete` where one call cannot answer exactly, and no fd left open.
 */

import assert from "node:assert/strict";
import {
  addressOf,
  CHAIN_A0_FROM,
  CHAIN_STEP_WORDS,
  chainRetOffset,
  SYS,
  syscallChain,
  trampolineAvailable,
} from "../../ffi/rawsyscall.ts";
import { cString, EBADF, EINVAL, EISDIR, ENOENT, ENOTDIR } from "../../ffi/libc.ts";
import { type ChainAnswer, lookUp } from "../../ffi/sysfs.ts";
import { statfs } from "../../ffi/statfs.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";

const text = (a: ChainAnswer) => new TextDecoder().decode(a.data);

/** A temp dir with a file, an empty file, a long file, links, a directory and an empty one. */
async function withTree(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denoga-chain-" });
  try {
    await Deno.writeTextFile(`${dir}/uevent`, "MAJOR=7\nMINOR=0\nDEVNAME=loop0\n");
    await Deno.writeTextFile(`${dir}/empty`, "");
    await Deno.writeFile(`${dir}/long`, new Uint8Array(5000).fill(65));
    await Deno.symlink("../../devices/virtual/block/loop0", `${dir}/link`);
    await Deno.mkdir(`${dir}/d`);
    await Deno.mkdir(`${dir}/d0`);
    for (const name of ["a", "bb", "ccc"]) await Deno.writeTextFile(`${dir}/d/${name}`, "");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function openFds(): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir("/proc/self/fd")) n++;
  return n;
}

Deno.test({
  name: "syscall chain: a0 from an earlier step, failures skip their dependants",
  ignore: !trampolineAvailable(),
  fn: async () => {
    const sys = SYS!;
    const from = (step: number) => BigInt(CHAIN_A0_FROM | (chainRetOffset(step) << 8));
    const path = cString("/proc/self/stat");
    const missing = cString("/nonexistent/denoga-chain");
    const buf = new Uint8Array(1024);
    const steps = new BigInt64Array(7 * CHAIN_STEP_WORDS);
    const rows = [
      [sys.openat, -100n, addressOf(path), 0n],
      [sys.read, 0n, addressOf(buf), 1024n, 0n, 0n, 0n, from(0)],
      [sys.close, 0n, 0n, 0n, 0n, 0n, 0n, from(0)],
      [sys.openat, -100n, addressOf(missing), 0n],
      [sys.read, 0n, addressOf(buf), 1024n, 0n, 0n, 0n, from(3)],
      [sys.close, 0n, 0n, 0n, 0n, 0n, 0n, from(3)],
      [sys.close, -1n],
    ];
    rows.forEach((r, i) => steps.set(r.map(BigInt), i * CHAIN_STEP_WORDS));
    const last = await syscallChain(steps, rows.length, [path, missing, buf]);
    const ret = rows.map((_, i) => steps[i * CHAIN_STEP_WORDS + 8]);
    assert.ok(ret[0] >= 0n, "openat succeeded");
    assert.ok(ret[1] > 0n, "read through the substituted fd");
    assert.match(new TextDecoder().decode(buf.subarray(0, Number(ret[1]))), /^\d+ \(/);
    assert.equal(ret[2], 0n, "close of that fd");
    assert.deepEqual(ret.slice(3, 6), [-BigInt(ENOENT), -BigInt(ENOENT), -BigInt(ENOENT)]);
    assert.equal(ret[6], -BigInt(EBADF));
    assert.equal(last, -BigInt(EBADF), "returns the last result");
    assert.equal(await syscallChain(steps, 0, []), 0n, "no steps");
  },
});

for (const ex of EXECUTORS) {
  Deno.test(`lookUp: reads, link reads, listings and statfs in item order [${ex}]`, () =>
    usingExecutor(ex, () =>
      withTree(async (dir) => {
        const [uevent, empty, self, listed, none, fs, byteLink] = await lookUp([
          { kind: "read", path: `${dir}/uevent` },
          { kind: "read", path: `${dir}/empty` },
          { kind: "readlink", path: `${dir}/link` },
          { kind: "list", path: `${dir}/d` },
          { kind: "list", path: `${dir}/d0` },
          { kind: "statfs", path: dir },
          { kind: "readlink", path: new TextEncoder().encode(`${dir}/link`) },
        ]);
        assert.equal(text(uevent), "MAJOR=7\nMINOR=0\nDEVNAME=loop0\n");
        assert.equal(uevent.errno, 0);
        assert.equal(empty.data?.byteLength, 0);
        assert.equal(text(self), "../../devices/virtual/block/loop0");
        assert.equal(text(byteLink), "../../devices/virtual/block/loop0");
        // getdents order, as Deno.readDir (the os facet's readDir) reports it.
        const order: string[] = [];
        for await (const e of Deno.readDir(`${dir}/d`)) order.push(e.name);
        assert.deepEqual(listed.names, order);
        assert.deepEqual(none.names, []);
        // Free counts move while other work writes to the same filesystem: compare the rest.
        const stable = (r: typeof fs.statfs) =>
          r?.ok ? { type: r.type, bsize: r.bsize, frsize: r.frsize, blocks: r.blocks } : r;
        assert.deepEqual(stable(fs.statfs), stable(await statfs(dir)));
      })));

  Deno.test(`lookUp: the errno of the call that failed; incomplete answers [${ex}]`, () =>
    usingExecutor(ex, () =>
      withTree(async (dir) => {
        const answers = await lookUp([
          { kind: "read", path: `${dir}/missing` },
          { kind: "read", path: `${dir}/d` },
          { kind: "readlink", path: `${dir}/uevent` },
          { kind: "list", path: `${dir}/uevent` },
          { kind: "statfs", path: `${dir}/missing` },
          { kind: "read", path: `${dir}/long` },
          { kind: "read", path: `${dir}/long`, size: 5000 },
          { kind: "read", path: `${dir}/long`, size: 4999 },
        ]);
        const errnos = answers.slice(0, 4).map((a) => [a.errno, a.strerror]);
        assert.deepEqual(errnos, [
          [ENOENT, "No such file or directory"],
          [EISDIR, "Is a directory"],
          [EINVAL, "Invalid argument"],
          [ENOTDIR, "Not a directory"],
        ]);
        assert.deepEqual(answers[4].statfs, {
          ok: false,
          errno: ENOENT,
          strerror: "No such file or directory",
        });
        assert.deepEqual(answers[5], { errno: 0, incomplete: true });
        assert.equal(answers[6].data?.byteLength, 5000, "exactly the buffer: still the end");
        assert.deepEqual(answers[7], { errno: 0, incomplete: true });
      })));

  Deno.test(`lookUp: a directory beyond one getdents call is incomplete [${ex}]`, () =>
    usingExecutor(ex, () =>
      withTree(async (dir) => {
        await Deno.mkdir(`${dir}/big`);
        for (let i = 0; i < 200; i++) {
          await Deno.writeTextFile(`${dir}/big/${String(i).padStart(200, "x")}`, "");
        }
        const [big] = await lookUp([{ kind: "list", path: `${dir}/big` }]);
        assert.deepEqual(big, { errno: 0, incomplete: true });
      })));

  Deno.test(`lookUp: every fd opened is closed [${ex}]`, () =>
    usingExecutor(ex, () =>
      withTree(async (dir) => {
        const items = Array.from({ length: 40 }, (_, i) => ({
          kind: i % 2 === 0 ? "read" as const : "list" as const,
          path: i % 2 === 0 ? `${dir}/uevent` : `${dir}/d`,
        }));
        await lookUp(items); // a first run starts what the executor keeps (a worker's fds)
        const before = await openFds();
        for (let i = 0; i < 5; i++) await lookUp(items);
        assert.ok(await openFds() <= before + 2, "fds leaked");
      })));
}
