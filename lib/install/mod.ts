/**
 * `denoga install` / `denoga uninstall`: puts this program, the systemd unit and the udev rule
 * into a system (or, with `--root`, into a mounted image), idempotently, and removes exactly what
 * it put there. Not part of the agent: no request ever reaches this code, so it may take its time.
 *
 * @module
 */

import { type InstallOptions, installUsage, parseInstallArgs } from "./args.ts";
import {
  bundleModules,
  type Entry,
  installEntries,
  PORT_PATH,
  type Program,
  programPaths,
  type Source,
  STATE_DIR,
  UNIT_NAME,
} from "./files.ts";

/** Runs a system command (systemctl, udevadm); returns its exit code and error output. */
export type CommandRunner = (argv: string[]) => Promise<{ code: number; stderr: string }>;

/** What the installer needs from its surroundings; tests replace the parts they watch. */
export interface InstallEnv {
  /** The program to install (from the running process by default). */
  program: () => Program;
  /** Runs systemctl/udevadm; only called when the root is `/`. */
  run: CommandRunner;
  /** Whether the agent's port exists now (start the service only then). */
  portExists: () => Promise<boolean>;
  /** Progress lines. */
  say: (line: string) => void;
  /** Where this process sees the filesystem `--root` is resolved in (`/`; tests move it). */
  fsRoot?: string;
  /**
   * Runs the installed launcher once, its output discarded ({@link warmCache}); absent: never.
   * Whether the process may chroot is asked of `mayChroot`.
   */
  warm?: { run: CommandRunner; mayChroot: () => boolean };
}

/** Thrown for a condition the user must fix; the message is printed as is. */
export class InstallError extends Error {}

/** The program this process is: the compiled binary, or Deno running the bundle. */
export function runningProgram(): Program {
  if (Deno.build.standalone) return { form: "compiled", binary: Deno.execPath() };
  const main = new URL(Deno.mainModule);
  if (main.protocol !== "file:" || !main.pathname.endsWith(".js")) {
    throw new InstallError(
      "install copies the program that runs it: the compiled binary (deno task compile) or the " +
        "bundle (deno task bundle, then deno run -A dist/bundle/denoga.js install), not " +
        decodeURIComponent(main.pathname),
    );
  }
  const bundle = decodeURIComponent(main.pathname);
  let modules: string[];
  try {
    modules = bundleModules(bundle).slice(1);
  } catch (e) {
    throw new InstallError(`the bundle is incomplete: ${(e as Error).message}`);
  }
  return { form: "bundle", deno: Deno.execPath(), bundle, modules };
}

async function runSystemCommand(
  argv: string[],
  stdout: "inherit" | "null" = "inherit",
): Promise<{ code: number; stderr: string }> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout,
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } catch (e) {
    return { code: 127, stderr: (e as Error).message };
  }
}

/** The real surroundings. */
export function systemEnv(): InstallEnv {
  return {
    program: runningProgram,
    run: (argv) => runSystemCommand(argv),
    portExists: () => Deno.stat(PORT_PATH).then(() => true, () => false),
    say: (line) => console.log(line),
    warm: { run: (argv) => runSystemCommand(argv, "null"), mayChroot: () => Deno.uid() === 0 },
  };
}

/**
 * The first `deno run` of a file analyses it for imports (a second full parse of the bundle)
 * and caches the result in Deno's cache directory, keyed by the file's path and contents: done
 * here, it is not part of the agent's first start after boot. The installed launcher runs once,
 * as the target system will run it: directly, or in a chroot of `--root` (the image's own Deno,
 * its paths, with nothing of the installer's environment), into a fresh `deno-dir` beside the
 * bundle, which the launcher copies to tmpfs under systemd. Without either, the first start does
 * the same work itself.
 */
async function warmCache(o: InstallOptions, env: InstallEnv, base: string): Promise<void> {
  const warm = env.warm;
  if (!warm) return;
  const paths = programPaths(o.prefix);
  const run = [`DENO_DIR=${paths.denoDir}`, paths.sbin, "--version"];
  let argv: string[];
  // Not under systemd's runtime directory even if the installer is: the launcher would
  // otherwise fill that instead.
  if (o.root === "/") argv = ["env", "-u", "RUNTIME_DIRECTORY", ...run];
  else if (warm.mayChroot()) argv = ["chroot", base, "env", "-i", "HOME=/root", ...run];
  else {
    env.say("first start analyses the bundle itself (caching it ahead needs root, for chroot)");
    return;
  }
  await removeDenoDir(o, base);
  const r = await warm.run(argv);
  env.say(
    r.code === 0
      ? "Deno's analysis of the bundle cached for the first start"
      : `first start analyses the bundle itself (${argv.join(" ")}: exit ${r.code}${
        r.stderr.trim() ? `, ${r.stderr.trim().split("\n")[0]}` : ""
      })`,
  );
}

