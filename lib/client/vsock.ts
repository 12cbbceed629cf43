/**
 * vsock connections for the client through the project's FFI sockets: Deno's own vsock
 * transport needs `--unstable-vsock`, and without that flag Deno ends the process instead of
 * throwing, so it cannot even be tried.
 *
 * @module
 */

import { closeFd, FdStream, newEventFd, POLLOUT, pollWait } from "../../ffi/fdio.ts";
import { vsockConnectFinish, vsockConnectStart } from "../../ffi/socket.ts";

/** The part of a connection the client uses (a `Deno.Conn` has it too). */
export interface ByteConn {
  read(buf: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}

/** Connects to `cid`:`port`, waiting at most `timeoutMs` for the connect to complete. */
export async function connectVsock(
  cid: number,
  port: number,
  timeoutMs: number,
): Promise<ByteConn> {
  const { fd, inProgress } = vsockConnectStart(cid, port);
  try {
    if (inProgress) {
      const wake = newEventFd();
      try {
        if (await pollWait(fd, POLLOUT, wake, timeoutMs) === 0) {
          throw new Error("Connection timed out");
        }
      } finally {
        closeFd(wake);
      }
      vsockConnectFinish(fd);
    }
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  const stream = new FdStream(fd, "end");
  return {
    read: (buf) => stream.read(buf),
    write: async (data) => {
      await stream.writeAll(data);
      return data.length;
    },
    close: () => stream.close(),
  };
}
