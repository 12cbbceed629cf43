/**
 * "Never deaf": a FITRIM stuck in the kernel leaves the event loop and the executors responsive,
 * on both executors of ffi/blocking.ts.
 *
 * The stuck call is made real, not simulated: an ext4 filesystem on a loop device whose backing
 * file is reached through a bindfs FUSE mount. With the bindfs daemon stopped (SIGSTOP), every
 * I/O the loop device passes on (the bitmap reads and discards FITRIM needs) waits for a daemon
 * that does not answer, so the thread making the FITRIM sleeps in the kernel (state D) until the
 * daemon is continued.
 *
 * Safety: the daemon is ALWAYS continued in `finally` before anything is unmounted (a process
 * blocked on a stopped FUSE daemon cannot even be killed), and nothing in this process touches
 * the FUSE mount while it is stopped. The image is created in bindfs's source directory, not
 * through FUSE, so the loop device's first discard really reaches the daemon (mkfs through FUSE
 * would teach the kernel that bindfs has no fallocate, and discards would then fail at once).
 *
 * Needs root, loop devices, mkfs.ext4, bindfs and /dev/fuse; without them the test is ignored
 * with the reason in its name, unless DENOGA_REQUIRE_REAL=1 makes it fail instead.
 */

import assert from "node:assert/strict";
import { blockingStats, runBlocking } from "../../ffi/blocking.ts";
import { fitrim, type FitrimResult } from "../../ffi/fitrim.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";
import {
  assertOwnLoopMount,
  findExecutable,
  missingLoopPrerequisite,
  mountinfoEntry,
  pathExists,
  realTestIf,
  run,
} from "../fixtures/loopfs.ts";
import { procState, watchThreadInD } from "../fixtures/proc.ts";
import { track, until } from "../fixtures/wait.ts";

/** Why the test cannot run here, or undefined. */
function missingPrerequisite(): string | undefined {
  const loop = missingLoopPrerequisite(["ext4"]);
  if (loop !== undefined) return loop;
  if (findExecutable("bindfs") === undefined) return "bindfs not found";
  if (!pathExists("/dev/fuse")) return "no /dev/fuse (FUSE unavailable)";
  return undefined;
}

/** SIGCONT to the daemon; a daemon that is gone needs none. */
function resume(bindfs: Deno.ChildProcess): void {
  try {
    bindfs.kill("SIGCONT");
  } catch {
    // already exited
  }
}

/** Unmounts `dir`, lazily if it is busy; errors ignored (cleanup). */
async function unmount(dir: string): Promise<void> {
  if (mountinfoEntry(dir) === undefined) return;
  await run("umount", [dir]).catch(() => run("umount", ["-l", dir]).catch(() => {}));
}

/**
 * An ext4 filesystem mounted at `mnt` whose loop device reads and writes its image through a
 * bindfs mount; `fn` gets the mount point and the bindfs process. Cleans everything up, and
 * continues the daemon first whatever `fn` left it in.
 */
async function withExt4OverBindfs(
  fn: (mnt: string, bindfs: Deno.ChildProcess) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denoga-fitrim-stuck-" });
  const [src, fuse, mnt] = [`${dir}/src`, `${dir}/fuse`, `${dir}/mnt`];
  let bindfs: Deno.ChildProcess | undefined;
  try {
    for (const d of [src, fuse, mnt]) await Deno.mkdir(d);
    await run("truncate", ["-s", "64M", `${src}/fs.img`]);
    await run("mkfs.ext4", ["-q", "-F", `${src}/fs.img`]);
    // -f: stays in the foreground, so this is the daemon's own pid.
    bindfs = new Deno.Command(findExecutable("bindfs")!, {
      args: ["-f", src, fuse],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const status = track(bindfs.status);
    await until(
      () => status.settled() || mountinfoEntry(fuse)?.type.startsWith("fuse") === true,
      "the bindfs mount",
    );
    assert.equal(status.settled(), false, "bindfs exited");
    await run("mount", ["-o", "loop", "-t", "ext4", `${fuse}/fs.img`, mnt]);
    assertOwnLoopMount(mnt);
    await fn(mnt, bindfs);
  } finally {
    // Before anything else: blocked I/O must be able to finish.
    if (bindfs !== undefined) resume(bindfs);
    await unmount(mnt);
    await unmount(fuse);
    if (bindfs !== undefined) {
      try {
        bindfs.kill("SIGTERM");
      } catch {
        // exited with the unmount
      }
      await bindfs.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

for (const ex of EXECUTORS) {
  realTestIf(
    missingPrerequisite(),
    `a FITRIM stuck on a stopped FUSE daemon leaves the event loop responsive [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        await withExt4OverBindfs(async (mnt, bindfs) => {
          let trim: { p: Promise<FitrimResult>; settled: () => boolean } | undefined;
          try {
            bindfs.kill("SIGSTOP");
            await until(() => procState(`/proc/${bindfs.pid}/stat`) === "T", "bindfs to stop");
            const sleeper = watchThreadInD();
            trim = track(fitrim(mnt, 0n));
            await until(
              () => trim!.settled() || sleeper.found(),
              "the thread running FITRIM to sleep in the kernel",
              20_000,
            );
            assert.equal(trim.settled(), false, "FITRIM returned while the daemon was stopped");

            // Timers fire while the call is stuck.
            let ticks = 0;
            const timer = setInterval(() => ticks++, 1);
            try {
              await until(() => ticks >= 20, "timers to fire during the stuck FITRIM", 5_000);
            } finally {
              clearInterval(timer);
            }
            // Other calls complete meanwhile, on other threads or workers.
            for (let i = 0; i < 10; i++) {
              assert.deepEqual(await runBlocking({ op: "noop" }), { ret: 0, errno: 0 });
            }
            const elsewhere = await fitrim("/nonexistent/denoga-fitrim", 0n);
            assert.equal(elsewhere.ok, false);
            assert.equal(blockingStats().busy, 1);
            assert.equal(trim.settled(), false);
            assert.ok(sleeper.stillAsleep(), "still asleep in the kernel");

            // Continue the daemon: the stuck FITRIM completes.
            resume(bindfs);
            const done = await trim.p;
            assert.equal(
              done.ok,
              true,
              JSON.stringify(done, (_k, v) => typeof v === "bigint" ? `${v}` : v),
            );
            assert.equal(blockingStats().busy, 0);
          } finally {
            resume(bindfs); // the stuck call can only return once the daemon runs
            if (trim !== undefined) await trim.p.catch(() => {});
          }
        });
      }),
  );
}
