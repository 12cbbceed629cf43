/**
 * lib/system/mounts.ts: the fsfreeze mount list as newest qemu-ga builds it (qemu-ga-behaviour.md §3.4).
 *
 * Fixtures in tests/fixtures/mountinfo/ hold placeholders filled in at run time:
 * `@BLOCKDEV@` (a block device node that exists here: btrfs sources are stat'ed), `@MAJMIN@`
 * (its major:minor) and `@DIR@` (a directory: a bind-mount-like source).
 */

import assert from "node:assert/strict";
import {
  buildMountList,
  decodeMntentName,
  decodeMntname,
  type MountEntry,
  parseMntentLine,
  parseMountinfoLine,
  splitDev,
} from "../../lib/system/mounts.ts";
import { QgaError } from "../../lib/errors.ts";
import { osFiles } from "../../lib/platform/files.ts";
import { missingLoopPrerequisite, realTestIf, run, withLoopFs } from "../fixtures/loopfs.ts";

const FIXTURES = new URL("../fixtures/mountinfo/", import.meta.url);
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Numbers the fixtures use for non-btrfs lines; the substituted device must not collide. */
const TAKEN = new Set(["253:0", "253:1", "253:2", "7:3", "7:4", "7:5"]);

function findBlockDevice(): { path: string; devmajor: number; devminor: number } | undefined {
  for (const entry of Deno.readDirSync("/dev")) {
    const path = `/dev/${entry.name}`;
    try {
      const st = Deno.statSync(path);
      if (!st.isBlockDevice || st.rdev === null) continue;
      const { devmajor, devminor } = splitDev(st.rdev);
      if (!TAKEN.has(`${devmajor}:${devminor}`)) return { path, devmajor, devminor };
    } catch {
      // raced away or unreadable
    }
  }
  return undefined;
}

const blockDev = Deno.build.os === "linux" ? findBlockDevice() : undefined;

/** A fixture with its placeholders filled in, written to a temp file. */
async function fixture(name: string, dir: string): Promise<string> {
  if (blockDev === undefined) throw new Error("no block device");
  const text = (await Deno.readTextFile(new URL(name, FIXTURES)))
    .replaceAll("@BLOCKDEV@", blockDev.path)
    .replaceAll("@MAJMIN@", `${blockDev.devmajor}:${blockDev.devminor}`)
    .replaceAll("@DIR@", dir);
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** Expected entries of ASCII mount points: the exact bytes are the name's UTF-8. */
function withPaths(entries: Omit<MountEntry, "path">[]): MountEntry[] {
  return entries.map((e) => ({ ...e, path: new TextEncoder().encode(e.dirname) }));
}

Deno.test("a mount point that is not UTF-8 keeps its exact bytes for system calls", async () => {
  await withTempDir(async (dir) => {
    const line = new Uint8Array([
      ...new TextEncoder().encode("36 35 7:9 / /mnt/caf"),
      0xe9,
      ...new TextEncoder().encode(" rw shared:1 - ext4 /dev/loop9 rw\n"),
    ]);
    await Deno.writeFile(`${dir}/mountinfo`, line);
    const [m] = await buildMountList(osFiles("/"), `${dir}/mountinfo`, "/nonexistent");
    assert.deepEqual(m.path, new Uint8Array([...new TextEncoder().encode("/mnt/caf"), 0xe9]));
    assert.equal(m.dirname, "/mnt/caf\uFFFD");
  });
});

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "denoga-mounts-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "mountinfo: skips, unescaping, btrfs device lookup and major:minor dedup",
  ignore: blockDev === undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const list = await buildMountList(
        osFiles("/"),
        await fixture("sample.mountinfo", dir),
        "/nonexistent",
      );
      const b = blockDev!;
      const expected: MountEntry[] = withPaths([
        { dirname: "/", devtype: "ext4", devmajor: 253, devminor: 0 },
        { dirname: "/boot", devtype: "ext4", devmajor: 253, devminor: 1 },
        // `\040` unescaped; the bind mount of the same 253:2 (`/srv/bind of\data`) is dropped.
        { dirname: "/srv/my data", devtype: "xfs", devmajor: 253, devminor: 2 },
        // btrfs: major 0 in mountinfo, numbers from stat() of the source device. The second
        // subvolume and an ext4 line on the same device are duplicates; a missing source and a
        // directory source are skipped.
        { dirname: "/data", devtype: "btrfs", devmajor: b.devmajor, devminor: b.devminor },
        { dirname: "/mnt/tab\tnl\nbs\\end", devtype: "ext4", devmajor: 7, devminor: 3 },
        // Not escapes for decode_mntname: `\8`, `\400` (first digit > 3), a trailing `\0`.
        { dirname: "/mnt/odd\\8xx\\4007\\0", devtype: "ext4", devmajor: 7, devminor: 4 },
        // `\000` decodes to NUL, which ends the C string.
        { dirname: "/mnt/nul", devtype: "ext4", devmajor: 7, devminor: 5 },
        // Not listed: proc/sysfs/devtmpfs/tmpfs/nfs4/overlay (major 0), a line without " - ",
        // garbage, a line ending at the mount point, and a last line with nothing after the source.
      ]);
      assert.deepEqual(list, expected);
    }),
});

