/**
 * virtio-serial (§6): the port is opened ONCE, through FFI, with O_RDWR|O_NONBLOCK|O_CLOEXEC|
 * O_NOCTTY, and stays open for the agent's whole life. Opening it is what tells QEMU "guest
 * connected", which libvirt and KubeVirt read as "agent up" (clients-and-peers.md §1.1), so the
 * port is never closed to recover from anything: only a read *error* (or shutdown) ends it.
 *
 * The single connection reads and writes through `ffi/fdio.ts`'s {@link FdStream}: a reply write
 * never waits behind the pending read, nothing blocks the event loop, and while no host is
 * attached (read() returns 0, POLLHUP stays set) it waits for the port's next change (an
 * edge-triggered epoll, woken when a host attaches or data arrives) instead of qemu-ga's read
 * every 100 ms: no wake-ups at all while nobody is there, no delay when a host attaches. The
 * JSON parser lives above this seam and is never reset (§2.1): hosts resync with 0xFF +
 * guest-sync-delimited.
 *
 * Why not `Deno.open`: clients-and-peers.md §4.4 (write queued behind read, writeSync freezing
 * the event loop, fd leaked by close during a pending read, hence EBUSY on reopen).
 *
 * @module
 */

import { type EofPolicy, FdStream, openDeviceSync } from "../../ffi/fdio.ts";
import { O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_RDWR, OsError } from "../../ffi/libc.ts";
import type { Channel, Connection } from "./channel.ts";

/** Default port path (§5.1). */
export const VIRTIO_DEFAULT_PATH = "/dev/virtio-ports/org.qemu.guest_agent.0";

/**
 * open(2) of a character device with `flags`, synchronously (O_NONBLOCK: a device open never
 * sleeps). Throws qemu-ga's `error opening channel '<path>': <strerror>`.
 */
export function openDevice(path: string, flags: number): number {
  try {
    return openDeviceSync(path, flags);
  } catch (e) {
    if (e instanceof OsError) throw new Error(`error opening channel '${path}': ${e.strerror}`);
    throw e;
  }
}

/** A Connection over a stream; `close` is left to the caller's choice. */
export function streamConnection(stream: FdStream, close: () => void): Connection {
  return {
    read: (buf) => stream.read(buf),
    writeAll: (data) => stream.writeAll(data),
    close,
  };
}

/** A channel built on one fd for its whole life, plus what tests need to see inside it. */
export interface DeviceChannel extends Channel {
  /** The stream (tests: EOF backoff counts, the fd). */
  readonly stream: FdStream;
}

/**
 * Wraps an already open, nonblocking fd as a virtio-serial channel: one connection for the life
 * of the fd; EOF sleeps and reads again (`eof` "backoff"); a read error ends the channel
 * (`accept()` then resolves null and the fd is closed). Exposed for tests (socketpair/pty
 * stand-ins) and for isa-serial.
 */
export function virtioChannelOnFd(fd: number, eof: EofPolicy = "backoff"): DeviceChannel {
  const stream = new FdStream(fd, eof);
  let handedOut = false;
  const conn = streamConnection(stream, () => {
    // Serve closes the connection only after its read ended: with "backoff" that means a read
    // error or shutdown, i.e. the end of the channel (§6: the main loop stops).
    stream.close();
  });
  return {
    stream,
    accept(): Promise<Connection | null> {
      if (handedOut || stream.closed) return Promise.resolve(null);
      handedOut = true;
      return Promise.resolve(conn);
    },
    close() {
      stream.close();
    },
  };
}

/**
 * Opens the virtio-serial port at `path` (§6). A second open of the same port fails with EBUSY
 * (`error opening channel '<path>': Device or resource busy`): the kernel allows one opener.
 *
 * @example
 * ```ts
 * const channel = openVirtioSerial("/dev/virtio-ports/org.qemu.guest_agent.0");
 * const conn = await channel.accept(); // the port, for the agent's whole life
 * ```
 */
export function openVirtioSerial(path: string = VIRTIO_DEFAULT_PATH): DeviceChannel {
  // O_NOCTTY: harmless on the port, and a guard should the path name a tty (§4.4 hedge).
  return virtioChannelOnFd(openDevice(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
}