/** Removes the cache {@link warmCache} fills; whether there was one. */
async function removeDenoDir(o: InstallOptions, base: string): Promise<boolean> {
  const dir = base + programPaths(o.prefix).denoDir;
  if (!(await lstatOrNull(dir))) return false;
  await Deno.remove(dir, { recursive: true });
  return true;
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Whether the file at `path` holds exactly `bytes` / the bytes of `other`, chunk by chunk. */
async function sameBytes(path: string, source: Source): Promise<boolean> {
  const a = await Deno.open(path, { read: true });
  const b = source.kind === "copy" ? await Deno.open(source.from, { read: true }) : undefined;
  const text = source.kind === "text" ? new TextEncoder().encode(source.text) : undefined;
  try {
    const sizeA = (await a.stat()).size;
    const sizeB = b ? (await b.stat()).size : text!.length;
    if (sizeA !== sizeB) return false;
    const bufA = new Uint8Array(1 << 20);
    const bufB = new Uint8Array(1 << 20);
    for (let off = 0; off < sizeA;) {
      const n = await readFull(a, bufA);
      if (n === 0) return false;
      const other = b ? bufB.subarray(0, await readFull(b, bufB.subarray(0, n))) : text!.subarray(
        off,
        off + n,
      );
      if (other.length !== n) return false;
      for (let i = 0; i < n; i++) if (bufA[i] !== other[i]) return false;
      off += n;
    }
    return true;
  } finally {
    a.close();
    b?.close();
  }
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const n = await f.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got;
}

/** Creates the missing directories of `dir` (host path); returns those it created, outer first. */
async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; d !== "/" && d !== ""; d = d.replace(/\/[^/]*$/, "") || "/") {
    if (await lstatOrNull(d)) break;
    missing.unshift(d);
  }
  for (const d of missing) await Deno.mkdir(d, { mode: 0o755 });
  return missing;
}

/** Writes one entry unless it is already in place; returns whether it changed anything. */
async function place(host: string, entry: Entry): Promise<boolean> {
  const st = await lstatOrNull(host);
  if (entry.kind === "symlink") {
    if (st?.isSymlink && (await Deno.readLink(host)) === entry.target) return false;
    if (st) await Deno.remove(host);
    await Deno.symlink(entry.target, host);
    return true;
  }
  if (
    st?.isFile && ((st.mode ?? 0) & 0o7777) === entry.mode && await sameBytes(host, entry.source)
  ) return false;
  // Write beside it and rename over it: a running binary is replaced, not overwritten.
  const tmp = `${host}.denoga-new`;
  if (entry.source.kind === "copy") await Deno.copyFile(entry.source.from, tmp);
  else await Deno.writeTextFile(tmp, entry.source.text);
  await Deno.chmod(tmp, entry.mode);
  await Deno.rename(tmp, host);
  return true;
}

/** The prefix that turns a target-system path into one this process can open. */
function baseOf(o: InstallOptions, env: InstallEnv): string {
  return `${env.fsRoot ?? ""}${o.root}`.replace(/\/+$/, "");
}

/** Reads the manifest: the files and then (after a blank line) the directories install made. */
async function readManifest(host: string): Promise<{ files: string[]; dirs: string[] } | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(host);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const [files, dirs = ""] = text.split("\n\n");
  const lines = (s: string) => s.split("\n").filter((l) => l.startsWith("/"));
  return { files: lines(files), dirs: lines(dirs) };
}

