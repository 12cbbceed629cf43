/**
 * The Deno.Command path of guest-exec (an absolute path as spelt, any capture but "merged")
 * leaves Deno's Node compatibility modules unloaded: loading them was most of a first
 * guest-exec's cost. They come in only for what needs them: the errno name of a failed spawn
 * and the number of a signal that killed the child. One test, in a file of its own, since the
 * modules stay loaded for the rest of the process.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { execFacet, ExecSpawnError, nodeModulesLoaded } from "../../lib/platform/exec.ts";

Deno.test("exec direct path: Node modules only for a failed spawn or a signal", async () => {
  const ok = await execFacet.spawn({
    path: "/bin/sh",
    args: ["-c", "echo hi; echo err >&2"],
    capture: "separated",
  });
  const done = await ok.finished;
  assertEquals(done.exitcode, 0);
  assertEquals(new TextDecoder().decode(done.out.data), "hi\n");
  assertEquals(new TextDecoder().decode(done.err.data), "err\n");
  assertOk(!nodeModulesLoaded(), "a normal exit needs no Node modules");

  let err: unknown;
  try {
    await execFacet.spawn({ path: "/nonexistent/denoga-test", args: [], capture: "none" });
  } catch (e) {
    err = e;
  }
  assertOk(err instanceof ExecSpawnError, String(err));
  assertEquals([err.code, err.text], ["ENOENT", "No such file or directory"]);
  assertOk(nodeModulesLoaded(), "the errno name comes from node:os");

  const killed = await execFacet.spawn({
    path: "/bin/sh",
    args: ["-c", "kill -KILL $$"],
    capture: "none",
  });
  const k = await killed.finished;
  assertEquals([k.exitcode, k.signal], [undefined, 9]);
});
