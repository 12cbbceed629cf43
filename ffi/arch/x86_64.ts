/**
 * Linux x86-64. Numbers from Debian 12's linux-libc-dev `x86_64-linux-gnu/asm/unistd_64.h`;
 * layouts from the uapi headers (`struct epoll_event` is `__attribute__((packed))` here).
 *
 * @module
 */

import type { Arch } from "./mod.ts";

/** The x86-64 description. */
export const X86_64: Arch = {
  name: "x86_64",
  sys: {
    openat: 257,
    read: 0,
    write: 1,
    close: 3,
    lseek: 8,
    ioctl: 16,
    fsync: 74,
    fchmod: 91,
    ftruncate: 77,
    getpid: 39,
    statfs: 137,
    settimeofday: 164,
    ppoll: 271,
    eventfd2: 290,
    socket: 41,
    bind: 49,
    listen: 50,
    connect: 42,
    getsockopt: 55,
    accept4: 288,
    getsockname: 51,
    fcntl: 72,
    socketpair: 53,
    shutdown: 48,
    epoll_create1: 291,
    epoll_ctl: 233,
    epoll_pwait: 281,
    readlinkat: 267,
    getdents64: 217,
    inotify_init1: 294,
    inotify_add_watch: 254,
  },
  layout: {
    statfs: { size: 120, type: 0, bsize: 8, blocks: 16, bfree: 24, bavail: 32, frsize: 72 },
    fstrimRange: { size: 24, start: 0, len: 8, minlen: 16 },
    timeval: { size: 16, sec: 0, usec: 8 },
    epollEvent: { size: 12, events: 0 }, // u32 events, u64 data, packed
    flock: { size: 32, type: 0, whence: 2 },
    nvmeAdminCmd: { size: 72, opcode: 0, nsid: 4, addr: 24, dataLen: 36, cdw10: 40 },
  },
  ioctl: {
    // _IOWR('N', 0x41, 72 bytes): dir 3 << 30 | size 72 << 16 | 'N' << 8 | 0x41.
    nvmeAdminCmd: 0xC0484E41,
  },
};
