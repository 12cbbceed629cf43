/**
 * The command table: each command is declared once — name, argument and return schemas,
 * handler, success-response, allowed-while-frozen, resync — and that declaration drives argument
 * decoding, dispatch, `guest-info`, `-b help`, the README's command list and the whole-table
 * tests. The handler's return type is checked against the declared returns, so member names
 * cannot drift from the schema.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import type { ReplyValue } from "../protocol/value.ts";
import type { ArgType, DecodedMembers, Member, Returned } from "./schema.ts";

/** What a handler returns: a reply value, or undefined for "no returns" (`{}` on the wire). */
export type CommandResult = ReplyValue | undefined;

/** The handler's result type for a declared return type; `{}` (or nothing) when none is. */
export type ReturnOf<R extends ArgType | undefined> = R extends ArgType ? Returned<R> : undefined;

/** A command's declaration, typed by its argument members and return type. */
export interface CommandSpec<M extends readonly Member[], R extends ArgType | undefined> {
  /** The wire name, e.g. `guest-file-read`. */
  readonly name: string;
  /** One line for `guest-info` consumers and the README. */
  readonly summary: string;
  /** Arguments in schema order. */
  readonly args: M;
  /** The return type; absent for commands that return `{}` or nothing. */
  readonly returns?: R;
  /** False for commands that reply nothing on success (shutdown, suspend). Default true. */
  readonly successResponse?: boolean;
  /** True for the six commands that still work while filesystems are frozen (§1.2). */
  readonly allowedWhileFrozen?: boolean;
  /** True when a successful reply is preceded by the 0xFF sentinel (guest-sync-delimited). */
  readonly delimitReply?: boolean;
  /**
   * True for the commands a host resynchronises with (guest-sync, guest-sync-delimited): the
   * router may leave a stuck command behind to answer them at once.
   */
  readonly resync?: boolean;
  /** The handler. May be synchronous (fast path) or return a promise. */
  readonly run: (
    args: DecodedMembers<M>,
    agent: Agent,
  ) => ReturnOf<R> | Promise<ReturnOf<R>>;
}

/** A declared command with its argument types erased, as the router stores it. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly args: readonly Member[];
  readonly returns: ArgType | undefined;
  readonly successResponse: boolean;
  readonly allowedWhileFrozen: boolean;
  readonly delimitReply: boolean;
  readonly resync: boolean;
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
export function defineCommand<
  const M extends readonly Member[],
  const R extends ArgType | undefined = undefined,
>(spec: CommandSpec<M, R>): Command {
  // Type check only: whatever a declared return type allows is a value the writer can print.
  const run: (args: never, agent: Agent) => CommandResult | Promise<CommandResult> = spec.run;
  return {
    name: spec.name,
    summary: spec.summary,
    args: spec.args,
    returns: spec.returns,
    successResponse: spec.successResponse ?? true,
    allowedWhileFrozen: spec.allowedWhileFrozen ?? false,
    delimitReply: spec.delimitReply ?? false,
    resync: spec.resync ?? false,
    // The decoder produces exactly DecodedMembers<M> for spec.args, and every Returned<R> is a
    // ReplyValue; the cast only erases the types.
    run: run as Command["run"],
  };
}

/** Loads the commands a table does not hold yet (every family's, the ones it holds among them). */
export type RestOfTable = () => Promise<readonly Command[]>;

/**
 * The registered commands in registration (schema) order, with lookup by name. A table may
 * start with a few commands and load the rest on first need: the agent answers its first
 * request (a host's guest-sync-delimited) before it has parsed the command families.
 */
export class CommandTable {
  #commands: readonly Command[];
  #byName: Map<string, Command>;
  readonly #order: readonly string[] | undefined;
  #rest: RestOfTable | undefined;
  #loading: Promise<void> | undefined;

  /**
   * @param commands the declared commands, in any order
   * @param order every name in schema order; the table follows it. A declared command missing
   *   from it is a bug and throws; a name with no declaration is simply not registered.
   * @param rest loads the whole table, `commands` included; {@link CommandTable.rest} calls it
   */
  constructor(commands: readonly Command[], order?: readonly string[], rest?: RestOfTable) {
    this.#order = order;
    this.#rest = rest;
    [this.#commands, this.#byName] = ordered(commands, order);
  }

  /** The registered commands, in registration order (all of them once the rest is loaded). */
  get commands(): readonly Command[] {
    return this.#commands;
  }

  get(name: string): Command | undefined {
    return this.#byName.get(name);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /**
   * Undefined when every command is registered; otherwise loads the rest (once) and returns
   * the promise of it. A failed load stays failed: the program's files are incomplete.
   */
  rest(): Promise<void> | undefined {
    const rest = this.#rest;
    if (!rest) return undefined;
    if (!this.#loading) {
      this.#loading = rest().then((all) => {
        [this.#commands, this.#byName] = ordered(all, this.#order);
        this.#rest = undefined;
      });
      // Its waiters see the failure; the load started ahead of need has none.
      this.#loading.catch(() => {});
    }
    return this.#loading;
  }
}

function ordered(
  commands: readonly Command[],
  order: readonly string[] | undefined,
): [readonly Command[], Map<string, Command>] {
  const byName = new Map(commands.map((c) => [c.name, c]));
  if (byName.size !== commands.length) {
    throw new Error("duplicate command name in the command table");
  }
  if (order === undefined) return [commands, byName];
  const unordered = commands.filter((c) => !order.includes(c.name)).map((c) => c.name);
  if (unordered.length > 0) throw new Error(`not in the schema order: ${unordered.join(", ")}`);
  return [order.flatMap((name) => byName.get(name) ?? []), byName];
}