Deno.test({
  name: "mounts fallback (getmntent): used when mountinfo cannot be opened",
  ignore: blockDev === undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const list = await buildMountList(
        osFiles("/"),
        `${dir}/no-mountinfo`,
        await fixture("sample.mounts", dir),
      );
      const b = blockDev!;
      assert.deepEqual(
        list,
        withPaths([
          // getmntent decodes only \040 \011 \012 \134 and `\\`; `\101` stays.
          {
            dirname: "/mnt/real\ttab\\back\\x\\101",
            devtype: "ext4",
            devmajor: b.devmajor,
            devminor: b.devminor,
          },
          // A source that is not a block device is kept with 0:0, once (later 0:0 are duplicates).
          { dirname: "/mnt/gone one", devtype: "ext4", devmajor: 0, devminor: 0 },
        ]),
      );
    }),
});

Deno.test("neither file readable: GenericError naming the mtab file", async () => {
  await assert.rejects(
    buildMountList(osFiles("/"), "/nonexistent/mountinfo", "/proc/self/mounts-denoga-missing"),
    (e: unknown) => {
      assert.ok(e instanceof QgaError);
      assert.equal(e.klass, "GenericError");
      assert.equal(e.desc, "failed to open mtab file: '/proc/self/mounts-denoga-missing'");
      return true;
    },
  );
  // With the default fallback path the text is qemu-ga's exact one; prove the format by
  // pointing the fallback at the default path's spelling inside a missing directory.
  await assert.rejects(
    buildMountList(osFiles("/"), "/nonexistent/mountinfo", "/nonexistent/proc/self/mounts"),
    /^QgaError: failed to open mtab file: '\/nonexistent\/proc\/self\/mounts'$/,
  );
});

Deno.test("an empty mountinfo gives an empty list (no fallback)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/empty`, "");
    assert.deepEqual(await buildMountList(osFiles("/"), `${dir}/empty`, "/nonexistent"), []);
  });
});

Deno.test("the live /proc/self/mountinfo parses and follows the rules", async () => {
  const list = await buildMountList(osFiles("/"));
  const seen = new Set<string>();
  for (const m of list) {
    assert.ok(m.devmajor !== 0 || m.devtype === "btrfs", JSON.stringify(m));
    const key = `${m.devmajor}:${m.devminor}`;
    assert.ok(!seen.has(key), `duplicate ${key}`);
    seen.add(key);
    assert.ok(m.dirname.startsWith("/"));
  }
});

