/**
 * The command table the agent starts with. It holds the sync family, which is what a host's
 * first request (the guest-sync-delimited handshake) needs, and pings. The other families are
 * imported when a request first names one of their commands. Parsing and evaluating them is most
 * of what the agent's own start-up would otherwise cost, and a guest's boot waits for the first
 * reply (README, "Boot time"). Loading them only then, not as soon as the agent is up, also keeps
 * an agent that is only pinged at its smallest.
 *
 * @module
 */

import { CommandTable } from "../dispatch/table.ts";
import { SCHEMA_ORDER } from "./order.ts";
import { syncCommands } from "./sync.ts";

/** A table of the sync family that loads every other family on first need. */
export function startupTable(): CommandTable {
  return new CommandTable(
    syncCommands,
    SCHEMA_ORDER,
    async () => (await import("./mod.ts")).COMMANDS,
  );
}
