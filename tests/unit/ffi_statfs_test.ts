/**
 * ffi/statfs.ts on both executors, against `stat -f` (coreutils, which uses statvfs: the same
 * f_frsize rule) on filesystems the test mounts itself, so nothing changes between the two looks.
 */

import assert from "node:assert/strict";
import { statfs, type StatfsResult } from "../../ffi/statfs.ts";
import { ENOENT, ENOTDIR } from "../../ffi/libc.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";
import {
  missingRoot,
  realTest,
  realTestIf,
  run,
  withLoopFs,
  withTmpfs,
} from "../fixtures/loopfs.ts";

/** `stat -f` of `path`: fundamental block size, block size, blocks, free, available, type. */
async function statDashF(path: string): Promise<StatfsResult> {
  const out = await run("stat", ["-f", "-c", "%S %s %b %f %a %t", path]);
  const fields = out.trim().split(" ");
  const [frsize, bsize, blocks, bfree, bavail] = fields.slice(0, 5).map((x) => BigInt(x));
  const type = parseInt(fields[5], 16);
  return { ok: true, type, bsize, frsize, blocks, bfree, bavail };
}

for (const ex of EXECUTORS) {
  realTestIf(
    missingRoot(),
    `statfs of a tmpfs equals stat -f [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        await withTmpfs(async (mnt) => {
          await Deno.writeFile(`${mnt}/f`, new Uint8Array(100_000)); // some blocks in use
          const got = await statfs(mnt);
          assert.deepEqual(got, await statDashF(mnt));
          assert.ok(got.ok && got.bfree < got.blocks, "the file's blocks count as used");
          // Bytes as in guest-get-fsinfo: used = (blocks - bfree) * frsize.
          assert.ok(got.ok && (got.blocks - got.bfree) * got.frsize >= 100_000n);
        });
      }),
  );

  realTest(
    `statfs of an ext4 loop mount equals stat -f, with a byte path [${ex}]`,
    ["ext4"],
    () =>
      usingExecutor(ex, async () => {
        await withLoopFs("ext4", async (mnt) => {
          const got = await statfs(new TextEncoder().encode(mnt));
          assert.deepEqual(got, await statDashF(mnt));
          // ext4 keeps 5 % for root: fewer blocks available than free.
          assert.ok(got.ok && got.bavail < got.bfree);
        });
      }),
  );

  Deno.test(`statfs failures carry errno and strerror [${ex}]`, () =>
    usingExecutor(ex, async () => {
      assert.deepEqual(await statfs("/nonexistent/denoga-statfs"), {
        ok: false,
        errno: ENOENT,
        strerror: "No such file or directory",
      });
      assert.deepEqual(await statfs("/proc/self/stat/x"), {
        ok: false,
        errno: ENOTDIR,
        strerror: "Not a directory",
      });
    }));
}