Deno.test("parseMountinfoLine follows qemu-ga's two sscanf formats", () => {
  const p = (s: string) => {
    const r = parseMountinfoLine(enc.encode(s));
    return r && {
      major: r.devmajor,
      minor: r.devminor,
      dir: dec.decode(r.dir),
      type: dec.decode(r.type),
      source: dec.decode(r.source),
    };
  };
  assert.deepEqual(p("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n"), {
    major: 98,
    minor: 0,
    dir: "/mnt2",
    type: "ext3",
    source: "/dev/root",
  });
  // Optional fields may be absent; several spaces are fine (scanf whitespace directives).
  assert.deepEqual(p("1 2 8:1   /   /x   rw - xfs   /dev/sda1   rw\n")?.dir, "/x");
  assert.equal(p("1 2 8:1 / /x rw - xfs /dev/sda1"), undefined); // nothing after the source
  assert.equal(p("1 2 8-1 / /x rw - xfs /dev/sda1 rw\n"), undefined); // no ':'
  assert.equal(p("x 2 8:1 / /x rw - xfs /dev/sda1 rw\n"), undefined);
  assert.equal(p("1 2 8:1 / /x\n"), undefined);
  assert.equal(p("1 2 8:1 / /x rw -\n"), undefined); // the separator needs " - "
  assert.equal(p(""), undefined);
});

Deno.test("decode_mntname and getmntent decode_name differ exactly as in C", () => {
  const m = (s: string) => dec.decode(decodeMntname(enc.encode(s)));
  const g = (s: string) => dec.decode(decodeMntentName(enc.encode(s)));
  assert.equal(m("a\\040b\\011c\\012d\\134e\\\\f"), "a b\tc\nd\\e\\f");
  assert.equal(g("a\\040b\\011c\\012d\\134e\\\\f"), "a b\tc\nd\\e\\f");
  assert.equal(m("\\101\\377"), "A\uFFFD"); // any 0-3,0-7,0-7 triple; 0xff is not UTF-8
  assert.equal(g("\\101"), "\\101");
  assert.equal(m("\\4000\\08\\"), "\\4000\\08\\");
  assert.equal(g("x\\"), "x\\");
});

Deno.test("parseMntentLine follows getmntent's field splitting", () => {
  const p = (s: string) => {
    const r = parseMntentLine(enc.encode(s));
    return r && [r.fsname, r.dir, r.type].map((x) => dec.decode(x));
  };
  assert.deepEqual(p("/dev/a /b ext4 rw 0 0\n"), ["/dev/a", "/b", "ext4"]);
  assert.deepEqual(p(" \t/dev/a\t\t/b  ext4\n"), ["/dev/a", "/b", "ext4"]);
  assert.deepEqual(p("/dev/a /b\n"), ["/dev/a", "/b", ""]);
  assert.deepEqual(p("/dev/a /b \t \n"), ["/dev/a", "/b", ""]);
  assert.equal(p("# comment\n"), undefined);
  assert.equal(p("  \t\n"), undefined);
});

Deno.test("splitDev matches glibc major()/minor()", () => {
  assert.deepEqual(splitDev(0xfe00), { devmajor: 254, devminor: 0 });
  assert.deepEqual(splitDev(0x0703), { devmajor: 7, devminor: 3 });
  // Large minor numbers use the high bits: makedev(259, 1048575).
  const dev = (259n & 0xfffn) << 8n | (259n & ~0xfffn) << 32n | (1048575n & 0xffn) |
    (1048575n & ~0xffn) << 12n;
  assert.deepEqual(splitDev(dev), { devmajor: 259, devminor: 1048575 });
});

realTestIf(
  missingLoopPrerequisite(["ext4"]),
  "real loop mount: listed with its loop major:minor, bind mounts and spaces handled",
  async () => {
    await withLoopFs("ext4", async (mnt) => {
      const bind = `${mnt}-bind dir`;
      await Deno.mkdir(bind);
      await run("mount", ["--bind", mnt, bind]);
      try {
        const list = await buildMountList(osFiles("/"));
        const own = list.filter((m) => m.dirname === mnt);
        assert.equal(own.length, 1, JSON.stringify(list));
        assert.equal(own[0].devtype, "ext4");
        assert.equal(own[0].devmajor, 7);
        // The bind mount (same device, a mount point with a space) is deduplicated away.
        assert.equal(list.some((m) => m.dirname === bind), false);
        const st = await Deno.stat(mnt);
        assert.deepEqual(splitDev(st.dev), { devmajor: 7, devminor: own[0].devminor });
      } finally {
        await run("umount", [bind]);
        await Deno.remove(bind);
      }
    }, { mountName: "mnt with space" });
  },
);