async function systemctl(env: InstallEnv, ...args: string[]): Promise<void> {
  const argv = ["systemctl", ...args];
  const r = await env.run(argv);
  if (r.code !== 0) {
    throw new InstallError(`${argv.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
}

async function reloadUdev(env: InstallEnv): Promise<void> {
  const r = await env.run(["udevadm", "control", "--reload"]);
  if (r.code !== 0) {
    throw new InstallError(`udevadm control --reload failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
}

/** Installs; returns the exit code. */
export async function install(o: InstallOptions, env: InstallEnv): Promise<number> {
  const program = env.program();
  const base = baseOf(o, env);
  const at = (p: string) => base + p;
  const paths = programPaths(o.prefix);
  const entries = installEntries(program, o.prefix, !o.noEnable);
  const old = await readManifest(at(paths.manifest));
  const createdDirs = new Set(old?.dirs ?? []);
  let changed = false;
  for (const entry of entries) {
    const host = at(entry.path);
    for (const d of await makeDirs(host.replace(/\/[^/]*$/, ""))) {
      createdDirs.add(d.slice(base.length));
    }
    const did = await place(host, entry);
    changed ||= did;
    env.say(`${did ? "installed" : "unchanged"} ${entry.path}`);
  }
  // Files of an earlier install in the other form (binary ⇄ Deno + bundle) go.
  const now = new Set(entries.map((e) => e.path));
  for (const stale of old?.files ?? []) {
    if (now.has(stale)) continue;
    await Deno.remove(at(stale)).catch(() => {});
    env.say(`removed ${stale}`);
    changed = true;
  }
  for (const d of await makeDirs(at(paths.libDir))) {
    createdDirs.add(d.slice(base.length));
  }
  const dirs = [...createdDirs].sort((a, b) => a.length - b.length);
  const manifest = [...now].join("\n") + "\n\n" + dirs.join("\n") + "\n";
  await place(at(paths.manifest), {
    kind: "file",
    path: paths.manifest,
    mode: 0o644,
    source: { kind: "text", text: manifest },
  });
  if (program.form === "bundle") await warmCache(o, env, base || "/");
  if (o.root !== "/") {
    env.say(
      o.noEnable
        ? `${UNIT_NAME} is installed in ${o.root}, disabled (--no-enable)`
        : `${UNIT_NAME} is enabled in ${o.root}; it starts when the guest agent port appears`,
    );
    return 0;
  }
  await systemctl(env, "daemon-reload");
  await reloadUdev(env);
  if (o.noEnable) {
    env.say(`${UNIT_NAME} installed, disabled (--no-enable)`);
  } else if (o.noStart) {
    env.say(`${UNIT_NAME} enabled, not started (--no-start)`);
  } else if (await env.portExists()) {
    await systemctl(env, changed ? "restart" : "start", UNIT_NAME);
    env.say(`${UNIT_NAME} ${changed ? "(re)started" : "running"}`);
  } else {
    env.say(`${UNIT_NAME} enabled; it starts when ${PORT_PATH} appears`);
  }
  return 0;
}

/** Uninstalls what the manifest lists (or, without one, what install would have put there). */
export async function uninstall(o: InstallOptions, env: InstallEnv): Promise<number> {
  const paths = programPaths(o.prefix);
  const base = baseOf(o, env);
  const at = (p: string) => base + p;
  const manifest = await readManifest(at(paths.manifest));
  const files = manifest?.files ??
    [
      ...installEntries({ form: "bundle", deno: "", bundle: "", modules: [] }, o.prefix),
      ...installEntries({ form: "compiled", binary: "" }, o.prefix),
    ].map((e) => e.path);
  if (o.root === "/") {
    // Stopping fails harmlessly when the unit is not loaded or systemd is not running.
    await env.run(["systemctl", "stop", UNIT_NAME]);
  }
  for (const f of new Set([...files, paths.manifest])) {
    const host = at(f);
    if (!(await lstatOrNull(host))) continue;
    await Deno.remove(host);
    env.say(`removed ${f}`);
  }
  if (await removeDenoDir(o, base)) env.say(`removed ${paths.denoDir}/`);
  // Directories install created, innermost first, if nothing else has moved in.
  for (const d of (manifest?.dirs ?? [paths.libDir]).sort((a, b) => b.length - a.length)) {
    try {
      await Deno.remove(at(d));
      env.say(`removed ${d}/`);
    } catch {
      // not empty, or already gone
    }
  }
  if (o.purge && await lstatOrNull(at(STATE_DIR))) {
    await Deno.remove(at(STATE_DIR), { recursive: true });
    env.say(`removed ${STATE_DIR}/`);
  }
  if (o.root === "/") {
    await systemctl(env, "daemon-reload");
    await reloadUdev(env);
  }
  return 0;
}

/** Entry point of both subcommands: `args` starts with `install` or `uninstall`. */
export async function runInstallCommand(
  args: readonly string[],
  prog = "denoga",
  env: InstallEnv = systemEnv(),
): Promise<number> {
  const parsed = parseInstallArgs(args, prog);
  if (parsed.kind === "exit") {
    if (parsed.stdout) await Deno.stdout.write(new TextEncoder().encode(parsed.stdout));
    if (parsed.stderr) await Deno.stderr.write(new TextEncoder().encode(parsed.stderr));
    return parsed.code;
  }
  try {
    const o = parsed.options;
    return o.action === "install" ? await install(o, env) : await uninstall(o, env);
  } catch (e) {
    if (e instanceof InstallError) {
      console.error(`${prog} ${parsed.options.action}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

export { installUsage };
