/**
 * The operating-system services the commands use, behind one typed seam so tests can run the
 * real ones or substitute their own. The real implementations live in `ffi/`, `lib/mounts.ts`
 * and `lib/process.ts`; {@link systemPlatform} loads them on first use.
 *
 * @module
 */

import type { FileSyscalls } from "../ffi/file.ts";
import type { FreezeSyscalls } from "../ffi/fsfreeze.ts";
import type { MountEntry } from "./mounts.ts";
import { isExecutable, runCommand } from "./process.ts";

/** Runs a helper program the way qemu-ga's ga_run_command does; throws QgaError on failure. */
export type RunCommand = (argv: readonly string[], action: string) => Promise<void>;

/** Everything a command may ask of the OS. */
export interface Platform {
  readonly files: FileSyscalls;
  readonly freeze: FreezeSyscalls;
  readonly mounts: () => Promise<MountEntry[]>;
  readonly run: RunCommand;
  /** access(path, X_OK) */
  readonly isExecutable: (path: string) => boolean;
}

let files: Promise<FileSyscalls> | undefined;
let freeze: Promise<FreezeSyscalls> | undefined;

function loadFiles(): Promise<FileSyscalls> {
  return files ??= import("../ffi/file.ts").then((m) => m.fileSyscalls);
}

function loadFreeze(): Promise<FreezeSyscalls> {
  return freeze ??= import("../ffi/fsfreeze.ts").then((m) => m.freezeSyscalls);
}

/**
 * The real platform. The FFI layer (`ffi/blocking.ts`, the raw-syscall trampoline) and the
 * mount table parser are imported the first time a command needs them: an agent that only
 * answers pings and syncs never loads or evaluates them (about 0.3 MiB less idle RSS under
 * `deno run main.ts`, where every module costs some). The bundle (scripts/bundle.ts) inlines them
 * and still evaluates them only on first use.
 */
export function systemPlatform(): Platform {
  return {
    files: {
      open: async (path, flags, mode) => (await loadFiles()).open(path, flags, mode),
      fchmod: async (fd, mode) => (await loadFiles()).fchmod(fd, mode),
      read: async (fd, count) => (await loadFiles()).read(fd, count),
      write: async (fd, data) => (await loadFiles()).write(fd, data),
      lseek: async (fd, offset, whence) => (await loadFiles()).lseek(fd, offset, whence),
      close: async (fd) => (await loadFiles()).close(fd),
    },
    freeze: {
      freeze: async (mountpoint) => (await loadFreeze()).freeze(mountpoint),
      thaw: async (mountpoint) => (await loadFreeze()).thaw(mountpoint),
    },
    mounts: async () => (await import("./mounts.ts")).buildMountList(),
    run: runCommand,
    isExecutable,
  };
}
