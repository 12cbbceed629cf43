/**
 * Change notification for files the agent reads again and again (os-release, utmp, the local
 * time zone) and for the devices under its filesystems (sysfs and the udev database): one inotify
 * instance, the mount table's change flag and a kernel uevent socket, gathered in one epoll
 * instance that is asked with a zero timeout. None of these calls can sleep, and they see every
 * change the kernel completed before they were made, so a cache checked this way is never
 * staler than a fresh read would be. In the common case (nothing changed) a check is one
 * epoll_wait.
 *
 * Watches are added off the event loop, since resolving a path may block on a stuck file system:
 * as `watch` items of a look-up chain (`ffi/ops/chain.ts`, {@link ChangeNotifier.fd}). Only the
 * trampoline executor offers those; without it {@link ChangeNotifier.open} gives nothing and
 * callers read as before.
 *
 * @module
 */

import { arch } from "./arch/mod.ts";
import { cString, EAGAIN, errno, libc, O_CLOEXEC, O_NONBLOCK, O_RDONLY } from "./libc.ts";
import { AT_FDCWD, syscall6, trampolineAvailable } from "./rawsyscall.ts";

/** inotify event bits (linux/inotify.h). */
const IN_MODIFY = 0x2;
const IN_ATTRIB = 0x4;
const IN_CLOSE_WRITE = 0x8;
const IN_MOVED_FROM = 0x40;
const IN_MOVED_TO = 0x80;
const IN_CREATE = 0x100;
const IN_DELETE = 0x200;
const IN_DELETE_SELF = 0x400;
const IN_MOVE_SELF = 0x800;
const IN_Q_OVERFLOW = 0x4000;
const IN_ONLYDIR = 0x01000000;

/**
 * What changes a file's contents or identity: writes, attribute and link-count changes (a rename
 * over it or an unlink raises IN_ATTRIB on the old inode), and its own move or deletion.
 */
export const FILE_EVENTS = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF |
  IN_DELETE_SELF;

/** What changes the names in a directory, or the directory itself. */
export const DIRECTORY_EVENTS = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
  IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR;

/** struct inotify_event: int wd, u32 mask, u32 cookie, u32 len, then len bytes of name. */
const EVENT_HEADER = 16;
const EPOLLIN = 0x1;
const EPOLLPRI = 0x2;
const EPOLL_CTL_ADD = 1;
/** epoll_event.data of the mount table's entry (the inotify entry's is 0). */
const MOUNTS = 1;
/** epoll_event.data of the uevent socket's entry. */
const UEVENTS = 2;

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_KOBJECT_UEVENT = 15;
/**
 * The kernel's uevents (group 1) and udevd's, sent once it has written its database (group 2):
 * a walk that read the database between the two is dropped again by the second.
 */
const UEVENT_GROUPS = 1 | 2;
/** struct sockaddr_nl: family, pad, pid, groups. */
const SOCKADDR_NL_SIZE = 12;

/**
 * The pseudo watch descriptor {@link ChangeNotifier.changes} reports after any uevent: a device
 * was added, removed, changed, bound to or unbound from a driver, or udev updated its database.
 */
export const DEVICE_CHANGE = -1;

/** One inotify instance plus the mount table's change flag. */
export class ChangeNotifier {
  /** The inotify descriptor, for `watch` chain items. */
  readonly fd: number;
  /**
   * True when device changes are reported ({@link DEVICE_CHANGE}): the uevent socket is open
   * and the kernel sends it every device's events, which it does only to network namespaces of
   * the initial user namespace.
   */
  readonly devices: boolean;
  readonly #mounts: number;
  readonly #uevents: number;
  readonly #epoll: number;
  readonly #events = new Uint8Array(4096);
  readonly #ready: Uint8Array;
  #closed = false;

  private constructor(fd: number, mounts: number, uevents: number, epoll: number) {
    this.fd = fd;
    this.#mounts = mounts;
    this.#uevents = uevents;
    this.devices = uevents >= 0;
    this.#epoll = epoll;
    this.#ready = new Uint8Array(3 * arch().layout.epollEvent.size);
  }

