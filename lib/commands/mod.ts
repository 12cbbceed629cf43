/**
 * The command table in registration order: the newest qemu-ga schema order
 * (qemu-ga-behaviour.md §1.1). `guest-info` lists it reversed, `-b help` in this order.
 *
 * @module
 */

import { CommandTable } from "../dispatch/table.ts";
import {
  guestFileClose,
  guestFileFlush,
  guestFileOpen,
  guestFileRead,
  guestFileSeek,
  guestFileWrite,
} from "./file.ts";
import {
  guestFsfreezeFreeze,
  guestFsfreezeFreezeList,
  guestFsfreezeStatus,
  guestFsfreezeThaw,
} from "./fsfreeze.ts";
import { guestInfo } from "./info.ts";
import { guestShutdown } from "./shutdown.ts";
import { guestPing, guestSync, guestSyncDelimited } from "./sync.ts";

/** Every command denoga registers, in schema order. */
export const COMMANDS = [
  guestSyncDelimited,
  guestSync,
  guestPing,
  guestInfo,
  guestShutdown,
  guestFileOpen,
  guestFileClose,
  guestFileRead,
  guestFileWrite,
  guestFileSeek,
  guestFileFlush,
  guestFsfreezeStatus,
  guestFsfreezeFreeze,
  guestFsfreezeFreezeList,
  guestFsfreezeThaw,
] as const;

/** A fresh table over {@link COMMANDS}. */
export function commandTable(): CommandTable {
  return new CommandTable(COMMANDS);
}
