/**
 * `deno task compile`: builds the single guest executable `dist/denoga` with `deno compile`, from
 * the bundled agent (scripts/bundle.ts: `dist/bundle/denoga.js`, the chunks it loads, and its
 * worker; a few modules instead of ~40, about 2 MiB less idle RSS under `deno run`):
 *
 * ```
 * deno compile -A --no-prompt --no-config --no-code-cache \
 *   --include dist/bundle/syscall_worker.js \
 *   --output dist/denoga dist/bundle/denoga.js
 * ```
 *
 * - `--include dist/bundle/syscall_worker.js`: the syscall worker is only referenced by URL
 *   (`new Worker(new URL("./syscall_worker.js", import.meta.url))` inside the bundle), so the
 *   module graph does not contain it (clients-and-peers.md §4.5). The chunks need no flag: the
 *   entry names each in a static import or in an `import()` of a string literal, which
 *   `deno compile` follows.
 * - `--no-code-cache`: the compiled binary must not write a V8 code cache to disk (it may run
 *   while file systems are frozen).
 * - `-A --no-prompt --no-config --no-code-cache` are `AGENT_RUN_FLAGS` (scripts/agent_flags.ts),
 *   the flags of every `deno run` of the agent: permissions are baked in (the agent needs /dev,
 *   /proc, /sys, FFI and subprocesses).
 *
 * `deno compile` builds on `denort`, the runtime-only Deno binary, which it downloads from
 * dl.deno.land into `$DENO_DIR/dl/release/v<version>/denort-<target>.zip` on first use. Build
 * machines without internet access need either that zip already cached, or `DENORT_BIN` set to
 * an extracted `denort` of the same version (passed through to deno compile). Without either,
 * this script stops with instructions instead of deno's network stack trace (unless
 * `--allow-download`). `DENORT_BIN` pointing at the full `deno` binary is refused: such a build
 * only starts the Deno REPL (§4.5).
 *
 * Options: `--output=PATH` (default `dist/denoga`), `--target=TRIPLE` (default: this machine),
 * `--allow-download` (let deno compile download denort when none is available), and after `--`
 * extra `deno compile` flags (e.g. `-- --v8-flags=--max-old-space-size=96`).
 *
 * Exit codes: 0 built, 1 deno compile failed or produced a broken binary, 2 usage error or no
 * usable denort.
 *
 * @module
 */

import { AGENT_RUN_FLAGS } from "./agent_flags.ts";
import { bundleAgent } from "./bundle.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const dec = new TextDecoder();

/** Where the bundle that is compiled goes (relative to the repository). */
export const BUNDLE_DIR = "dist/bundle";
/** The worker module that `deno compile` must embed explicitly. */
export const WORKER_MODULE = `${BUNDLE_DIR}/syscall_worker.js`;
/** The bundled agent, the compiled program's main module. */
export const AGENT_MODULE = `${BUNDLE_DIR}/denoga.js`;

/** Parsed command line. */
export interface CompileOptions {
  output: string;
  target: string;
  allowDownload: boolean;
  extra: string[];
}

/** Thrown for conditions that end the script with a message and exit code 2. */
export class CompileSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompileSetupError";
  }
}

/** Parses the command line (see module doc). */
export function parseCompileOptions(args: readonly string[]): CompileOptions {
  const o: CompileOptions = {
    output: "dist/denoga",
    target: Deno.build.target,
    allowDownload: false,
    extra: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      o.extra = args.slice(i + 1);
      break;
    } else if (a.startsWith("--output=")) o.output = a.slice("--output=".length);
    else if (a.startsWith("--target=")) o.target = a.slice("--target=".length);
    else if (a === "--allow-download") o.allowDownload = true;
    else {
      throw new CompileSetupError(
        `unknown option ${a}\nusage: deno task compile [--output=PATH] [--target=TRIPLE] ` +
          "[--allow-download] [-- extra deno compile flags]",
      );
    }
  }
  if (!o.output) throw new CompileSetupError("--output must not be empty");
  return o;
}

/** The zip name deno compile downloads for `target`. */
export function denortZipName(target: string): string {
  return `denort-${target}.zip`;
}

/** Where deno compile caches the denort zip of a release. */
export function cachedDenortPath(denoDir: string, version: string, target: string): string {
  return `${denoDir}/dl/release/v${version}/${denortZipName(target)}`;
}

