/**
 * The operating-system services the commands use, as one facet per concern behind a typed
 * seam: tests fake only the facet a family uses ({@link fakePlatform}), the agent gets
 * {@link systemPlatform}, whose facets import their implementation the first time a command
 * calls them (an agent that only answers pings and syncs never loads the FFI layer or a
 * parser).
 *
 * Every facet method that touches a file or a filesystem returns a promise and runs off the
 * event loop (Deno's async file operations run on the runtime's blocking pool; system calls go
 * through `ffi/`), so a stuck file system makes no command other than its own wait.
 *
 * Adding a facet: declare its interface next to its implementation in `lib/platform/<name>.ts`,
 * add one member to {@link Platform} and one line to {@link systemPlatform}.
 *
 * @module
 */

import type { FileSyscalls } from "../../ffi/file.ts";
import type { FreezeSyscalls } from "../../ffi/fsfreeze.ts";
import type { MountEntry } from "../system/mounts.ts";
import type { ExecFacet } from "./exec.ts";
import type { OsFiles } from "./files.ts";
import { isExecutable, runCommand } from "./process.ts";

/** Runs a helper program the way qemu-ga's ga_run_command does; throws QgaError on failure. */
export type RunCommand = (argv: readonly string[], action: string) => Promise<void>;

/** Everything a command may ask of the OS, one facet per concern. */
export interface Platform {
  /** Guest file handles (guest-file-*): raw system calls off the event loop. */
  readonly files: FileSyscalls;
  /** FIFREEZE/FITHAW of one mount point. */
  readonly freeze: FreezeSyscalls;
  /** The fsfreeze mount list (also fsinfo and fstrim). */
  readonly mounts: () => Promise<MountEntry[]>;
  /** Helper programs (hooks, shutdown, hwclock, chpasswd, suspend). */
  readonly run: RunCommand;
  /** access(path, X_OK) */
  readonly isExecutable: (path: string) => boolean;
  /** OS files: /proc, /sys, /etc and home directories, read and written off the event loop. */
  readonly os: OsFiles;
  /** guest-exec children: GLib's program search, stdio pipes, capped output. */
  readonly exec: ExecFacet;
}

/**
 * A facet whose implementation module is imported on the first call of any of its methods.
 * Every method of `T` must return a promise (the first call awaits the import).
 */
export function lazyFacet<T extends object>(load: () => Promise<T>): T {
  let loaded: Promise<T> | undefined;
  return new Proxy({} as T, {
    get(_target, key) {
      return async (...args: unknown[]) => {
        const facet = await (loaded ??= load());
        const method = facet[key as keyof T];
        if (typeof method !== "function") throw new TypeError(`no facet method ${String(key)}`);
        return await method.apply(facet, args);
      };
    },
  });
}

/** The real platform (module comment). */
export function systemPlatform(): Platform {
  return {
    files: lazyFacet(() => import("../../ffi/file.ts").then((m) => m.fileSyscalls)),
    freeze: lazyFacet(() => import("../../ffi/fsfreeze.ts").then((m) => m.freezeSyscalls)),
    mounts: async () => (await import("../system/mounts.ts")).buildMountList(),
    run: runCommand,
    isExecutable,
    os: lazyFacet(() => import("./files.ts").then((m) => m.osFiles("/"))),
    exec: lazyFacet(() => import("./exec.ts").then((m) => m.execFacet)),
  };
}

/**
 * A platform for tests: the facets given, and every other facet throwing `not faked: <name>`
 * when a command reaches for it, so a test states exactly what a command may use.
 */
export function fakePlatform(facets: Partial<Platform>): Platform {
  const missing = (name: string) => () => {
    throw new Error(`not faked: platform.${name}`);
  };
  const refuse = <T extends object>(name: string): T =>
    new Proxy({} as T, { get: (_t, key) => missing(`${name}.${String(key)}`) });
  return {
    files: facets.files ?? refuse("files"),
    freeze: facets.freeze ?? refuse("freeze"),
    mounts: facets.mounts ?? missing("mounts"),
    run: facets.run ?? missing("run"),
    isExecutable: facets.isExecutable ?? missing("isExecutable"),
    os: facets.os ?? refuse("os"),
    exec: facets.exec ?? refuse("exec"),
  };
}
