/**
 * Channel selection (§5.1, §6): `-m`/`-p`, systemd socket activation and `-r/--retry-path`
 * behind one call, with qemu-ga's error texts. `main.ts` logs a thrown error's message and then
 * `failed to initialize guest agent channel` (exit 1), as qemu-ga does.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Channel } from "./channel.ts";
import { ISA_DEFAULT_PATH, openIsaSerial } from "./isa_serial.ts";
import {
  checkSocketActivation,
  FIRST_SOCKET_ACTIVATION_FD,
  listenerChannelOnFd,
  listenFdMethod,
  openVsockListen,
} from "./listen_fd.ts";
import { retryingChannel } from "./retry.ts";
import { openUnixListen } from "./unix.ts";
import { openVirtioSerial, VIRTIO_DEFAULT_PATH } from "./virtio_serial.ts";

export type { Channel, Connection } from "./channel.ts";
export { checkSocketActivation, FIRST_SOCKET_ACTIVATION_FD, listenFdMethod };
export { ISA_DEFAULT_PATH, VIRTIO_DEFAULT_PATH };

/** The transports of `-m` (§5.1). */
export const CHANNEL_METHODS = ["virtio-serial", "isa-serial", "unix-listen", "vsock-listen"];

/** What {@link openChannel} takes. */
export interface OpenChannelOptions {
  /** `-m`: virtio-serial, isa-serial, unix-listen or vsock-listen. Ignored with `listenFd`. */
  method: string;
  /**
   * `-p`. Defaults: virtio-serial {@link VIRTIO_DEFAULT_PATH}, isa-serial
   * {@link ISA_DEFAULT_PATH}; required for unix-listen and vsock-listen (`<cid>:<port>`).
   * Ignored with `listenFd`.
   */
  path?: string;
  /**
   * A socket-activated listening fd (normally {@link FIRST_SOCKET_ACTIVATION_FD} once
   * {@link checkSocketActivation} returned 1): its family decides unix-listen or vsock-listen
   * and `method`/`path` are discarded, as in qemu-ga (§5.1).
   */
  listenFd?: number;
  /**
   * `-r`: never give up on the channel. A failed open is logged (`…`, `failed to create guest
   * agent channel`, `failed to initialize guest agent channel, will retry`) instead of thrown,
   * and a channel whose main loop stops is reopened every 5 s (`lib/channels/retry.ts`).
   */
  retryPath?: boolean;
  /** Where retry messages go. */
  log: Pick<Logger, "critical" | "warning" | "info">;
  /** Retry interval override (tests). */
  retryIntervalMs?: number;
}

/**
 * The channel method for `opts`, with socket activation applied; throws qemu-ga's texts for an
 * unknown method, a missing path or an unsupported listen fd.
 */
function opener(opts: OpenChannelOptions): () => Channel {
  if (opts.listenFd !== undefined) {
    const fd = opts.listenFd;
    const method = listenFdMethod(fd);
    if (method === null) throw new Error("unsupported listen fd type");
    // Both families are served the same way once listening (§6: unix-listen and vsock-listen
    // differ only in how the socket is made).
    let used = false;
    return () => {
      // An inherited fd exists once: after it is closed there is nothing to reopen.
      if (used) throw new Error(`error binding/listening to specified socket`);
      used = true;
      return listenerChannelOnFd(fd);
    };
  }
  const method = opts.method;
  switch (method) {
    case "virtio-serial": {
      const path = opts.path ?? VIRTIO_DEFAULT_PATH;
      return () => openVirtioSerial(path);
    }
    case "isa-serial": {
      const path = opts.path ?? ISA_DEFAULT_PATH;
      return () => openIsaSerial(path);
    }
    case "unix-listen":
    case "vsock-listen": {
      const path = opts.path;
      if (path === undefined || path === "") {
        throw new Error("must specify a path for this channel");
      }
      return method === "unix-listen" ? () => openUnixListen(path) : () => openVsockListen(path);
    }
    default:
      throw new Error(`unsupported channel method/type: ${method}`);
  }
}

/**
 * Opens the agent's channel.
 *
 * @throws Error with qemu-ga's text: `unsupported channel method/type: <m>`, `must specify a
 * path for this channel`, `unsupported listen fd type`, `error opening channel '<path>':
 * <strerror>`, `Failed to bind socket to <path>: <strerror>`, vsock address and socket errors.
 * With `retryPath` only the first three (configuration errors) are thrown.
 *
 * @example
 * ```ts
 * const channel = openChannel({ method: "virtio-serial", log });
 * for (let conn; (conn = await channel.accept()) !== null;) { ... }
 * ```
 */
export function openChannel(opts: OpenChannelOptions): Channel {
  const open = opener(opts);
  if (!opts.retryPath) return open();
  let initial: Channel | undefined;
  try {
    initial = open();
  } catch (e) {
    opts.log.critical(e instanceof Error ? e.message : String(e));
    opts.log.critical("failed to create guest agent channel");
    opts.log.info("failed to initialize guest agent channel, will retry");
  }
  return retryingChannel({ open, log: opts.log, intervalMs: opts.retryIntervalMs, initial });
}
