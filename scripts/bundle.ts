/**
 * `deno task bundle`: the agent as JavaScript in `dist/bundle/`: its entry `denoga.js`, the
 * chunks the entry imports, and its syscall worker `syscall_worker.js` (`deno bundle`, i.e.
 * esbuild, which Deno fetches from the npm registry on first use). This is what `deno task
 * compile` embeds and what the test guest runs.
 *
 * Why ship a bundle rather than the module tree: Deno's per-module loading costs memory. Under
 * `deno run`, the ~40 modules the agent loads at start cost about 2 MiB of RSS more than the same
 * code in a few files (interleaved medians of idle RSS after start + one ping: 40.1 MiB for
 * `main.ts`, 38.3 MiB for a single-file bundle; a bare Deno unix-socket echo server idles at
 * 32–33 MiB).
 *
 * Why more than one file: every start parses all of the file it loads (V8 pre-parses each
 * function to find its end), and a guest's boot waits for the first reply. With esbuild's code
 * splitting, each `import()` of the source becomes a chunk of its own, loaded when the import
 * runs: the entry holds what the first reply needs (the command line, the protocol engine, the
 * sync family), and the command families follow when a request first needs one
 * (lib/commands/startup.ts). Minified: half the bytes cost measurably less to parse (README, "Boot
 * time"). `--keep-names` keeps the names of classes and functions, so the stack an unexpected
 * failure logs still names its functions.
 *
 * The worker is referenced by URL only (`ffi/blocking.ts`), so it is bundled on its own, next to
 * the agent: `ffi/blocking.ts` looks for `syscall_worker.js` when it is itself inside a `.js`
 * file, and for `syscall_worker.ts` in the source tree. Which files make the program is read off
 * the entry ({@link bundleModules}): the release, the installer and the compile task take
 * exactly those.
 *
 * Options: `--out=DIR` (default `dist/bundle`; the `.js` files already there are removed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bundleModules } from "../lib/install/files.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

/** The agent's entry point, relative to the repository: what `deno run` and the bundle start. */
export const AGENT_SOURCE = "main.ts";

/** The files of a bundle. */
export interface AgentBundle {
  /** The agent's entry: run it like `main.ts`. */
  agent: string;
  /** The syscall worker, a sibling of `agent`. */
  worker: string;
  /** Every file of the bundle, as paths: `agent` first, `worker` and the chunks after it. */
  files: string[];
}

/** Where the entry and the worker of a bundle in `outDir` are. */
export function bundlePaths(outDir: string): Omit<AgentBundle, "files"> {
  return { agent: `${outDir}/denoga.js`, worker: `${outDir}/syscall_worker.js` };
}

async function bundleOne(entry: string, output: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--no-config",
      "--platform=deno",
      "--minify",
      "--keep-names",
      ...output,
      entry,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`deno bundle ${entry} failed:\n${text}`);
  }
}

/**
 * Bundles the agent and its worker into `outDir` (created if needed; `.js` files of an earlier
 * bundle there are removed first).
 *
 * @example
 * ```ts
 * const { agent } = await bundleAgent(await Deno.makeTempDir());
 * // deno run -A --no-prompt --no-config --no-code-cache <agent> -m unix-listen -p ...
 * ```
 */
export async function bundleAgent(outDir: string): Promise<AgentBundle> {
  await Deno.mkdir(outDir, { recursive: true });
  for (const e of Deno.readDirSync(outDir)) {
    if (e.isFile && e.name.endsWith(".js")) await Deno.remove(`${outDir}/${e.name}`);
  }
  const paths = bundlePaths(outDir);
  const split = await Deno.makeTempDir({ dir: outDir, prefix: ".split-" });
  try {
    await bundleOne(`${ROOT}/${AGENT_SOURCE}`, ["--code-splitting", "--outdir", split]);
    const entry = AGENT_SOURCE.replace(/\.ts$/, ".js");
    for (const e of Deno.readDirSync(split)) {
      await Deno.rename(
        `${split}/${e.name}`,
        e.name === entry ? paths.agent : `${outDir}/${e.name}`,
      );
    }
  } finally {
    await Deno.remove(split, { recursive: true });
  }
  await bundleOne(`${ROOT}/ffi/syscall_worker.ts`, ["--output", paths.worker]);
  return { ...paths, files: bundleModules(paths.agent) };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string", default: "dist/bundle" } } });
  const outDir = values.out.startsWith("/") ? values.out : `${ROOT}/${values.out}`;
  const b = await bundleAgent(outDir);
  const kib = (f: string) => Deno.statSync(f).size / 1024;
  const chunks = b.files.filter((f) => f !== b.agent && f !== b.worker);
  console.log(`${b.agent}  ${kib(b.agent).toFixed(0)} KiB`);
  console.log(`${b.worker}  ${kib(b.worker).toFixed(0)} KiB`);
  const total = chunks.reduce((n, f) => n + kib(f), 0);
  console.log(`${outDir}/ ${chunks.length} chunks  ${total.toFixed(0)} KiB`);
}
