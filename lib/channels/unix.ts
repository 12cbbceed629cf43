/**
 * unix-listen (§6): the socket file is unlinked and re-created, exactly one client is served at
 * a time (the next one waits in the backlog until the current one disconnects), and the file
 * is left in place at exit.
 *
 * @module
 */

import { osErrorText } from "../errors.ts";
import { type Channel, type Connection, connectionOf } from "./channel.ts";

/**
 * Opens a listening unix socket at `path`. Throws qemu-ga's text on failure.
 *
 * @example
 * ```ts
 * const channel = openUnixListen("/tmp/qga.sock");
 * const conn = await channel.accept();
 * ```
 */
export function openUnixListen(path: string): Channel {
  try {
    Deno.removeSync(path);
  } catch {
    // no stale socket
  }
  let listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>;
  try {
    listener = Deno.listen({ transport: "unix", path });
  } catch (e) {
    throw new Error(`Failed to bind socket to ${path}: ${osErrorText(e)}`);
  }
  let closed = false;
  return {
    async accept(): Promise<Connection | null> {
      if (closed) return null;
      try {
        return connectionOf(await listener.accept());
      } catch {
        return null;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
}
