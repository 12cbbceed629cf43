/**
 * Listening sockets through raw system calls (issue #3): AF_VSOCK listen for `-m vsock-listen`
 * and the family check of a socket-activated fd (§5.1). FFI rather than `Deno.listen({transport:
 * "vsock"})` so the agent needs no `--unstable-vsock` baked in (clients-and-peers.md §4.6), and
 * because Deno cannot adopt an inherited fd as a listener at all.
 *
 * All calls here are synchronous on the main thread: socket/bind/listen/getsockname never sleep,
 * and accept4 is only called on an O_NONBLOCK listener after ppoll reported it readable.
 *
 * @module
 */

import { O_CLOEXEC, O_NONBLOCK, OsError } from "./libc.ts";
import { syscall6Sync } from "./rawsyscall.ts";
import { sys } from "./arch/mod.ts";
import { check, closeFd, isErr } from "./fdio.ts";

/** Address family of unix sockets. */
export const AF_UNIX = 1;
/** Address family of virtio sockets. */
export const AF_VSOCK = 40;
/** Stream sockets. */
export const SOCK_STREAM = 1;
/** socket/accept4 flag: O_NONBLOCK on the new fd. */
export const SOCK_NONBLOCK = O_NONBLOCK;
/** socket/accept4 flag: close-on-exec on the new fd. */
export const SOCK_CLOEXEC = O_CLOEXEC;
/** `VMADDR_CID_ANY`: listen on every CID of this machine. */
export const VMADDR_CID_ANY = 0xffff_ffff;

/**
 * `struct sockaddr_vm` (linux/vm_sockets.h): u16 family, u16 reserved, u32 port, u32 cid, u8
 * flags, u8 zero[3]; 16 bytes, host byte order.
 */
export function sockaddrVm(cid: number, port: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_VSOCK, true);
  v.setUint32(4, port, true);
  v.setUint32(8, cid, true);
  return b;
}

/** The stage of {@link vsockListen} that failed, for qemu-ga's message. */
export class SocketError extends OsError {
  /** "socket", "bind" or "listen". */
  readonly stage: "socket" | "bind" | "listen";

  constructor(stage: "socket" | "bind" | "listen", errnoValue: number) {
    super(errnoValue);
    this.stage = stage;
  }
}

/**
 * socket(AF_VSOCK, SOCK_STREAM) + bind(cid, port) + listen(backlog): the listening fd,
 * nonblocking and close-on-exec.
 *
 * @throws SocketError naming the failed stage.
 */
export function vsockListen(cid: number, port: number, backlog: number): number {
  const nr = sys();
  const fd = syscall6Sync(nr.socket, AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (isErr(fd)) throw new SocketError("socket", Number(-fd));
  const s = Number(fd);
  const addr = sockaddrVm(cid, port);
  let r = syscall6Sync(nr.bind, s, addr, addr.length);
  if (isErr(r)) {
    closeFd(s);
    throw new SocketError("bind", Number(-r));
  }
  r = syscall6Sync(nr.listen, s, backlog);
  if (isErr(r)) {
    closeFd(s);
    throw new SocketError("listen", Number(-r));
  }
  return s;
}

const EINPROGRESS = 115;

/**
 * socket(AF_VSOCK, SOCK_STREAM) + a nonblocking connect to `cid`:`port` (the host-side client,
 * `denoga client --vsock`): the fd (nonblocking, close-on-exec) and whether the connect is still
 * in progress; then wait for POLLOUT and call {@link vsockConnectFinish}.
 *
 * @throws OsError (the fd is closed then).
 */
export function vsockConnectStart(cid: number, port: number): { fd: number; inProgress: boolean } {
  const nr = sys();
  const fd = check(
    syscall6Sync(nr.socket, AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
  );
  const addr = sockaddrVm(cid, port);
  const r = syscall6Sync(nr.connect, fd, addr, addr.length);
  if (!isErr(r)) return { fd, inProgress: false };
  if (Number(-r) === EINPROGRESS) return { fd, inProgress: true };
  closeFd(fd);
  throw new OsError(Number(-r));
}

/**
 * Completes {@link vsockConnectStart} once poll reported the fd writable or in error: the
 * connect's outcome is the socket's pending error (getsockopt SO_ERROR).
 *
 * @throws OsError with the connect's error (the caller closes the fd).
 */
export function vsockConnectFinish(fd: number): void {
  const SOL_SOCKET = 1;
  const SO_ERROR = 4;
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  check(syscall6Sync(sys().getsockopt, fd, SOL_SOCKET, SO_ERROR, value, len));
  if (value[0] !== 0) throw new OsError(value[0]);
}

/** What getsockname says about a socket fd. */
export interface SocketName {
  /** sa_family. */
  family: number;
  /** AF_VSOCK: the bound CID and port. */
  cid?: number;
  /** AF_VSOCK port. */
  port?: number;
}

/**
 * getsockname(fd): the address family (and vsock address).
 *
 * @throws OsError when `fd` is not a socket (ENOTSOCK) or not open (EBADF).
 */
export function socketName(fd: number): SocketName {
  const addr = new Uint8Array(128); // sockaddr_storage
  const len = new Uint32Array([addr.length]);
  check(syscall6Sync(sys().getsockname, fd, addr, len));
  const v = new DataView(addr.buffer);
  const family = v.getUint16(0, true);
  if (family === AF_VSOCK) return { family, port: v.getUint32(4, true), cid: v.getUint32(8, true) };
  return { family };
}

/**
 * accept4 on a nonblocking listener: the new fd (nonblocking, close-on-exec), or `-errno`
 * (EAGAIN when nobody is waiting).
 */
export function acceptNonblocking(listenFd: number): number {
  const r = syscall6Sync(sys().accept4, listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return Number(r);
}
