/**
 * Channel selection (§5.1, §6): `-m`/`-p`, systemd socket activation and `-r/--retry-path`
 * behind one call, with qemu-ga's error texts. `main.ts` logs a thrown error's message and then
 * `failed to initialize guest agent channel` (exit 1), as qemu-ga does.
 *
 * Each transport's module (and the FFI code behind it) is imported only when that transport is
 * opened: an agent pays, in start-up time and memory, only for the channel it serves. The bundle
 * (scripts/bundle.ts) inlines them and still evaluates them only on first use.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import { activatedFdCount, type ActivationEnv, FIRST_SOCKET_ACTIVATION_FD } from "./activation.ts";
import type { Channel } from "./channel.ts";

export type { Channel, Connection } from "./channel.ts";
export { FIRST_SOCKET_ACTIVATION_FD };

/** The transports of `-m` (§5.1). */
export const CHANNEL_METHODS = ["virtio-serial", "isa-serial", "unix-listen", "vsock-listen"];

/** What {@link openChannel} takes. */
export interface OpenChannelOptions {
  /** `-m`: virtio-serial, isa-serial, unix-listen or vsock-listen. Ignored with `listenFd`. */
  method: string;
  /**
   * `-p`. Defaults: virtio-serial `VIRTIO_DEFAULT_PATH`, isa-serial `ISA_DEFAULT_PATH` (their
   * modules); required for unix-listen and vsock-listen (`<cid>:<port>`).
   * Ignored with `listenFd`.
   */
  path?: string;
  /**
   * A socket-activated listening fd (normally {@link FIRST_SOCKET_ACTIVATION_FD} once
   * {@link socketActivation} returned 1): its family decides unix-listen or vsock-listen
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
 * systemd socket activation (§5.1, util/systemd.c check_socket_activation): how many listening
 * fds were passed when `LISTEN_PID` is this process and `LISTEN_FDS` parses, else 0. Like
 * qemu-ga it then removes LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES from the environment (children
 * must not see them) and marks the fds close-on-exec.
 *
 * @param env the environment (tests pass a map); defaults to `Deno.env`.
 * @throws Error `Socket activation failed: invalid file descriptor fd = N: <strerror>` (qemu
 * exits 1 there).
 */
export async function socketActivation(
  env: ActivationEnv = Deno.env,
  pid: number = Deno.pid,
): Promise<number> {
  const n = activatedFdCount(env, pid);
  if (n > 0) (await import("./listen_fd.ts")).markActivationFds(n);
  return n;
}

/**
 * The channel method for `opts`, with socket activation applied; throws qemu-ga's texts for an
 * unknown method, a missing path or an unsupported listen fd.
 */
async function opener(opts: OpenChannelOptions): Promise<() => Promise<Channel>> {
  if (opts.listenFd !== undefined) {
    const fd = opts.listenFd;
    const listen = await import("./listen_fd.ts");
    const method = listen.listenFdMethod(fd);
    if (method === null) throw new Error("unsupported listen fd type");
    // Both families are served the same way once listening (§6: unix-listen and vsock-listen
    // differ only in how the socket is made).
    let used = false;
    return () => {
      // An inherited fd exists once: after it is closed there is nothing to reopen.
      if (used) return Promise.reject(new Error(`error binding/listening to specified socket`));
      used = true;
      return Promise.resolve(listen.listenerChannelOnFd(fd));
    };
  }
  const method = opts.method;
  switch (method) {
    case "virtio-serial": {
      const path = opts.path; // undefined: the module's default port
      return async () => (await import("./virtio_serial.ts")).openVirtioSerial(path);
    }
    case "isa-serial": {
      const path = opts.path;
      return async () => (await import("./isa_serial.ts")).openIsaSerial(path);
    }
    case "unix-listen":
    case "vsock-listen": {
      const path = opts.path;
      if (path === undefined || path === "") {
        throw new Error("must specify a path for this channel");
      }
      return method === "unix-listen"
        ? async () => (await import("./unix.ts")).openUnixListen(path, opts.log)
        : async () => (await import("./listen_fd.ts")).openVsockListen(path);
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
 * const channel = await openChannel({ method: "virtio-serial", log });
 * for (let conn; (conn = await channel.accept()) !== null;) { ... }
 * ```
 */
export async function openChannel(opts: OpenChannelOptions): Promise<Channel> {
  const open = await opener(opts);
  if (!opts.retryPath) return await open();
  let initial: Channel | undefined;
  try {
    initial = await open();
  } catch (e) {
    opts.log.critical(e instanceof Error ? e.message : String(e));
    opts.log.critical("failed to create guest agent channel");
    opts.log.info("failed to initialize guest agent channel, will retry");
  }
  const { retryingChannel } = await import("./retry.ts");
  return retryingChannel({ open, log: opts.log, intervalMs: opts.retryIntervalMs, initial });
}
