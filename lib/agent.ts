/**
 * The Agent: all state that outlives a request — configuration, the command table and its
 * enable rules, open file handles, the frozen flag, the state directory and the log. One
 * instance is passed explicitly to every handler; there is no global state.
 *
 * @module
 */

import { QgaError } from "./errors.ts";
import type { CommandTable } from "./dispatch/table.ts";
import type { GuestFile } from "./guest_file.ts";
import type { Logger } from "./log.ts";
import type { Platform } from "./platform/mod.ts";
import type { StateDir } from "./state.ts";

/** The parts of the configuration the agent consults at run time. */
export interface AgentOptions {
  /** `-F`: the fsfreeze hook to run with `freeze`/`thaw`, if enabled. */
  readonly fsfreezeHook?: string;
  /** `-b`: commands to disable. */
  readonly blockedRpcs: readonly string[];
  /** `-a`: when given, only these commands are enabled. */
  readonly allowedRpcs?: readonly string[];
  /** denoga's `--exclude-interfaces`: interface name patterns to leave out of replies. */
  readonly excludeInterfaces?: readonly string[];
}

/**
 * The agent state.
 *
 * @example
 * ```ts
 * const agent = new Agent({ table, options, state, log, platform });
 * agent.isEnabled("guest-ping"); // true
 * ```
 */
export class Agent {
  readonly table: CommandTable;
  readonly options: AgentOptions;
  readonly state: StateDir;
  readonly log: Logger;
  readonly platform: Platform;
  /** Open file handles by id (§3.2). */
  readonly files = new Map<bigint, GuestFile>();
  #frozen = false;
  /** Called after the agent leaves frozen state (deferred log file, pending SIGTERM). */
  onThawed: (() => void) | undefined;

  constructor(init: {
    table: CommandTable;
    options: AgentOptions;
    state: StateDir;
    log: Logger;
    platform: Platform;
    frozen?: boolean;
  }) {
    this.table = init.table;
    this.options = init.options;
    this.state = init.state;
    this.log = init.log;
    this.platform = init.platform;
    this.#frozen = init.frozen ?? false;
    if (this.#frozen) this.log.disable();
  }

  /** True while the agent considers filesystems frozen (it does not ask the kernel, §3.4). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /**
   * Whether a registered command may run now: allow-list, then block-list, then the frozen
   * filter, which wins over everything (§4, qemu-ga's ga_command_is_allowed).
   */
  isEnabled(name: string): boolean {
    let allowed = true;
    if (this.options.allowedRpcs) allowed = this.options.allowedRpcs.includes(name);
    if (this.options.blockedRpcs.includes(name)) allowed = false;
    if (this.#frozen) allowed = this.table.get(name)?.allowedWhileFrozen ?? false;
    return allowed;
  }

  /** Enters frozen state: marker file first, then commands off, then logging off. */
  setFrozen(): void {
    if (this.#frozen) return;
    this.log.warning("disabling logging due to filesystem freeze");
    this.#frozen = true;
    const err = this.state.createFrozenMarker();
    if (err) {
      this.log.warning(err);
      this.log.warning(
        `unable to create ${this.state.frozenMarkerPath}, fsfreeze may not function properly`,
      );
    }
    this.log.disable();
  }

  /** Leaves frozen state: logging back on, marker removed, commands re-enabled. */
  unsetFrozen(): void {
    if (!this.#frozen) return;
    this.log.enable();
    this.log.warning("logging re-enabled due to filesystem unfreeze");
    this.#frozen = false;
    const err = this.state.removeFrozenMarker();
    if (err) {
      this.log.warning(err);
      this.log.warning(
        `unable to delete ${this.state.frozenMarkerPath}, fsfreeze may not function properly`,
      );
    }
    this.onThawed?.();
  }

  /** Writes out every handle's buffered data, as exit() flushes stdio streams in qemu-ga. */
  async flushFiles(): Promise<void> {
    for (const f of this.files.values()) await f.flush().catch(() => {});
  }

  /** Looks up an open handle or throws qemu-ga's error. */
  file(handle: bigint): GuestFile {
    const f = this.files.get(handle);
    if (!f) throw new QgaError("GenericError", `handle '${handle}' has not been found`);
    return f;
  }
}
