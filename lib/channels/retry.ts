/**
 * `-r/--retry-path` (§6, qga/main.c run_agent): when the channel cannot be opened or its main
 * loop stops (virtio read error, listener gone), log, wait 5 s and open it again, for as long as
 * the agent runs. The wait is a ppoll on an eventfd on a pool thread (no timer; `close()` cuts it
 * short).
 *
 * @module
 */

import { closeFd, newEventFd, pollWait, signalEventFd } from "../../ffi/fdio.ts";
import type { Logger } from "../log.ts";
import type { Channel, Connection } from "./channel.ts";

/** qemu-ga's QGA_RETRY_INTERVAL, seconds. */
export const RETRY_INTERVAL_MS = 5000;

/** What the retrying channel needs; tests shorten the interval. */
export interface RetryOptions {
  /** Opens the underlying channel; rejects with qemu-ga's text on failure. */
  open: () => Promise<Channel>;
  /** Where the retry messages go. */
  log: Pick<Logger, "critical" | "warning" | "info">;
  /** The wait between attempts (default {@link RETRY_INTERVAL_MS}). */
  intervalMs?: number;
  /** An already opened channel (the first attempt succeeded). */
  initial?: Channel;
}

/**
 * A channel that reopens its underlying channel forever (until `close()`), logging exactly as
 * qemu-ga: on a failed open `<error>` / `failed to create guest agent channel` / `failed to
 * initialize guest agent channel` (critical), and after every stop `agent stopped unexpectedly,
 * restarting...` and `waiting for channel path...` (warning) before the 5 s wait.
 */
export function retryingChannel(opts: RetryOptions): Channel {
  const interval = opts.intervalMs ?? RETRY_INTERVAL_MS;
  let inner: Channel | undefined = opts.initial;
  let closed = false;
  let wake = -1;
  let sleeping = 0;
  const log = opts.log;

  const sleep = async () => {
    if (wake === -1) wake = newEventFd();
    sleeping++;
    try {
      await pollWait(-1, 0, wake, interval);
    } finally {
      sleeping--;
      if (closed && sleeping === 0 && wake !== -1) {
        closeFd(wake);
        wake = -1;
      }
    }
  };

  return {
    async accept(): Promise<Connection | null> {
      for (;;) {
        if (closed) return null;
        if (inner === undefined) {
          try {
            inner = await opts.open();
          } catch (e) {
            log.critical(e instanceof Error ? e.message : String(e));
            log.critical("failed to create guest agent channel");
            log.critical("failed to initialize guest agent channel");
          }
        }
        if (inner !== undefined) {
          const conn = await inner.accept();
          if (conn !== null) return conn;
          // The channel's main loop ended (§6): free it, then start over.
          inner.close();
          inner = undefined;
        }
        if (closed) return null;
        log.warning("agent stopped unexpectedly, restarting...");
        log.warning("waiting for channel path...");
        await sleep();
      }
    },
    close() {
      if (closed) return;
      closed = true;
      inner?.close();
      inner = undefined;
      if (wake !== -1) {
        signalEventFd(wake);
        if (sleeping === 0) {
          closeFd(wake);
          wake = -1;
        }
      }
    },
  };
}
