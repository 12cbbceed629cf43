/**
 * guest-sync, guest-sync-delimited, guest-ping (§3.1, §2.8).
 *
 * @module
 */

import { defineCommand } from "../dispatch/table.ts";
import { t } from "../dispatch/schema.ts";

/** Echoes the id; the reply is preceded by 0xFF so hosts can find it in a stale stream. */
export const guestSyncDelimited = defineCommand({
  name: "guest-sync-delimited",
  summary: "Echo a unique integer, the reply preceded by a 0xFF sentinel byte",
  args: [{ name: "id", type: t.int }],
  returns: t.int,
  allowedWhileFrozen: true,
  delimitReply: true,
  resync: true,
  run: ({ id }) => id,
});

/** Echoes the id. */
export const guestSync = defineCommand({
  name: "guest-sync",
  summary: "Echo a unique integer so the host can resynchronise the stream",
  args: [{ name: "id", type: t.int }],
  returns: t.int,
  allowedWhileFrozen: true,
  resync: true,
  run: ({ id }) => id,
});

/** Returns `{}`. */
export const guestPing = defineCommand({
  name: "guest-ping",
  summary: "Ping the guest agent; a non-error reply means it is alive",
  args: [],
  allowedWhileFrozen: true,
  run: () => undefined,
});

/** The family, for the command table. */
export const syncCommands = [guestSyncDelimited, guestSync, guestPing];
