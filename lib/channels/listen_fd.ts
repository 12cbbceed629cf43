/**
 * Listening sockets served through FFI (issue #3): vsock-listen (§6: like unix-listen on
 * `vsock:<cid>:<port>`, backlog 1) and systemd socket activation (§5.1: exactly one inherited
 * fd 3, its family deciding unix-listen or vsock-listen).
 *
 * One client at a time, as qemu-ga: the listener is only polled when the agent asks for the
 * next connection, i.e. after the current client disconnected; meanwhile further clients wait
 * in the backlog (§6). Waiting for a client is a ppoll on a pool thread (no timer, ~0 CPU).
 *
 * @module
 */

import {
  closeFd,
  ECONNABORTED,
  EOF_BACKOFF_MS,
  FdStream,
  newEventFd,
  POLLIN,
  pollWait,
  setCloseOnExec,
  setNonblocking,
  signalEventFd,
} from "../../ffi/fdio.ts";
import { EAGAIN, EINTR, OsError } from "../../ffi/libc.ts";
import {
  acceptNonblocking,
  AF_UNIX,
  AF_VSOCK,
  SocketError,
  socketName,
  vsockListen,
} from "../../ffi/socket.ts";
import { FIRST_SOCKET_ACTIVATION_FD } from "./activation.ts";
import type { Channel, Connection } from "./channel.ts";
import { streamConnection } from "./virtio_serial.ts";

export { FIRST_SOCKET_ACTIVATION_FD } from "./activation.ts";

/**
 * Serves a listening socket fd (taken over: made nonblocking, closed by `close()`). Each
 * `accept()` polls for one client and yields it as a connection whose EOF ends it.
 */
export function listenerChannelOnFd(listenFd: number): Channel {
  setNonblocking(listenFd);
  const wake = newEventFd();
  let closed = false;
  let waiting = 0;
  let released = false;
  const release = () => {
    if (closed && waiting === 0 && !released) {
      released = true;
      closeFd(listenFd);
      closeFd(wake);
    }
  };
  return {
    async accept(): Promise<Connection | null> {
      for (;;) {
        if (closed) return null;
        const fd = acceptNonblocking(listenFd);
        if (fd >= 0) {
          const stream = new FdStream(fd, "end");
          return streamConnection(stream, () => stream.close());
        }
        const e = -fd;
        if (e === EINTR || e === ECONNABORTED) continue;
        waiting++;
        try {
          if (e === EAGAIN) await pollWait(listenFd, POLLIN, wake);
          // Anything else (EMFILE, ENOBUFS…): qemu-ga logs and keeps listening; back off so
          // a persistent error does not spin.
          else await pollWait(-1, 0, wake, EOF_BACKOFF_MS);
        } finally {
          waiting--;
          release();
        }
      }
    },
    close() {
      if (closed) return;
      closed = true;
      signalEventFd(wake);
      release();
    },
  };
}

/**
 * Parses qemu-ga's vsock address `<cid>:<port>` (util/qemu-sockets.c vsock_parse and
 * vsock_parse_vaddr_to_sockaddr) with its error texts.
 *
 * @throws Error `error parsing address '<s>'`, `trailing characters in address '<s>'`,
 * `Failed to parse cid '<cid>'`, `Failed to parse port '<port>'`.
 */
export function parseVsockAddress(s: string): { cid: number; port: number } {
  // sscanf("%32[^:]:%32[^,]%n"): 1–32 non-colons, a colon, 1–32 non-commas; then nothing else.
  const m = /^([^:]{1,32}):([^,]{1,32})/.exec(s);
  if (m === null) throw new Error(`error parsing address '${s}'`);
  if (m[0].length !== s.length) throw new Error(`trailing characters in address '${s}'`);
  const cid = parseUint32(m[1]);
  if (cid === undefined) throw new Error(`Failed to parse cid '${m[1]}'`);
  const port = parseUint32(m[2]);
  if (port === undefined) throw new Error(`Failed to parse port '${m[2]}'`);
  return { cid, port };
}

/** qemu's parse_uint_full(base 10) limited to UINT32_MAX: whitespace, optional '+', digits. */
function parseUint32(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*\+?([0-9]+)$/.exec(s);
  if (m === null) return undefined;
  const v = BigInt(m[1]);
  return v > 0xffff_ffffn ? undefined : Number(v);
}

/**
 * Opens `-m vsock-listen -p <cid>:<port>` with backlog 1.
 *
 * @throws Error with qemu-ga's text (address syntax, `Failed to create socket: …`, `Failed to
 * bind socket: …`, `Failed to listen on socket: …`).
 *
 * @example
 * ```ts
 * const channel = openVsockListen("4294967295:1234"); // VMADDR_CID_ANY, port 1234
 * ```
 */
export function openVsockListen(path: string): Channel {
  const { cid, port } = parseVsockAddress(path);
  let fd: number;
  try {
    fd = vsockListen(cid, port, 1);
  } catch (e) {
    if (!(e instanceof SocketError)) throw e;
    const what = e.stage === "socket"
      ? "Failed to create socket"
      : e.stage === "bind"
      ? "Failed to bind socket"
      : "Failed to listen on socket";
    throw new Error(`${what}: ${e.strerror}`);
  }
  return listenerChannelOnFd(fd);
}

/**
 * The second half of socket activation (`socketActivation` in lib/channels/mod.ts), after the
 * environment check: marks the `n` inherited fds from {@link FIRST_SOCKET_ACTIVATION_FD}
 * close-on-exec.
 *
 * @throws Error `Socket activation failed: invalid file descriptor fd = N: <strerror>` (qemu
 * exits 1 there).
 */
export function markActivationFds(n: number): void {
  for (let i = 0; i < n; i++) {
    const fd = FIRST_SOCKET_ACTIVATION_FD + i;
    try {
      setCloseOnExec(fd);
    } catch (e) {
      if (!(e instanceof OsError)) throw e;
      throw new Error(
        `Socket activation failed: invalid file descriptor fd = ${fd}: ${e.strerror}`,
      );
    }
  }
}

/**
 * The channel method an inherited listening fd stands for (main.c: socket_local_address):
 * "unix-listen" for AF_UNIX, "vsock-listen" for AF_VSOCK, null for anything else (including an
 * fd that is not a socket), which qemu-ga reports as `unsupported listen fd type`.
 */
export function listenFdMethod(fd: number): "unix-listen" | "vsock-listen" | null {
  let family: number;
  try {
    family = socketName(fd).family;
  } catch {
    return null;
  }
  if (family === AF_UNIX) return "unix-listen";
  if (family === AF_VSOCK) return "vsock-listen";
  return null;
}
