/**
 * What differs between the two architectures the agent runs on: system call numbers and the
 * layouts of the kernel structs it passes. Only `ffi/` reads this; nothing above it knows a
 * system call number.
 *
 * Layouts are written out per architecture even where they coincide (every struct here except
 * `epoll_event`), so each architecture file can be checked against its own headers on its own.
 *
 * @module
 */

import { AARCH64 } from "./aarch64.ts";
import { X86_64 } from "./x86_64.ts";

/** The system call numbers the agent uses, for one architecture. */
export interface SyscallNumbers {
  /** openat(dirfd, path, flags, mode) */
  readonly openat: number;
  /** read(fd, buf, count) */
  readonly read: number;
  /** write(fd, buf, count) */
  readonly write: number;
  /** close(fd) */
  readonly close: number;
  /** lseek(fd, offset, whence) */
  readonly lseek: number;
  /** ioctl(fd, request, arg) */
  readonly ioctl: number;
  /** fsync(fd) */
  readonly fsync: number;
  /** fchmod(fd, mode) */
  readonly fchmod: number;
  /** ftruncate(fd, length) */
  readonly ftruncate: number;
  /** getpid(); the trampoline's build-time self-test (a call that cannot fail or block). */
  readonly getpid: number;
  /** statfs(path, buf) with the 64-bit `struct statfs` */
  readonly statfs: number;
  /** settimeofday(tv, tz) */
  readonly settimeofday: number;
  /** ppoll(fds, nfds, tsp, sigmask, sigsetsize) (aarch64 has no poll) */
  readonly ppoll: number;
  /** eventfd2(initval, flags) */
  readonly eventfd2: number;
  /** socket(domain, type, protocol) */
  readonly socket: number;
  /** bind(fd, addr, addrlen) */
  readonly bind: number;
  /** listen(fd, backlog) */
  readonly listen: number;
  /** connect(fd, addr, addrlen) */
  readonly connect: number;
  /** getsockopt(fd, level, optname, optval, optlen) */
  readonly getsockopt: number;
  /** accept4(fd, addr, addrlen, flags) */
  readonly accept4: number;
  /** getsockname(fd, addr, addrlen) */
  readonly getsockname: number;
  /** fcntl(fd, cmd, arg) */
  readonly fcntl: number;
  /** socketpair(domain, type, protocol, sv) */
  readonly socketpair: number;
  /** shutdown(fd, how) */
  readonly shutdown: number;
  /** epoll_create1(flags) */
  readonly epoll_create1: number;
  /** epoll_ctl(epfd, op, fd, event) */
  readonly epoll_ctl: number;
  /** epoll_pwait(epfd, events, maxevents, timeout, sigmask, sigsetsize) (aarch64: no epoll_wait) */
  readonly epoll_pwait: number;
  /** readlinkat(dirfd, path, buf, size) (aarch64 has no readlink) */
  readonly readlinkat: number;
  /** getdents64(fd, dirp, count) */
  readonly getdents64: number;
  /** inotify_init1(flags) */
  readonly inotify_init1: number;
  /** inotify_add_watch(fd, path, mask) */
  readonly inotify_add_watch: number;
}

/** Byte offsets of the fields the agent reads or writes, and each struct's size. */
export interface StructLayouts {
  /** `struct statfs` (asm-generic/statfs.h, `__statfs_word` = long): the kernel's and glibc's. */
  readonly statfs: {
    readonly size: number;
    /** f_type, the filesystem's magic number */
    readonly type: number;
    readonly bsize: number;
    readonly blocks: number;
    readonly bfree: number;
    readonly bavail: number;
    readonly frsize: number;
  };
  /** `struct fstrim_range` (linux/fs.h): three u64. */
  readonly fstrimRange: {
    readonly size: number;
    readonly start: number;
    readonly len: number;
    readonly minlen: number;
  };
  /** `struct timeval` (`__kernel_old_timeval`): two longs. */
  readonly timeval: { readonly size: number; readonly sec: number; readonly usec: number };
  /** `struct epoll_event`: packed on x86-64, naturally aligned elsewhere. */
  readonly epollEvent: { readonly size: number; readonly events: number };
  /** `struct flock` (l_type, l_whence, l_start, l_len, l_pid). */
  readonly flock: { readonly size: number; readonly type: number; readonly whence: number };
  /**
   * `struct nvme_admin_cmd` = `struct nvme_passthru_cmd` (linux/nvme_ioctl.h): u8 opcode, u8
   * flags, u16 rsvd1, u32 nsid, u32 cdw2, u32 cdw3, u64 metadata, u64 addr, u32 metadata_len,
   * u32 data_len, u32 cdw10..cdw15, u32 timeout_ms, u32 result.
   */
  readonly nvmeAdminCmd: {
    readonly size: number;
    readonly opcode: number;
    readonly nsid: number;
    readonly addr: number;
    readonly dataLen: number;
    readonly cdw10: number;
  };
}

/** ioctl request numbers whose encoding depends on a struct size. */
export interface IoctlNumbers {
  /** `NVME_IOCTL_ADMIN_CMD`: `_IOWR('N', 0x41, struct nvme_admin_cmd)`. */
  readonly nvmeAdminCmd: number;
}

/** Everything architecture-specific about one machine. */
export interface Arch {
  /** `Deno.build.arch` of this description. */
  readonly name: "x86_64" | "aarch64";
  /** System call numbers. */
  readonly sys: SyscallNumbers;
  /** Struct layouts. */
  readonly layout: StructLayouts;
  /** ioctl request numbers. */
  readonly ioctl: IoctlNumbers;
}

/** This machine's description, or undefined on a platform the agent has none for. */
export const ARCH: Arch | undefined = Deno.build.os !== "linux"
  ? undefined
  : Deno.build.arch === "x86_64"
  ? X86_64
  : Deno.build.arch === "aarch64"
  ? AARCH64
  : undefined;

/**
 * This machine's description.
 *
 * @throws Error on a platform without one (so no wrong number can reach a kernel).
 */
export function arch(): Arch {
  if (ARCH === undefined) {
    throw new Error(`ffi/arch: unsupported platform ${Deno.build.os}/${Deno.build.arch}`);
  }
  return ARCH;
}

/** Shorthand for `arch().sys`. */
export function sys(): SyscallNumbers {
  return arch().sys;
}
