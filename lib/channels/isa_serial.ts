/**
 * isa-serial (§6): the tty (default `/dev/ttyS0`) is opened O_RDWR|O_NOCTTY|O_NONBLOCK (plus
 * O_CLOEXEC) and put into raw mode at 38400 baud, VMIN 1 / VTIME 0, pending input discarded
 * (`ffi/termios.ts`). Reads and writes use the same machinery as virtio-serial
 * (`ffi/fdio.ts`'s FdStream): writes never wait behind reads, nothing blocks the event loop.
 *
 * EOF (a hung-up line) closes the *connection*: the agent's session ends and it accepts again.
 * Deliberate difference: qemu-ga closes the tty at that point and then idles deaf until
 * restarted; denoga keeps the tty open and hands out a new connection on it, which idles
 * (waiting for the tty's next change, no wake-ups) until the line delivers data again. The fd is never closed
 * except by `close()`, and the parser (above the seam) is never reset.
 *
 * @module
 */

import { FdStream } from "../../ffi/fdio.ts";
import { O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_RDWR } from "../../ffi/libc.ts";
import { makeRawTty } from "../../ffi/termios.ts";
import type { Channel, Connection } from "./channel.ts";
import { openDevice, streamConnection } from "./virtio_serial.ts";

/** Default serial port (§5.1). */
export const ISA_DEFAULT_PATH = "/dev/ttyS0";

/** An isa-serial channel, with its stream visible to tests. */
export interface SerialChannel extends Channel {
  /** The stream over the tty. */
  readonly stream: FdStream;
}

/**
 * Wraps an open nonblocking tty fd (already in raw mode) as an isa-serial channel. Each
 * connection ends at the first EOF after it received data; before any data an EOF only backs
 * off, so a hung-up line idles instead of spinning through accept/EOF.
 */
export function serialChannelOnFd(fd: number): SerialChannel {
  const stream = new FdStream(fd, "backoff");
  return {
    stream,
    accept(): Promise<Connection | null> {
      if (stream.closed) return Promise.resolve(null);
      let start = stream.bytesRead;
      const conn = streamConnection(stream, () => {
        // The connection ends, the tty stays open for the next one (module comment).
      });
      return Promise.resolve({
        ...conn,
        async read(buf: Uint8Array) {
          for (;;) {
            // "end" only once this connection has seen data: EOF then closes it (§6).
            stream.eof = stream.bytesRead > start ? "end" : "backoff";
            const n = await stream.read(buf);
            if (n !== null || stream.closed) return n;
            if (stream.bytesRead > start) return null;
            start = stream.bytesRead;
          }
        },
      });
    },
    close() {
      stream.close();
    },
  };
}

/**
 * Opens and configures the serial port at `path`.
 *
 * @throws Error `error opening channel '<path>': <strerror>` (qemu-ga's text).
 *
 * @example
 * ```ts
 * const channel = openIsaSerial("/dev/ttyS0");
 * ```
 */
export function openIsaSerial(path: string = ISA_DEFAULT_PATH): SerialChannel {
  const fd = openDevice(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  // qemu-ga ignores tcgetattr/tcsetattr failures (channel-posix.c); so does this.
  makeRawTty(fd);
  return serialChannelOnFd(fd);
}
