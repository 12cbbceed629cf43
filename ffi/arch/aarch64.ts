/**
 * Linux aarch64. Numbers from Debian 12's linux-libc-dev `asm-generic/unistd.h`, which arm64
 * uses: there lseek, fcntl and statfs are the `__NR3264_*` 64-bit calls (62, 25, 43), and there
 * is no poll, epoll_wait or open (ppoll, epoll_pwait and openat instead). Layouts from the uapi
 * headers; `struct epoll_event` is naturally aligned here (16 bytes).
 *
 * @module
 */

import type { Arch } from "./mod.ts";

/** The aarch64 description. */
export const AARCH64: Arch = {
  name: "aarch64",
  sys: {
    openat: 56,
    read: 63,
    write: 64,
    close: 57,
    lseek: 62,
    ioctl: 29,
    fsync: 82,
    fchmod: 52,
    ftruncate: 46,
    getpid: 172,
    statfs: 43,
    settimeofday: 170,
    ppoll: 73,
    eventfd2: 19,
    socket: 198,
    bind: 200,
    listen: 201,
    connect: 203,
    getsockopt: 209,
    accept4: 242,
    getsockname: 204,
    fcntl: 25,
    socketpair: 199,
    shutdown: 210,
    epoll_create1: 20,
    epoll_ctl: 21,
    epoll_pwait: 22,
    readlinkat: 78,
    getdents64: 61,
    inotify_init1: 26,
    inotify_add_watch: 27,
  },
  layout: {
    statfs: { size: 120, type: 0, bsize: 8, blocks: 16, bfree: 24, bavail: 32, frsize: 72 },
    fstrimRange: { size: 24, start: 0, len: 8, minlen: 16 },
    timeval: { size: 16, sec: 0, usec: 8 },
    epollEvent: { size: 16, events: 0 }, // u32 events, 4 bytes padding, u64 data
    flock: { size: 32, type: 0, whence: 2 },
    nvmeAdminCmd: { size: 72, opcode: 0, nsid: 4, addr: 24, dataLen: 36, cdw10: 40 },
  },
  ioctl: {
    // _IOWR('N', 0x41, 72 bytes): dir 3 << 30 | size 72 << 16 | 'N' << 8 | 0x41.
    nvmeAdminCmd: 0xC0484E41,
  },
};