/** The cache directory deno uses (what `deno info` reports as DENO_DIR). */
export async function denoDir(): Promise<string> {
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(30_000),
    }).output();
    if (out.success) {
      const info: unknown = JSON.parse(dec.decode(out.stdout));
      if (info !== null && typeof info === "object" && "denoDir" in info) {
        const dir = (info as { denoDir: unknown }).denoDir;
        if (typeof dir === "string" && dir) return dir;
      }
    }
  } catch {
    // fall back to deno's documented default below
  }
  const env = Deno.env.get("DENO_DIR");
  if (env) return env;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/deno`;
  return `${Deno.env.get("HOME") ?? ""}/.cache/deno`;
}

/** The instructions printed when no denort is available. */
export function missingDenortMessage(version: string, target: string, cachePath: string): string {
  const zip = denortZipName(target);
  return [
    `compile: no denort runtime available for Deno ${version} (${target}).`,
    "",
    "`deno compile` builds the executable on top of `denort` (the runtime-only Deno binary),",
    "which it downloads from dl.deno.land on first use (build machines often cannot reach it).",
    "DENORT_BIN is not set, and no denort is cached at:",
    `  ${cachePath}`,
    "",
    "To fix, on a machine with internet access download the zip of the SAME Deno version:",
    `  https://dl.deno.land/release/v${version}/${zip}`,
    `  (or https://github.com/denoland/deno/releases/download/v${version}/${zip})`,
    "then either",
    `  a) unzip it (it contains one file, \`denort\`) and run`,
    `       DENORT_BIN=/path/to/denort deno task compile`,
    "  or",
    `  b) copy the zip unchanged to ${cachePath}`,
    "     and run `deno task compile` again (deno compile then works offline).",
    "",
    "Do not point DENORT_BIN at the `deno` binary itself: the result would only start the Deno",
    "REPL. Use --allow-download to let deno compile try the download anyway.",
  ].join("\n");
}

/** ELF e_machine values of the Linux targets deno compile supports. */
const ELF_MACHINE: Readonly<Record<string, number>> = { x86_64: 62, aarch64: 183 };

async function readHead(path: string, n: number): Promise<Uint8Array> {
  const f = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = await f.read(buf.subarray(got));
      if (r === null) break;
      got += r;
    }
    return buf.subarray(0, got);
  } finally {
    f.close();
  }
}

