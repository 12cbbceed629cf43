/**
 * The command table: every family's commands, registered in the newest qemu-ga schema order
 * (qemu-ga-behaviour.md §1.1, a Linux build). `guest-info` lists it reversed, `-b help` in this
 * order. Adding a command: declare it in its family's file, list it in that family's export,
 * and make sure its name is in {@link SCHEMA_ORDER} (./order.ts). The agent itself starts with
 * ./startup.ts's table, which imports this module on first need.
 *
 * @module
 */

import { type Command, CommandTable } from "../dispatch/table.ts";
import { clockCommands } from "./clock.ts";
import { diskCommands } from "./disks/mod.ts";
import { cpuMemoryCommands } from "./cpu_memory.ts";
import { execCommands } from "./exec.ts";
import { fileCommands } from "./file.ts";
import { fsfreezeCommands } from "./fsfreeze.ts";
import { hostCommands } from "./host.ts";
import { infoCommands } from "./info.ts";
import { passwordCommands } from "./password.ts";
import { networkCommands } from "./network.ts";
import { shutdownCommands } from "./shutdown.ts";
import { sshCommands } from "./ssh.ts";
import { suspendCommands } from "./suspend.ts";
import { statsCommands } from "./stats.ts";
import { syncCommands } from "./sync.ts";
import { SCHEMA_ORDER } from "./order.ts";

export { SCHEMA_ORDER };

/** Every family's declared commands (any order: {@link SCHEMA_ORDER} decides). */
const FAMILIES: readonly (readonly Command[])[] = [
  syncCommands,
  infoCommands,
  shutdownCommands,
  fileCommands,
  fsfreezeCommands,
  suspendCommands,
  passwordCommands,
  sshCommands,
  networkCommands,
  clockCommands,
  hostCommands,
  diskCommands,
  cpuMemoryCommands,
  statsCommands,
  execCommands,
];

/** Every command denoga registers, in schema order. */
export const COMMANDS: readonly Command[] = new CommandTable(FAMILIES.flat(), SCHEMA_ORDER)
  .commands;

/** A fresh table over {@link COMMANDS}. */
export function commandTable(): CommandTable {
  return new CommandTable(COMMANDS);
}
