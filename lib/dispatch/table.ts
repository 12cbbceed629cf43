/**
 * The command table: each command is declared once — name, argument schema, handler,
 * success-response, allowed-while-frozen — and that declaration drives argument decoding,
 * dispatch, `guest-info`, `-b help` and the README's command list.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import type { ReplyValue } from "../protocol/value.ts";
import type { DecodedMembers, Member } from "./schema.ts";

/** What a handler returns: a reply value, or undefined for "no returns" (`{}` on the wire). */
export type CommandResult = ReplyValue | undefined;

/** A command's declaration, typed by its argument members. */
export interface CommandSpec<M extends readonly Member[]> {
  /** The wire name, e.g. `guest-file-read`. */
  readonly name: string;
  /** One line for `guest-info` consumers and the README. */
  readonly summary: string;
  /** Arguments in schema order. */
  readonly args: M;
  /** False for commands that reply nothing on success (shutdown, suspend). Default true. */
  readonly successResponse?: boolean;
  /** True for the six commands that still work while filesystems are frozen (§1.2). */
  readonly allowedWhileFrozen?: boolean;
  /** True when a successful reply is preceded by the 0xFF sentinel (guest-sync-delimited). */
  readonly delimitReply?: boolean;
  /** The handler. May be synchronous (fast path) or return a promise. */
  readonly run: (args: DecodedMembers<M>, agent: Agent) => CommandResult | Promise<CommandResult>;
}

/** A declared command with its argument types erased, as the router stores it. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly args: readonly Member[];
  readonly successResponse: boolean;
  readonly allowedWhileFrozen: boolean;
  readonly delimitReply: boolean;
  readonly run: (
    args: Record<string, unknown>,
    agent: Agent,
  ) => CommandResult | Promise<CommandResult>;
}

/**
 * Declares a command.
 *
 * @example
 * ```ts
 * export const ping = defineCommand({
 *   name: "guest-ping",
 *   summary: "Ping the guest agent",
 *   args: [],
 *   allowedWhileFrozen: true,
 *   run: () => undefined,
 * });
 * ```
 */
export function defineCommand<const M extends readonly Member[]>(spec: CommandSpec<M>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    args: spec.args,
    successResponse: spec.successResponse ?? true,
    allowedWhileFrozen: spec.allowedWhileFrozen ?? false,
    delimitReply: spec.delimitReply ?? false,
    // The decoder produces exactly DecodedMembers<M> for spec.args; the cast only erases it.
    run: spec.run as Command["run"],
  };
}

/** The registered commands in registration (schema) order, with lookup by name. */
export class CommandTable {
  readonly commands: readonly Command[];
  readonly #byName: Map<string, Command>;

  constructor(commands: readonly Command[]) {
    this.commands = commands;
    this.#byName = new Map(commands.map((c) => [c.name, c]));
    if (this.#byName.size !== commands.length) {
      throw new Error("duplicate command name in the command table");
    }
  }

  get(name: string): Command | undefined {
    return this.#byName.get(name);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }
}