function isZip(head: Uint8Array): boolean {
  return head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/**
 * Checks the binary `DENORT_BIN` names: it must exist, not be a zip, be an ELF of the target's
 * architecture (Linux targets), and not be the full `deno` (same file as the running deno, or
 * answering `--version` like deno does). Throws {@link CompileSetupError} with the reason.
 */
export async function checkDenortBin(path: string, target: string): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch {
    throw new CompileSetupError(`compile: DENORT_BIN=${path} does not exist`);
  }
  if (!st.isFile) throw new CompileSetupError(`compile: DENORT_BIN=${path} is not a file`);
  const head = await readHead(path, 64);
  if (isZip(head)) {
    throw new CompileSetupError(
      `compile: DENORT_BIN=${path} is a zip archive. DENORT_BIN must be the extracted binary:\n` +
        `  unzip ${path}   # gives ./denort\n  DENORT_BIN=$PWD/denort deno task compile`,
    );
  }
  if (target.includes("linux")) {
    const isElf = head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
    if (!isElf) {
      throw new CompileSetupError(
        `compile: DENORT_BIN=${path} is not a Linux executable (no ELF header)`,
      );
    }
    const want = ELF_MACHINE[target.split("-")[0]];
    const machine = head.length >= 20 ? head[18] | (head[19] << 8) : -1;
    if (want !== undefined && machine !== want) {
      throw new CompileSetupError(
        `compile: DENORT_BIN=${path} is built for another architecture ` +
          `(ELF machine ${machine}, ${target} needs ${want})`,
      );
    }
  }
  const refuseFullDeno = (why: string) =>
    new CompileSetupError(
      `compile: DENORT_BIN=${path} is the full \`deno\` binary (${why}), not \`denort\`.\n` +
        "A binary built on it ignores the embedded program and starts the Deno REPL.\n" +
        `Get denort-${target}.zip for Deno ${Deno.version.deno}, unzip it, and point ` +
        "DENORT_BIN at the `denort` file inside.",
    );
  try {
    const self = await Deno.realPath(Deno.execPath());
    if ((await Deno.realPath(path)) === self) throw refuseFullDeno("the deno running this script");
  } catch (e) {
    if (e instanceof CompileSetupError) throw e;
  }
  if (target === Deno.build.target) {
    // denort is not a CLI: it does not answer `--version` with deno's version banner.
    try {
      const out = await new Deno.Command(path, {
        args: ["--version"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(10_000),
      }).output();
      const text = dec.decode(out.stdout);
      if (out.success && /^deno \d+\.\d+\.\d+/m.test(text) && /typescript \d/m.test(text)) {
        throw refuseFullDeno(`\`--version\` says ${text.split("\n")[0].trim()}`);
      }
    } catch (e) {
      if (e instanceof CompileSetupError) throw e;
      // Could not run it (timeout, not executable): deno compile reads it, not runs it.
    }
  }
}

/** Where the denort for this build comes from. */
export type DenortSource =
  | { kind: "env"; path: string }
  | { kind: "cache"; path: string }
  | { kind: "download" };

/**
 * Finds the denort deno compile will use: `DENORT_BIN` (checked), else the cached zip, else
 * (only with `allowDownload`) deno's own download; otherwise throws the instructions.
 */
export async function resolveDenort(o: CompileOptions): Promise<DenortSource> {
  const env = Deno.env.get("DENORT_BIN");
  if (env) {
    await checkDenortBin(env, o.target);
    return { kind: "env", path: env };
  }
  const cache = cachedDenortPath(await denoDir(), Deno.version.deno, o.target);
  try {
    const st = await Deno.stat(cache);
    if (st.isFile && st.size > 0 && isZip(await readHead(cache, 4))) {
      return { kind: "cache", path: cache };
    }
  } catch {
    // not cached
  }
  if (o.allowDownload) return { kind: "download" };
  throw new CompileSetupError(missingDenortMessage(Deno.version.deno, o.target, cache));
}

/** The `deno compile` arguments for `o`. */
export function compileArgs(o: CompileOptions): string[] {
  // The flags every `deno run` of the agent uses, so the binary behaves as the tests' agent does.
  const args = ["compile", ...AGENT_RUN_FLAGS, "--include", WORKER_MODULE];
  if (o.target !== Deno.build.target) args.push("--target", o.target);
  args.push(...o.extra, "--output", o.output, AGENT_MODULE);
  return args;
}

/** Something bytes can be written to (Deno.stderr). */
interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

/** Copies a stream to `to` and returns it as text. */
async function pump(from: ReadableStream<Uint8Array>, to: ByteSink | null): Promise<string> {
  const d = new TextDecoder();
  let text = "";
  for await (const chunk of from) {
    text += d.decode(chunk, { stream: true });
    if (to) {
      let off = 0;
      while (off < chunk.length) off += await to.write(chunk.subarray(off));
    }
  }
  return text;
}

/**
 * Runs the compiled binary with `--version` and checks it is the agent (it prints
 * `QEMU Guest Agent ...`), not a REPL or a crash. Returns a problem description, or null.
 */
async function smokeTest(binary: string): Promise<string | null> {
  try {
    const out = await new Deno.Command(binary, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const text = dec.decode(out.stdout) + dec.decode(out.stderr);
    if (out.success && /QEMU Guest Agent/.test(text)) return null;
    if (/REPL|exit using ctrl/i.test(text)) {
      return "the binary starts the Deno REPL: it was built on the full deno, not denort";
    }
    return `\`${binary} --version\` did not print the agent version (exit ${out.code}):\n${text}`;
  } catch (e) {
    return `could not run ${binary}: ${(e as Error).message}`;
  }
}

/** Runs the whole build; returns the process exit code. */
export async function runCompile(args: readonly string[]): Promise<number> {
  let o: CompileOptions;
  let source: DenortSource;
  try {
    o = parseCompileOptions(args);
    source = await resolveDenort(o);
  } catch (e) {
    if (e instanceof CompileSetupError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const where = source.kind === "download" ? "download from dl.deno.land" : source.path;
  console.error(`compile: denort (${source.kind}): ${where}`);
  const output = o.output.startsWith("/") ? o.output : `${ROOT}/${o.output}`;
  await Deno.mkdir(output.replace(/\/[^/]*$/, "") || "/", { recursive: true });
  const bundle = await bundleAgent(`${ROOT}/${BUNDLE_DIR}`);
  console.error(`compile: bundled ${bundle.files.join(" ")}`);
  const argv = compileArgs({ ...o, output });
  console.error(`compile: deno ${argv.join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: argv,
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  const [stderr, status] = await Promise.all([pump(child.stderr, Deno.stderr), child.status]);
  if (!status.success) {
    if (/dl\.deno\.land|error sending request|dns error/.test(stderr)) {
      console.error(
        "\n" + missingDenortMessage(
          Deno.version.deno,
          o.target,
          cachedDenortPath(
            await denoDir(),
            Deno.version.deno,
            o.target,
          ),
        ),
      );
    }
    console.error(`compile: deno compile failed (exit ${status.code})`);
    return 1;
  }
  const size = (await Deno.stat(output)).size;
  console.error(`compile: wrote ${output} (${(size / 1024 / 1024).toFixed(1)} MiB)`);
  if (o.target === Deno.build.target) {
    const problem = await smokeTest(output);
    if (problem) {
      console.error(`compile: ${problem}`);
      return 1;
    }
    console.error("compile: smoke test passed (--version prints the agent version)");
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await runCompile(Deno.args));
}
