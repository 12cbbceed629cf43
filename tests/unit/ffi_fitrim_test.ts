/**
 * ffi/fitrim.ts on both executors: a real trim of an ext4 loop mount, the "not supported" errno
 * of tmpfs, an open failure, and argument checks. The stuck case (the event loop stays responsive
 * while FITRIM sleeps in the kernel) is tests/integration/ffi_fitrim_stuck_test.ts.
 */

import assert from "node:assert/strict";
import { fitrim } from "../../ffi/fitrim.ts";
import { blockingStats } from "../../ffi/blocking.ts";
import { ENOENT, ENOTTY, EOPNOTSUPP } from "../../ffi/libc.ts";
import { fitrimUntranslated } from "../fixtures/emulation.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";
import {
  assertOwnLoopMount,
  missingLoopPrerequisite,
  missingRoot,
  realTestIf,
  withLoopFs,
  withTmpfs,
} from "../fixtures/loopfs.ts";

/**
 * A test that makes a real FITRIM: {@link realTestIf}, except that under qemu-user it is ignored
 * whatever DENOGA_REQUIRE_REAL says (emulation cannot do it; tests/integration/aarch64_test.ts
 * counts such skips).
 */
function trimTest(missing: string | undefined, name: string, fn: () => Promise<void>): void {
  const untranslated = fitrimUntranslated();
  if (untranslated === undefined) realTestIf(missing, name, fn);
  else Deno.test({ name: `${name} [SKIPPED: ${untranslated}]`, ignore: true, fn });
}

for (const ex of EXECUTORS) {
  trimTest(
    missingLoopPrerequisite(["ext4"]),
    `ext4 loop mount: FITRIM trims, and reports bytes and the minlen used [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        await withLoopFs("ext4", async (mnt) => {
          assertOwnLoopMount(mnt); // only ever trim a filesystem of our own
          const first = await fitrim(mnt, 0n);
          assert.equal(
            first.ok,
            true,
            JSON.stringify(first, (_k, v) => typeof v === "bigint" ? `${v}` : v),
          );
          if (!first.ok) return;
          // The first trim after mounting covers the free space (ext4 remembers trimmed groups
          // only in memory), so something is trimmed; never more than the filesystem.
          assert.ok(first.trimmed > 0n, "nothing trimmed");
          assert.ok(first.trimmed <= 64n << 20n);
          assert.ok(first.minlen >= 0n);

          // A minlen is passed through: the kernel reports at least what was asked.
          const big = await fitrim(mnt, 1n << 20n);
          assert.equal(big.ok, true);
          assert.ok(big.ok && big.minlen >= 1n << 20n, `minlen ${big.ok && big.minlen}`);
        });
      }),
  );

  trimTest(
    missingRoot(),
    `tmpfs: FITRIM is not supported (stage trim) [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        await withTmpfs(async (mnt) => {
          const r = await fitrim(mnt, 0n);
          assert.equal(r.ok, false);
          if (r.ok) return;
          assert.equal(r.stage, "trim");
          // qemu-ga's "trim not supported" covers both.
          assert.ok(r.errno === ENOTTY || r.errno === EOPNOTSUPP, `errno ${r.errno}`);
        });
      }),
  );

  Deno.test(`a missing path fails at stage open with ENOENT [${ex}]`, () =>
    usingExecutor(ex, async () => {
      assert.deepEqual(await fitrim("/nonexistent/denoga-fitrim", 0n), {
        ok: false,
        stage: "open",
        errno: ENOENT,
        strerror: "No such file or directory",
      });
    }));

  Deno.test(`a minlen that is not a u64 rejects before any system call [${ex}]`, () =>
    usingExecutor(ex, async () => {
      await assert.rejects(fitrim("/nonexistent/denoga-fitrim", -1n), RangeError);
      await assert.rejects(fitrim("/nonexistent/denoga-fitrim", 1n << 64n), RangeError);
      assert.equal(blockingStats().busy, 0);
    }));
}
