/**
 * `deno task release`: the release tarball a guest image receives,
 * `dist/denoga-<version>-linux-<arch>.tar.gz`, which packaging/cloud-init/user-data.yaml fetches
 * and installs with `denoga install`. Its files sit at its top:
 *
 * - the compiled binary `denoga`, when `DENORT_BIN` lets `deno task compile` make one;
 * - otherwise Deno + bundle: `deno` (the Deno running this script), `denoga.js`, the chunks it
 *   loads and `syscall_worker.js` (`deno task bundle`).
 *
 * Owner and group are stored as 0 and the files sorted, so the tarball depends on its contents
 * only (gzip's header has no time stamp when tar pipes into it).
 *
 * Options: `--out=DIR` (default `dist`). Prints the tarball's path.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DENOGA_VERSION } from "../lib/version.ts";
import { bundleAgent } from "./bundle.ts";
import { runCompile } from "./compile.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const dec = new TextDecoder();

/**
 * The two forms of a release, by the files at the tarball's top (the bundle form also holds
 * the chunks `denoga.js` loads, whose names vary with their contents).
 */
export const RELEASE_FILES = {
  compiled: ["denoga"],
  bundle: ["deno", "denoga.js", "syscall_worker.js"],
} as const;

/** What was built. */
export interface Release {
  path: string;
  form: keyof typeof RELEASE_FILES;
}

/** `denoga-<version>-linux-<arch>.tar.gz` for this machine's architecture (x86_64, aarch64). */
export function releaseName(version = DENOGA_VERSION, arch: string = Deno.build.arch): string {
  return `denoga-${version}-linux-${arch}.tar.gz`;
}

async function tar(dir: string, files: readonly string[], output: string): Promise<void> {
  const out = await new Deno.Command("tar", {
    args: [
      ...["--owner=0", "--group=0", "--numeric-owner", "--sort=name"],
      ...["-czf", output, "-C", dir, ...files],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`tar -czf ${output} failed: ${dec.decode(out.stderr)}`);
}

/**
 * Builds the release into `outDir` (created if needed): compiled when `denortBin` is set (the
 * compile task reads `DENORT_BIN` itself), Deno + bundle otherwise.
 *
 * @example
 * ```ts ignore
 * const { path, form } = await buildRelease({ outDir: "dist" });
 * ```
 */
export async function buildRelease(
  opts: { outDir?: string; denortBin?: string } = {},
): Promise<Release> {
  const outDir = opts.outDir ?? `${ROOT}/dist`;
  await Deno.mkdir(outDir, { recursive: true });
  const stage = await Deno.makeTempDir({ dir: outDir, prefix: ".release-" });
  try {
    let form: Release["form"];
    let files: string[] = [...RELEASE_FILES.compiled];
    if (opts.denortBin) {
      form = "compiled";
      const code = await runCompile([`--output=${stage}/denoga`]);
      if (code !== 0) throw new Error(`deno task compile failed (exit ${code})`);
    } else {
      form = "bundle";
      const b = await bundleAgent(stage);
      // Sorted here: `tar --sort=name` keeps the order of names given on its command line.
      files = ["deno", ...b.files.map((f) => f.slice(stage.length + 1))].sort();
      await Deno.copyFile(Deno.execPath(), `${stage}/deno`);
      await Deno.chmod(`${stage}/deno`, 0o755);
    }
    const path = `${outDir}/${releaseName()}`;
    const tmp = `${stage}.tar.gz`;
    await tar(stage, files, tmp);
    await Deno.rename(tmp, path);
    return { path, form };
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { out: { type: "string" } } });
  const denortBin = Deno.env.get("DENORT_BIN") || undefined;
  const r = await buildRelease({ outDir: values.out, denortBin });
  console.error(`release: ${r.form === "compiled" ? "compiled binary" : "Deno + bundle"}`);
  console.log(r.path);
}
