/**
 * The `os` facet's `lookUp` (one chain for many reads, link reads and listings) over a tree at a
 * root, as the fake-/sys tests use it, `withKnown` and `withLookedUp` answering from its results,
 * and the facet's other pieces those commands lean on (d_type listings, the lazy facet).
 */

import assert from "node:assert/strict";
import {
  DT_DIR,
  DT_LNK,
  DT_REG,
  lookUpKey,
  OsFileError,
  type OsFiles,
  osFiles,
  withKnown,
  withLookedUp,
} from "../../lib/platform/files.ts";
import { lazyFacet } from "../../lib/platform/mod.ts";

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

Deno.test("withLookedUp: one look-up, then readFile and readPrefix answered from it", async () => {
  const root = await Deno.makeTempDir({ prefix: "denoga-lookup-" });
  try {
    await Deno.mkdir(`${root}/sys/cpu1`, { recursive: true });
    await Deno.writeTextFile(`${root}/sys/cpu1/online`, "1\n");
    const real = osFiles(root);
    let lookUps = 0;
    const asked: string[] = [];
    const os: OsFiles = {
      ...real,
      readFile: (path) => (asked.push(`readFile ${path}`), real.readFile(path)),
      readPrefix: (path, n) => (asked.push(`readPrefix ${path}`), real.readPrefix(path, n)),
      readDir: (path) => (asked.push(`readDir ${path}`), real.readDir(path)),
      lookUp: (list) => (lookUps++, real.lookUp!(list)),
    };
    const ahead = await withLookedUp(os, [
      { method: "readFile", path: "/sys/cpu1/online", size: 64 },
      { method: "readDir", path: "/sys/cpu1/" },
      { method: "readFile", path: "/sys/cpu1/missing", size: 64 },
    ]);
    assert.deepEqual(await ahead.readPrefix("/sys/cpu1/online", 1), new TextEncoder().encode("1"));
    assert.deepEqual(await ahead.readFile("/sys/cpu1/online"), new TextEncoder().encode("1\n"));
    assert.deepEqual(await ahead.readDir("/sys/cpu1/"), ["online"]);
    await assert.rejects(
      ahead.readPrefix("/sys/cpu1/missing", 1),
      (e) => e instanceof OsFileError && e.errno === 2 && e.syscall === "open",
    );
    assert.deepEqual([lookUps, asked], [1, []]);
    // What was not looked up is asked as before; an empty list looks nothing up.
    await ahead.readPrefix("/sys/cpu1/other", 1).catch(() => {});
    assert.deepEqual(asked, ["readPrefix /sys/cpu1/other"]);
    assert.equal(await withLookedUp(os, []), os);
    assert.equal(lookUps, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a lazily loaded facet is not a thenable: awaiting it gives the facet", async () => {
  let loads = 0;
  const facet = lazyFacet(() => (loads++, Promise.resolve({ hello: () => Promise.resolve(1) })));
  const same = await Promise.resolve(facet);
  assert.equal(same, facet);
  assert.equal(loads, 0);
  assert.equal(await same.hello(), 1);
});

Deno.test("readDirEntries: names with readdir's d_type", async () => {
  const root = await Deno.makeTempDir({ prefix: "denoga-lookup-" });
  try {
    await Deno.mkdir(`${root}/d/sub`, { recursive: true });
    await Deno.writeTextFile(`${root}/d/file`, "");
    await Deno.symlink("sub", `${root}/d/link`);
    const entries = await osFiles(root).readDirEntries("/d");
    assert.deepEqual(
      entries.map((e) => `${e.name}:${e.type}`).sort(),
      [`file:${DT_REG}`, `link:${DT_LNK}`, `sub:${DT_DIR}`],
    );
    await assert.rejects(
      osFiles(root).readDirEntries("/d/file"),
      (e) => e instanceof OsFileError && e.errno === 20,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("withLookedUp: a long list is looked up in batches, every answer kept", async () => {
  const root = await Deno.makeTempDir({ prefix: "denoga-lookup-" });
  try {
    const n = 600;
    for (let i = 0; i < n; i++) await Deno.writeTextFile(`${root}/f${i}`, `${i}\n`);
    const real = osFiles(root);
    const sizes: number[] = [];
    const os: OsFiles = {
      ...real,
      readFile: () => Promise.reject(new Error("asked one by one")),
      lookUp: (list) => (sizes.push(list.length), real.lookUp!(list)),
    };
    const paths = Array.from({ length: n }, (_, i) => `/f${i}`);
    const ahead = await withLookedUp(os, paths.map((path) => ({ method: "readFile", path })));
    assert.ok(sizes.length > 1 && sizes.every((k) => k <= 256), `${sizes}`);
    assert.equal(sizes.reduce((a, b) => a + b), n);
    for (let i = 0; i < n; i++) {
      assert.equal(new TextDecoder().decode(await ahead.readFile(`/f${i}`)), `${i}\n`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
