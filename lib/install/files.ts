/**
 * What `denoga install` puts where. The unit and the udev rule are data files under packaging/,
 * imported as text so the bundle and the compiled binary carry them.
 *
 * @module
 */

import unitTemplate from "../../packaging/systemd/denoga.service" with { type: "text" };
import udevRule from "../../packaging/udev/60-denoga.rules" with { type: "text" };
import { AGENT_RUN_ENV, AGENT_RUN_FLAGS } from "../run_flags.ts";

/** The unit's name. */
export const UNIT_NAME = "denoga.service";
/** Target-system path of the unit. */
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
/** Target-system path of the udev rule. */
export const UDEV_RULE_PATH = "/etc/udev/rules.d/60-denoga.rules";
/** The device unit of the agent's port; `[Install] WantedBy=` names it. */
export const PORT_DEVICE_UNIT = "dev-virtio\\x2dports-org.qemu.guest_agent.0.device";
/** The port itself. */
export const PORT_PATH = "/dev/virtio-ports/org.qemu.guest_agent.0";
/** Where `systemctl enable` would link the unit. */
export const ENABLE_LINK = `/etc/systemd/system/${PORT_DEVICE_UNIT}.wants/${UNIT_NAME}`;
/** The state directory the unit gives the agent (`RuntimeDirectory=denoga`). */
export const STATE_DIR = "/run/denoga";

/** Where a file's bytes come from. */
export type Source = { kind: "text"; text: string } | { kind: "copy"; from: string };

/** One thing installed into the target system (paths are as the target system sees them). */
export type Entry =
  | { kind: "file"; path: string; mode: number; source: Source }
  | { kind: "symlink"; path: string; target: string };

/**
 * The program being installed: this compiled binary, or Deno + the bundle it runs (`modules`:
 * the bundle's other files, siblings of `bundle`, {@link bundleModules}).
 */
export type Program =
  | { form: "compiled"; binary: string }
  | { form: "bundle"; deno: string; bundle: string; modules: string[] };

/** A relative module specifier in the bundle's code: a sibling file (chunks, the worker). */
const SIBLING_MODULE = /["'`]\.\/([\w.-]+\.js)["'`]/g;

/**
 * The files of the bundle whose entry is `entry`: the entry, then every sibling file its code
 * names, transitively (static and dynamic imports of chunks, the worker's URL). Every file
 * named must exist: a bundle missing one is incomplete.
 */
export function bundleModules(entry: string): string[] {
  const dir = entry.replace(/[^/]*$/, "");
  const files = [entry];
  for (let i = 0; i < files.length; i++) {
    for (const m of Deno.readTextFileSync(files[i]).matchAll(SIBLING_MODULE)) {
      const file = dir + m[1];
      if (!files.includes(file)) files.push(file);
    }
  }
  return files;
}

/** Target-system paths under `prefix`. */
export function programPaths(prefix: string) {
  const p = prefix === "/" ? "" : prefix;
  return {
    sbin: `${p}/sbin/denoga`,
    libDir: `${p}/lib/denoga`,
    deno: `${p}/lib/denoga/deno`,
    bundle: `${p}/lib/denoga/denoga.js`,
    /** Deno's cache as install leaves it, with its analysis of the bundle ({@link launcherText}). */
    denoDir: `${p}/lib/denoga/deno-dir`,
    manifest: `${p}/lib/denoga/installed-files`,
  };
}

/** Quotes a word for /bin/sh. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

/**
 * The launcher of the Deno + bundle form: the same `deno run` every test uses.
 *
 * Under systemd (`$RUNTIME_DIRECTORY`, the unit's tmpfs state directory) Deno's cache moves
 * there, copied once per boot from the one install filled: `deno run` opens its cache databases
 * for writing as it starts, and a write to a frozen filesystem blocks. A start while `/` is
 * frozen (the agent restarted after a crash) would otherwise never get to answer the thaw.
 */
export function launcherText(prefix: string): string {
  const p = programPaths(prefix);
  const argv = [p.deno, "run", ...AGENT_RUN_FLAGS, p.bundle].map(shellQuote).join(" ");
  const env = Object.entries(AGENT_RUN_ENV).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`);
  const seed = shellQuote(p.denoDir);
  return "#!/bin/sh\n" + env.join("") +
    'if [ -n "$RUNTIME_DIRECTORY" ]; then\n' +
    '  export DENO_DIR="$RUNTIME_DIRECTORY/deno-dir"\n' +
    `  [ -d "$DENO_DIR" ] || { cp -R ${seed} "$DENO_DIR.$$" 2>/dev/null && ` +
    'mv "$DENO_DIR.$$" "$DENO_DIR"; } || rm -rf "$DENO_DIR.$$"\n' +
    "fi\n" +
    `exec ${argv} "$@"\n`;
}

/** The unit, its ExecStart pointing at `prefix`. */
export function unitText(prefix: string): string {
  return unitTemplate.replaceAll("@SBINDIR@", programPaths(prefix).sbin.replace(/\/denoga$/, ""));
}

/** The udev rule (the same for any prefix). */
export function udevRuleText(): string {
  return udevRule;
}

/**
 * Everything `install` places, in order (the manifest comes last, written by the installer);
 * without `enable`, not the link `systemctl enable` makes, so nothing starts the unit.
 */
export function installEntries(program: Program, prefix: string, enable = true): Entry[] {
  const p = programPaths(prefix);
  const entries: Entry[] = [];
  if (program.form === "compiled") {
    entries.push({ kind: "file", path: p.sbin, mode: 0o755, source: copy(program.binary) });
  } else {
    entries.push(
      { kind: "file", path: p.deno, mode: 0o755, source: copy(program.deno) },
      { kind: "file", path: p.bundle, mode: 0o644, source: copy(program.bundle) },
      ...program.modules.map((m): Entry => ({
        kind: "file",
        path: `${p.libDir}/${m.replace(/.*\//, "")}`,
        mode: 0o644,
        source: copy(m),
      })),
      { kind: "file", path: p.sbin, mode: 0o755, source: text(launcherText(prefix)) },
    );
  }
  entries.push(
    { kind: "file", path: UNIT_PATH, mode: 0o644, source: text(unitText(prefix)) },
    { kind: "file", path: UDEV_RULE_PATH, mode: 0o644, source: text(udevRuleText()) },
  );
  if (enable) entries.push({ kind: "symlink", path: ENABLE_LINK, target: UNIT_PATH });
  return entries;
}

function copy(from: string): Source {
  return { kind: "copy", from };
}

function text(t: string): Source {
  return { kind: "text", text: t };
}