  /**
   * A notifier, or undefined where the trampoline is unavailable or the kernel refuses one
   * (inotify instance limit, no /proc).
   */
  static async open(): Promise<ChangeNotifier | undefined> {
    if (!trampolineAvailable()) return undefined;
    const c = libc();
    // Opening the mount table is a file access: off the event loop like every other.
    const mounts = Number(
      await syscall6(
        arch().sys.openat,
        AT_FDCWD,
        cString("/proc/self/mountinfo"),
        O_RDONLY | O_CLOEXEC,
      ),
    );
    if (mounts < 0) return undefined;
    const fd = c.inotify_init1(O_NONBLOCK | O_CLOEXEC);
    const epoll = fd < 0 ? -1 : c.epoll_create1(O_CLOEXEC);
    const size = arch().layout.epollEvent.size;
    const event = (events: number, data: number) => {
      const b = new Uint8Array(size);
      const v = new DataView(b.buffer);
      v.setUint32(0, events, true);
      v.setUint32(size - 8, data, true); // the low half of the u64 data (x86-64 packs it at 4)
      return b;
    };
    if (
      epoll < 0 ||
      c.epoll_ctl(epoll, EPOLL_CTL_ADD, fd, event(EPOLLIN, 0)) < 0 ||
      c.epoll_ctl(epoll, EPOLL_CTL_ADD, mounts, event(EPOLLPRI, MOUNTS)) < 0
    ) {
      for (const f of [epoll, fd, mounts]) if (f >= 0) c.close(f);
      return undefined;
    }
    let uevents = await initialUserNamespace() ? ueventSocket() : -1;
    if (uevents >= 0 && c.epoll_ctl(epoll, EPOLL_CTL_ADD, uevents, event(EPOLLIN, UEVENTS)) < 0) {
      c.close(uevents);
      uevents = -1;
    }
    return new ChangeNotifier(fd, mounts, uevents, epoll);
  }

  /**
   * The watch descriptors that saw an event since the last call, or "all" when anything may
   * have changed: the kernel dropped events, or the mount table changed (a mount can change
   * what a path resolves to without any inotify event).
   */
  changes(): Set<number> | "all" {
    if (this.#closed) return "all";
    const c = libc();
    const n = c.epoll_wait(this.#epoll, this.#ready, 3, 0);
    const wds = new Set<number>();
    if (n === 0) return wds;
    if (n < 0) return "all";
    const size = this.#ready.length / 3;
    const ready = new DataView(this.#ready.buffer);
    let inotify = false;
    for (let i = 0; i < n; i++) {
      const data = ready.getUint32(i * size + size - 8, true);
      // EPOLLERR comes with the mount table's flag, and on its own: both mean "changed".
      if (data === MOUNTS) return "all";
      if (data === UEVENTS) {
        wds.add(DEVICE_CHANGE);
        this.#drainUevents();
      } else inotify = true;
    }
    if (!inotify) return wds;
    const view = new DataView(this.#events.buffer);
    let all = false;
    for (;;) {
      const got = Number(c.read(this.fd, this.#events, BigInt(this.#events.length)));
      if (got <= 0) {
        if (got < 0 && errnoIsNot(EAGAIN)) return "all";
        break;
      }
      for (let at = 0; at + EVENT_HEADER <= got;) {
        if ((view.getUint32(at + 4, true) & IN_Q_OVERFLOW) !== 0) all = true;
        wds.add(view.getInt32(at, true));
        at += EVENT_HEADER + view.getUint32(at + 12, true);
      }
    }
    return all ? "all" : wds;
  }

  /**
   * Reads the queued uevents away (their content does not matter: any of them is a change). A
   * socket that overflowed reports ENOBUFS once and goes on; what is left after a bounded number
   * of reads keeps the socket readable, i.e. reported again next time.
   */
  #drainUevents(): void {
    const c = libc();
    for (let i = 0; i < 64; i++) {
      const got = Number(c.read(this.#uevents, this.#events, BigInt(this.#events.length)));
      if (got < 0 && errno() === EAGAIN) return;
    }
  }

  /** Closes the descriptors (watches end with the instance). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const c = libc();
    for (const f of [this.#epoll, this.fd, this.#mounts, this.#uevents]) if (f >= 0) c.close(f);
  }
}

/** A non-blocking NETLINK_KOBJECT_UEVENT socket bound to {@link UEVENT_GROUPS}, or -1. */
function ueventSocket(): number {
  const c = libc();
  const fd = c.socket(AF_NETLINK, SOCK_RAW | O_NONBLOCK | O_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  if (fd < 0) return -1;
  const address = new Uint8Array(SOCKADDR_NL_SIZE);
  const v = new DataView(address.buffer);
  v.setUint16(0, AF_NETLINK, true);
  v.setUint32(8, UEVENT_GROUPS, true); // nl_pid 0: the kernel assigns one
  if (c.bind(fd, address, SOCKADDR_NL_SIZE) < 0) {
    c.close(fd);
    return -1;
  }
  return fd;
}

/**
 * Whether the agent runs in the initial user namespace (uid_map maps all of it): the kernel
 * sends device uevents only to network namespaces owned by that one, so elsewhere a quiet socket
 * would not mean "nothing changed". Read off the event loop, as every file is.
 */
async function initialUserNamespace(): Promise<boolean> {
  try {
    const map = (await Deno.readTextFile("/proc/self/uid_map")).trim().split(/\s+/);
    return map.length === 3 && map[0] === "0" && map[1] === "0" && map[2] === "4294967295";
  } catch {
    return false;
  }
}

function errnoIsNot(e: number): boolean {
  return errno() !== e;
}
