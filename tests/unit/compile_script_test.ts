/**
 * `scripts/compile.ts` without a denort runtime: it must stop with instructions (exit 2), not
 * with deno compile's network stack trace. Runs offline: DENORT_BIN is removed from the
 * environment and DENO_DIR is an empty temp dir, so nothing is cached.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { AGENT_RUN_FLAGS } from "../../scripts/agent_flags.ts";
import { AGENT_SOURCE, bundlePaths } from "../../scripts/bundle.ts";
import { agentCommand } from "../integration/harness.ts";
import {
  AGENT_MODULE,
  BUNDLE_DIR,
  cachedDenortPath,
  compileArgs,
  parseCompileOptions,
  WORKER_MODULE,
} from "../../scripts/compile.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const SCRIPT = `${ROOT}/scripts/compile.ts`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compile script with `DENORT_BIN` as given (or unset) and DENO_DIR = `denoDir`. */
async function runScript(denoDir: string, denortBin: string | null, args: string[]): Promise<Run> {
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  if (denortBin !== null) env.DENORT_BIN = denortBin;
  env.DENO_DIR = denoDir;
  env.NO_COLOR = "1";
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", "--config", `${ROOT}/deno.json`, SCRIPT, ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function withTempDirs(fn: (denoDir: string, outDir: string) => Promise<void>) {
  const denoDir = await Deno.makeTempDir({ prefix: "denoga-compile-denodir-" });
  const outDir = await Deno.makeTempDir({ prefix: "denoga-compile-out-" });
  try {
    await fn(denoDir, outDir);
  } finally {
    await Deno.remove(denoDir, { recursive: true }).catch(() => {});
    await Deno.remove(outDir, { recursive: true }).catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("compile script: no DENORT_BIN and nothing cached → clear failure, exit 2", async () => {
  await withTempDirs(async (denoDir, outDir) => {
    const output = `${outDir}/denoga`;
    const r = await runScript(denoDir, null, [`--output=${output}`]);
    const cache = cachedDenortPath(denoDir, Deno.version.deno, Deno.build.target);
    assertEquals(r.code, 2, `exit code; stderr:\n${r.stderr}`);
    assertOk(r.stderr.includes("no denort runtime available"), r.stderr);
    assertOk(r.stderr.includes("DENORT_BIN=/path/to/denort deno task compile"), r.stderr);
    assertOk(r.stderr.includes(cache), `mentions the cache path ${cache}:\n${r.stderr}`);
    assertOk(
      r.stderr.includes(`/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`),
      `names the zip to download:\n${r.stderr}`,
    );
    assertOk(!/stack backtrace|error sending request|dns error/i.test(r.stderr), r.stderr);
    assertOk(!(await exists(output)), "nothing written");
  });
});

Deno.test("compile script: DENORT_BIN pointing at the full deno binary is refused", async () => {
  await withTempDirs(async (denoDir, outDir) => {
    const r = await runScript(denoDir, Deno.execPath(), [`--output=${outDir}/denoga`]);
    assertEquals(r.code, 2, `exit code; stderr:\n${r.stderr}`);
    assertOk(r.stderr.includes("is the full `deno` binary"), r.stderr);
    assertOk(r.stderr.includes("REPL"), r.stderr);
    assertOk(!(await exists(`${outDir}/denoga`)), "nothing written");
  });
});

Deno.test("compile script: DENORT_BIN pointing at the zip is refused with unzip advice", async () => {
  await withTempDirs(async (denoDir, outDir) => {
    const zip = `${outDir}/denort-${Deno.build.target}.zip`;
    await Deno.writeFile(zip, Uint8Array.of(0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0));
    const r = await runScript(denoDir, zip, [`--output=${outDir}/denoga`]);
    assertEquals(r.code, 2, `exit code; stderr:\n${r.stderr}`);
    assertOk(r.stderr.includes("is a zip archive"), r.stderr);
    assertOk(r.stderr.includes("unzip"), r.stderr);
  });
});

Deno.test("compile script: unknown option → usage, exit 2", async () => {
  await withTempDirs(async (denoDir) => {
    const r = await runScript(denoDir, null, ["--bogus"]);
    assertEquals(r.code, 2);
    assertOk(r.stderr.includes("usage: deno task compile"), r.stderr);
  });
});

Deno.test("compile script: deno compile arguments embed the worker and disable the code cache", () => {
  const args = compileArgs(parseCompileOptions([]));
  assertEquals(args[0], "compile");
  assertOk(args.includes("-A"));
  assertOk(args.includes("--no-code-cache"));
  assertEquals(args[args.indexOf("--include") + 1], WORKER_MODULE);
  assertEquals(args[args.indexOf("--output") + 1], "dist/denoga");
  assertEquals(args[args.length - 1], AGENT_MODULE);
  assertOk(!args.includes("--target"), "host target needs no --target");
  const cross = compileArgs(
    parseCompileOptions(["--target=aarch64-unknown-linux-gnu", "--", "--v8-flags=--foo"]),
  );
  assertEquals(cross[cross.indexOf("--target") + 1], "aarch64-unknown-linux-gnu");
  assertOk(cross.indexOf("--v8-flags=--foo") < cross.indexOf(AGENT_MODULE));
});

Deno.test("compile script: cache path is deno's dl/release layout", () => {
  assertEquals(
    cachedDenortPath("/d", "2.9.6", "x86_64-unknown-linux-gnu"),
    "/d/dl/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  );
});

Deno.test("compile script: the binary is built like every `deno run` of the agent", () => {
  const args = compileArgs(parseCompileOptions([]));
  // The same flags, in the same order, as the tests' `deno run` form (harness agentCommand).
  const run = agentCommand("denoga", ["-V"]);
  const flags = run.slice(2, run.indexOf("-V") - 1);
  assertEquals(flags, [...AGENT_RUN_FLAGS]);
  assertEquals(args.slice(1, 1 + AGENT_RUN_FLAGS.length), [...AGENT_RUN_FLAGS]);
  // The same entry point: the tests run main.ts, the binary embeds main.ts's bundle.
  if (!Deno.env.get("DENOGA_BIN")) {
    assertEquals(run[run.indexOf("-V") - 1], `${ROOT}/${AGENT_SOURCE}`);
  }
  assertEquals(AGENT_MODULE, bundlePaths(BUNDLE_DIR).agent);
  assertEquals(WORKER_MODULE, bundlePaths(BUNDLE_DIR).worker);
});
