/**
 * The Agent: all state that outlives a request — configuration, the command table and its
 * enable rules, open file handles, the freezer, the state directory and the log. One
 * instance is passed explicitly to every handler; there is no global state.
 *
 * @module
 */

import { Audit, type AuditTarget } from "./audit.ts";
import { QgaError } from "./errors.ts";
import type { CommandTable } from "./dispatch/table.ts";
import { Freezer } from "./freezer.ts";
import type { GuestFile } from "./guest_file.ts";
import type { Logger } from "./log.ts";
import type { Platform } from "./platform/mod.ts";
import { Policy, type PolicyRules } from "./policy.ts";
import type { StateDir } from "./state.ts";

/** The parts of the configuration the agent consults at run time. */
export interface AgentOptions extends PolicyRules {
  /** `-F`: the fsfreeze hook to run with `freeze`/`thaw`, if enabled. */
  readonly fsfreezeHook?: string;
  /** `-b`: commands to disable. */
  readonly blockedRpcs: readonly string[];
  /** `-a`: when given, only these commands are enabled. */
  readonly allowedRpcs?: readonly string[];
  /** denoga's `--exclude-interfaces`: interface name patterns to leave out of replies. */
  readonly excludeInterfaces?: readonly string[];
  /** denoga's `--fsfreeze-timeout`: seconds before an auto-thaw; 0 or absent: never. */
  readonly fsfreezeTimeout?: number;
  /** denoga's `--audit-log`/`--audit`: where audit records go; absent: none are kept. */
  readonly audit?: AuditTarget;
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
  /** Frozen state, freeze and thaw (lib/freezer.ts). */
  readonly freezer: Freezer;
  /** denoga's argument policy (lib/policy.ts); every check passes when no rule is set. */
  readonly policy: Policy;
  /** denoga's audit trail (lib/audit.ts), when asked for. */
  readonly audit: Audit | undefined;

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
    this.freezer = new Freezer({
      log: init.log,
      state: init.state,
      platform: init.platform,
      hook: init.options.fsfreezeHook,
      timeoutSeconds: init.options.fsfreezeTimeout,
      frozen: init.frozen,
    });
    this.policy = new Policy(init.options, init.platform.os);
    this.audit = init.options.audit && new Audit({
      target: init.options.audit,
      log: init.log,
      os: init.platform.os,
      isFrozen: () => this.freezer.frozen,
    });
  }

  /**
   * Whether a registered command may run now: allow-list, then block-list, then the frozen
   * filter, which wins over everything (§4, qemu-ga's ga_command_is_allowed).
   */
  isEnabled(name: string): boolean {
    let allowed = true;
    if (this.options.allowedRpcs) allowed = this.options.allowedRpcs.includes(name);
    if (this.options.blockedRpcs.includes(name)) allowed = false;
    if (this.freezer.frozen) allowed = this.table.get(name)?.allowedWhileFrozen ?? false;
    return allowed;
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
