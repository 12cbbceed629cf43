/**
 * The `os` facet's `lookUp` (one chain for many reads, link reads and listings) over a tree at a
 * root, as the fake-/sys tests use it, and `withKnown` answering from its results.
 */

import assert from "node:assert/strict";
import { lookUpKey, OsFileError, osFiles, withKnown } from "../../lib/platform/files.ts";

Deno.test("os.lookUp: paths under the root, answers as the methods give them", async () => {
  const root = await Deno.makeTempDir({ prefix: "denoga-lookup-" });
  try {
    await Deno.mkdir(`${root}/sys/d`, { recursive: true });
    await Deno.writeTextFile(`${root}/sys/d/uevent`, "MAJOR=7\n");
    await Deno.symlink("../../devices/x", `${root}/sys/link`);
    const os = osFiles(root);
    const answers = await os.lookUp!([
      { method: "readFile", path: "/sys/d/uevent" },
      { method: "readLink", path: "/sys/link" },
      { method: "readDir", path: "/sys/d" },
      { method: "readFile", path: "/sys/missing" },
      { method: "readLink", path: "/sys/d" },
    ]);
    assert.deepEqual(answers.slice(0, 3), [
      { value: await os.readFile("/sys/d/uevent") },
      { value: await os.readLink("/sys/link") },
      { value: await os.readDir("/sys/d") },
    ]);
    const missing = answers[3];
    assert.ok(missing !== undefined && "error" in missing);
    assert.ok(missing.error instanceof OsFileError);
    assert.deepEqual(
      [missing.error.text, missing.error.errno, missing.error.path, missing.error.syscall],
      ["No such file or directory", 2, "/sys/missing", "open"],
    );
    const notLink = answers[4];
    assert.ok(notLink !== undefined && "error" in notLink);
    assert.equal(notLink.error.errno, 22);

    // withKnown: answers from the map, everything else from the facet.
    const known = withKnown(
      os,
      new Map([
        [lookUpKey("readFile", "/elsewhere"), answers[0]],
        [lookUpKey("realPath", "/gone"), missing],
      ]),
    );
    assert.deepEqual(await known.readFile("/elsewhere"), await os.readFile("/sys/d/uevent"));
    await assert.rejects(known.realPath("/gone"), (e) => e === missing.error);
    assert.deepEqual(await known.readDir("/sys/d"), ["uevent"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
