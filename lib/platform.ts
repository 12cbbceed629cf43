/**
 * The operating-system services the commands use, behind one typed seam so tests can run the
 * real ones or substitute their own. The real implementations live in `ffi/`, `lib/mounts.ts`
 * and `lib/process.ts`.
 *
 * @module
 */

import type { FileSyscalls } from "../ffi/file.ts";
import type { FreezeSyscalls } from "../ffi/fsfreeze.ts";
import type { MountEntry } from "./mounts.ts";

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
