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
import type { MountEntry, MountFiles } from "../system/mounts.ts";
import type { Clock } from "./clock.ts";
import type { DiskSyscalls } from "./disks.ts";
import type { ExecFacet } from "./exec.ts";
import type { OsFiles } from "./files.ts";
import { isExecutable, runCommand, runOutput, runStatus } from "./process.ts";
import type { NetworkFacet } from "./network.ts";
import type { HostInfo } from "./host.ts";
import { systemClock } from "./clock.ts";
import { systemHost } from "./host.ts";

/**
 * Runs a helper program the way qemu-ga's ga_run_command does, `input` (if any) on its stdin;
 * throws QgaError on failure.
 */
export type RunCommand = (
  argv: readonly string[],
  action: string,
  input?: Uint8Array,
) => Promise<void>;

/** Everything a command may ask of the OS, one facet per concern. */
export interface Platform {
  /** Guest file handles (guest-file-*): raw system calls off the event loop. */
  readonly files: FileSyscalls;
  /** FIFREEZE/FITHAW of one mount point. */
  readonly freeze: FreezeSyscalls;
  /**
   * The fsfreeze mount list (also fsinfo and fstrim); `files`: where to read the mount table
   * (a file facet holding it read ahead), by default the `os` facet.
   */
  readonly mounts: (files?: MountFiles) => Promise<MountEntry[]>;
  /** Helper programs (hooks, shutdown, hwclock, chpasswd, suspend). */
  readonly run: RunCommand;
  /** A helper's exit status, -1 when it cannot be started (qemu-ga's run_process_child). */
  readonly runStatus: (argv: readonly string[]) => Promise<number>;
  /** Runs a helper for its output (getent); undefined when it cannot be started. */
  readonly runOutput: (
    argv: readonly string[],
  ) => Promise<{ code: number; stdout: Uint8Array } | undefined>;
  /** access(path, X_OK) */
  readonly isExecutable: (path: string) => boolean;
  /** OS files: /proc, /sys, /etc and home directories, read and written off the event loop. */
  readonly os: OsFiles;
  /** Links and addresses as getifaddrs reads them (guest-network-get-interfaces). */
  readonly network: NetworkFacet;
  /** The wall clock: read it, set it (guest-get-time, guest-set-time). */
  readonly clock: Clock;
  /** Node name, environment, machine (host-information commands). */
  readonly host: HostInfo;
  /** statvfs and FITRIM of one mount point (guest-get-fsinfo, guest-fstrim). */
  readonly disks: DiskSyscalls;
  /** guest-exec children: GLib's program search, stdio pipes, capped output. */
  readonly exec: ExecFacet;
}

/**
 * A facet whose implementation module is imported on the first call of any of its methods.
 * Every method of `T` must return a promise (the first call awaits the import).
 */
export function lazyFacet<T extends object>(load: () => Promise<T>): T {
  let loaded: Promise<T> | undefined;
  let facet: T | undefined;
  // One function per method name; once loaded they call the facet without awaiting the import.
  const methods = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy({} as T, {
    get(_target, key) {
      // Not a thenable: a facet handed to `await` or returned from an async function is the
      // facet itself (a `then` wrapper would call an unknown method and never settle).
      if (key === "then") return undefined;
      let call = methods.get(key);
      if (call === undefined) {
        call = async (...args: unknown[]) => {
          facet ??= await (loaded ??= load());
          const method = facet[key as keyof T];
          if (typeof method !== "function") throw new TypeError(`no facet method ${String(key)}`);
          return await method.apply(facet, args);
        };
        methods.set(key, call);
      }
      return call;
    },
  });
}

/** The real platform (module comment). */
export function systemPlatform(): Platform {
  const os = lazyFacet(() => import("./files.ts").then((m) => m.osFiles("/")));
  let mountList: Promise<typeof import("../system/mounts.ts")> | undefined;
  return {
    files: lazyFacet(() => import("../../ffi/file.ts").then((m) => m.fileSyscalls)),
    freeze: lazyFacet(() => import("../../ffi/fsfreeze.ts").then((m) => m.freezeSyscalls)),
    mounts: async (files) =>
      (await (mountList ??= import("../system/mounts.ts"))).buildMountList(files ?? os),
    run: runCommand,
    runStatus,
    runOutput,
    isExecutable,
    os,
    network: lazyFacet(() => import("./network.ts").then((m) => m.networkFacet)),
    clock: systemClock,
    host: systemHost,
    disks: lazyFacet(() => import("./disks.ts").then((m) => m.diskSyscalls)),
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
    runStatus: facets.runStatus ?? missing("runStatus"),
    runOutput: facets.runOutput ?? missing("runOutput"),
    isExecutable: facets.isExecutable ?? missing("isExecutable"),
    os: facets.os ?? refuse("os"),
    network: facets.network ?? refuse("network"),
    clock: facets.clock ?? refuse("clock"),
    host: facets.host ?? refuse("host"),
    disks: facets.disks ?? refuse("disks"),
    exec: facets.exec ?? refuse("exec"),
  };
}
