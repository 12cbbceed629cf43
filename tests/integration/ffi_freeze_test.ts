/**
 * ffi/fsfreeze.ts against the real kernel, on throw-away loop-device filesystems only
 * (tests/fixtures/loopfs.ts; never `/` or any host mount — vm-and-libvirt-testing.md).
 *
 * Needs root, loop devices, mkfs.ext4 and mkfs.xfs. Without them the tests are ignored with the
 * reason in their names, unless DENOGA_REQUIRE_REAL=1 makes them fail instead.
 *
 * Blocking is proven by observation, not by sleeping: a process (or our own executor thread) is
 * seen in uninterruptible sleep (state D) in /proc while the filesystem is frozen, and it is
 * seen to finish only after the thaw.
 *
 * Every case runs once per executor of ffi/blocking.ts: the raw system-call trampoline (the
 * FIFREEZE sleeps on one of the runtime's blocking threads) and the worker pool (it sleeps on a
 * worker's thread).
 */

import assert from "node:assert/strict";
import { type FreezeOutcome, freezeSyscalls } from "../../ffi/fsfreeze.ts";
import { blockingStats, runBlocking } from "../../ffi/blocking.ts";
import { EBUSY, ENOENT, EOPNOTSUPP } from "../../ffi/libc.ts";
import {
  assertOwnLoopMount,
  type LoopFsType,
  missingRoot,
  realTest,
  realTestIf,
  run,
  withLoopFs,
  withTmpfs,
} from "../fixtures/loopfs.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";
import { procState, steadilyInD, watchThreadInD } from "../fixtures/proc.ts";
import { track, until } from "../fixtures/wait.ts";

/** Best-effort thaw used in `finally`: our FITHAW, then util-linux as a second net. */
async function safetyThaw(mnt: string): Promise<void> {
  await freezeSyscalls.thaw(mnt).catch(() => false);
  await run("fsfreeze", ["-u", mnt]).catch(() => {});
}

const OK: FreezeOutcome = { ok: true };

for (const ex of EXECUTORS) {
  for (const type of ["ext4", "xfs"] as LoopFsType[]) {
    realTest(
      `${type}: FIFREEZE blocks writers until FITHAW; 2nd freeze EBUSY skipped; thaw true, ` +
        `then false [${ex}]`,
      [type],
      () =>
        usingExecutor(ex, async () => {
          await withLoopFs(type, async (mnt) => {
            assertOwnLoopMount(mnt); // the guard: never freeze anything else
            let writer: Deno.ChildProcess | undefined;
            try {
              assert.deepEqual(await freezeSyscalls.freeze(mnt), OK);
              // Already frozen: EBUSY, which qemu-ga skips without counting (§3.4).
              assert.deepEqual(await freezeSyscalls.freeze(mnt), {
                ok: false,
                skipped: true,
                errno: EBUSY,
              });

              writer = new Deno.Command("dd", {
                args: ["if=/dev/zero", `of=${mnt}/f`, "bs=4096", "count=16", "conv=fsync"],
                stdin: "null",
                stdout: "null",
                stderr: "null",
              }).spawn();
              const status = track(writer.status);
              const stat = `/proc/${writer.pid}/stat`;
              const blocked = steadilyInD(stat);
              await until(
                () => status.settled() || blocked(),
                "the writer to block on the frozen filesystem",
                20_000,
              );
              assert.equal(status.settled(), false, "a write completed on a frozen filesystem");
              assert.equal(procState(stat), "D");

              assert.equal(await freezeSyscalls.thaw(mnt), true); // counted once
              const st = await status.p;
              writer = undefined;
              assert.equal(st.success, true);
              assert.equal((await Deno.stat(`${mnt}/f`)).size, 16 * 4096);

              assert.equal(await freezeSyscalls.thaw(mnt), false); // FITHAW fails at once: EINVAL
            } finally {
              await safetyThaw(mnt);
              if (writer !== undefined) await writer.status;
            }
          });
        }),
    );
  }

  realTest(
    `a FIFREEZE stuck in the kernel leaves the event loop and the executor responsive [${ex}]`,
    ["ext4"],
    () =>
      usingExecutor(ex, async () => {
        // `inner` lives in an image file on `outer`. With `outer` frozen, FIFREEZE on `inner` must
        // write `inner`'s dirty data and journal through its loop device into `outer`: it sleeps in
        // the kernel until `outer` is thawed.
        await withLoopFs("ext4", async (outer) => {
          await withLoopFs("ext4", async (inner) => {
            assertOwnLoopMount(outer);
            assertOwnLoopMount(inner);
            await Deno.writeFile(`${inner}/dirty`, new Uint8Array(4 << 20).fill(0x5a)); // no fsync
            let innerFreeze: { p: Promise<FreezeOutcome>; settled: () => boolean } | undefined;
            try {
              assert.deepEqual(await freezeSyscalls.freeze(outer), OK);
              const sleeper = watchThreadInD();
              innerFreeze = track(freezeSyscalls.freeze(inner));
              await until(
                () => innerFreeze!.settled() || sleeper.found(),
                "the thread running FIFREEZE to sleep in the kernel",
                20_000,
              );
              assert.equal(
                innerFreeze.settled(),
                false,
                "FIFREEZE returned while outer was frozen",
              );

              // The event loop runs: timers fire while the call is stuck.
              let ticks = 0;
              const timer = setInterval(() => ticks++, 1);
              try {
                await until(() => ticks >= 20, "timers to fire during the stuck FIFREEZE", 5_000);
              } finally {
                clearInterval(timer);
              }
              // Other calls complete meanwhile (other threads or workers), freeze/thaw included.
              for (let i = 0; i < 10; i++) await runBlocking({ op: "noop" });
              const nowhere = await freezeSyscalls.freeze("/nonexistent/denoga-freeze");
              assert.equal(nowhere.ok, false);
              assert.equal(blockingStats().busy, 1);
              assert.equal(innerFreeze.settled(), false);
              assert.equal(sleeper.stillAsleep(), true, "still asleep in the kernel");

              // Thaw outer: the stuck FIFREEZE finishes, successfully.
              assert.equal(await freezeSyscalls.thaw(outer), true);
              assert.deepEqual(await innerFreeze.p, OK);
              assert.equal(await freezeSyscalls.thaw(inner), true);
            } finally {
              // Order matters: outer first, or inner's thaw/unmount blocks on it.
              await safetyThaw(outer);
              if (innerFreeze !== undefined) await innerFreeze.p.catch(() => {});
              await safetyThaw(inner);
            }
          }, { parentDir: outer });
        });
      }),
  );

  realTestIf(
    missingRoot(),
    `tmpfs: FIFREEZE fails with EOPNOTSUPP, reported as skipped; thaw is false [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        await withTmpfs(async (mnt) => {
          assert.deepEqual(await freezeSyscalls.freeze(mnt), {
            ok: false,
            skipped: true,
            errno: EOPNOTSUPP,
          });
          assert.equal(await freezeSyscalls.thaw(mnt), false);
        });
      }),
  );

  Deno.test(
    `open failure: reported at stage open with strerror; thaw resolves false [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        assert.deepEqual(await freezeSyscalls.freeze("/nonexistent/denoga-freeze"), {
          ok: false,
          skipped: false,
          stage: "open",
          errno: ENOENT,
          strerror: "No such file or directory",
        });
        // qemu-ga's thaw `continue`s past mount points it cannot open: not counted, no error.
        assert.equal(await freezeSyscalls.thaw("/nonexistent/denoga-freeze"), false);
      }),
  );
}
