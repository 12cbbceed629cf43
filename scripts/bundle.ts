/**
 * `deno task bundle`: the agent as one JavaScript file, `dist/bundle/denoga.js`, plus its
 * syscall worker `dist/bundle/syscall_worker.js` (`deno bundle`, i.e. esbuild, which Deno fetches
 * from the npm registry on first use). This is what `deno task compile` embeds and what the test
 * guest runs.
 *
 * Why ship a bundle rather than the module tree: Deno's per-module loading costs memory. Under
 * `deno run`, the ~40 modules the agent loads at start cost about 2 MiB of RSS more than the same
 * code in one file (interleaved medians of idle RSS after start + one ping: 40.1 MiB for
 * `main.ts`, 38.3 MiB for the bundle; a bare Deno unix-socket echo server idles at 32–33 MiB).
 * The bundle keeps the lazy imports lazy (esbuild wraps each lazily imported module in an init
 * function that runs on first use). It is minified: every start parses the whole file twice (Deno's
 * dependency analysis when its cache has no entry for it, as on a guest's first boot, then V8), and
 * half the bytes cost measurably less (README, "Boot time"). `--keep-names` keeps the names of
 * classes and functions, so the stack an unexpected failure logs still names its functions.
 *
 * The worker is referenced by URL only (`ffi/blocking.ts`), so it is bundled on its own, next to
 * the agent: `ffi/blocking.ts` looks for `syscall_worker.js` when it is itself inside a `.js`
 * file, and for `syscall_worker.ts` in the source tree.
 *
 * Options: `--out=DIR` (default `dist/bundle`).
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

/** The agent's entry point, relative to the repository: what `deno run` and the bundle start. */
export const AGENT_SOURCE = "main.ts";

/** The two files of a bundle. */
export interface AgentBundle {
  /** The agent: run it like `main.ts`. */
  agent: string;
  /** The syscall worker, a sibling of `agent`. */
  worker: string;
}

/** The bundle's file names inside `outDir`. */
export function bundlePaths(outDir: string): AgentBundle {
  return { agent: `${outDir}/denoga.js`, worker: `${outDir}/syscall_worker.js` };
}

async function bundleOne(entry: string, output: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--no-config",
      "--platform=deno",
      "--minify",
      "--keep-names",
      "--output",
      output,
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
 * Bundles the agent and its worker into `outDir` (created if needed).
 *
 * @example
 * ```ts
 * const { agent } = await bundleAgent(await Deno.makeTempDir());
 * // deno run -A --no-prompt --no-config --no-code-cache <agent> -m unix-listen -p ...
 * ```
 */
export async function bundleAgent(outDir: string): Promise<AgentBundle> {
  await Deno.mkdir(outDir, { recursive: true });
  const paths = bundlePaths(outDir);
  await bundleOne(`${ROOT}/${AGENT_SOURCE}`, paths.agent);
  await bundleOne(`${ROOT}/ffi/syscall_worker.ts`, paths.worker);
  return paths;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string", default: "dist/bundle" } } });
  const outDir = values.out.startsWith("/") ? values.out : `${ROOT}/${values.out}`;
  const b = await bundleAgent(outDir);
  for (const f of [b.agent, b.worker]) {
    console.log(`${f}  ${(Deno.statSync(f).size / 1024).toFixed(0)} KiB`);
  }
}
