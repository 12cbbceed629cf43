/**
 * `deno task release` (scripts/release.ts) without a denort runtime: the tarball holds Deno +
 * bundle at its top, owned by root, `deno` executable, and the unpacked files start the agent
 * the way packaging/cloud-init/user-data.yaml starts them.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { buildRelease, RELEASE_FILES, releaseName } from "../../scripts/release.ts";
import { bundleModules } from "../../lib/install/files.ts";
import { DENOGA_VERSION, QGA_COMPAT_VERSION } from "../../lib/version.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const dec = new TextDecoder();

async function run(cmd: string, args: string[], cwd?: string) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("release: the tarball's name carries the version and the architecture", () => {
  assertEquals(releaseName("1.2.3", "x86_64"), "denoga-1.2.3-linux-x86_64.tar.gz");
  assertEquals(releaseName(), `denoga-${DENOGA_VERSION}-linux-${Deno.build.arch}.tar.gz`);
});

Deno.test({
  name: "release: Deno + bundle at the tarball's top, and they start the agent",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-release-" });
    try {
      const r = await buildRelease({ outDir: `${dir}/dist` });
      assertEquals(r.form, "bundle");
      assertEquals(r.path, `${dir}/dist/${releaseName()}`);
      // Nothing else is left in the output directory (the staging tree is removed).
      assertEquals([...Deno.readDirSync(`${dir}/dist`)].map((e) => e.name), [releaseName()]);

      const list = await run("tar", ["-tvzf", r.path, "--numeric-owner"]);
      assertEquals(list.code, 0, list.stderr);
      const rows = list.stdout.trim().split("\n").map((l) => l.split(/\s+/));
      const names = rows.map((c) => c[5]);
      assertEquals(names.filter((n) => RELEASE_FILES.bundle.includes(n as "deno")), [
        ...RELEASE_FILES.bundle,
      ]);
      for (const c of rows) assertEquals(c[1], "0/0", `owner of ${c[5]}`);
      assertEquals(
        rows.map((c) => c[0]),
        names.map((n) => n === "deno" ? "-rwxr-xr-x" : "-rw-r--r--"),
      );
      assertEquals(Number(rows[names.indexOf("deno")][2]), (await Deno.stat(Deno.execPath())).size);

      // Unpacked as the user-data script unpacks it, it starts the agent; besides Deno it holds
      // exactly the bundle's files (no stale chunk, none missing).
      const unpacked = `${dir}/unpacked`;
      await Deno.mkdir(unpacked);
      const x = await run("tar", ["-xzf", r.path, "-C", unpacked]);
      assertEquals(x.code, 0, x.stderr);
      const modules = bundleModules(`${unpacked}/denoga.js`).map((f) =>
        f.slice(unpacked.length + 1)
      );
      assertEquals(names.filter((n) => n !== "deno"), modules.sort());
      assertOk(modules.length > RELEASE_FILES.bundle.length, "the entry loads chunks");
      const userData = await Deno.readTextFile(`${ROOT}/packaging/cloud-init/user-data.yaml`);
      const launch = userData.match(/^\s*(\.\/deno run .*\.\/denoga\.js) install$/m)?.[1];
      assertOk(launch, "the user-data script's Deno + bundle launch line");
      const argv = launch.split(" ");
      const v = await run(`${unpacked}/deno`, [...argv.slice(1), "--version"], unpacked);
      assertEquals(v.code, 0, v.stderr);
      assertEquals(v.stdout, `QEMU Guest Agent ${QGA_COMPAT_VERSION}\n`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
