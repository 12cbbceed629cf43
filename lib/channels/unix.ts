/**
 * unix-listen (§6): the socket file is unlinked and re-created, exactly one client is served at
 * a time (the next one waits in the backlog until the current one disconnects), and the file
 * is left in place at exit. A failed accept() (EMFILE when the agent is out of descriptors,
 * ENOBUFS, …) does not end the agent: like qemu-ga it warns and keeps listening, retrying after
 * a short back-off where qemu-ga would spin on the still-readable socket.
 *
 * @module
 */

import { osErrorText } from "../errors.ts";
import { type Channel, type Connection, connectionOf } from "./channel.ts";

/** How long a failed accept() waits before the next try. */
const ACCEPT_BACKOFF_MS = 100;

/**
 * Opens a listening unix socket at `path`. Throws qemu-ga's text on failure.
 *
 * @example
 * ```ts
 * const channel = openUnixListen("/tmp/qga.sock");
 * const conn = await channel.accept();
 * ```
 */
export function openUnixListen(
  path: string,
  log?: { warning(msg: string): void },
): Channel {
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
  let backoff: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;
  return {
    async accept(): Promise<Connection | null> {
      let failing = false;
      for (;;) {
        if (closed) return null;
        try {
          return connectionOf(await listener.accept());
        } catch (e) {
          // A closed listener ends the channel; anything else is the kernel refusing this one.
          if (closed || e instanceof Deno.errors.BadResource) return null;
          // qemu-ga's warning, once per run of failures rather than once per retry.
          if (!failing) log?.warning(`error converting fd to gsocket: ${osErrorText(e)}`);
          failing = true;
          await new Promise<void>((resolve) => {
            backoff = { timer: setTimeout(resolve, ACCEPT_BACKOFF_MS), resolve };
          });
          backoff = undefined;
        }
      }
    },
    close() {
      if (closed) return;
      closed = true;
      if (backoff) {
        clearTimeout(backoff.timer);
        backoff.resolve();
      }
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
}
