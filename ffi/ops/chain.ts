/**
 * Many small file-system look-ups in one blocking call: read a small file, read a symbolic link,
 * list a directory, statfs a path — for a whole list of paths at once. On the trampoline all of
 * them run as one native syscall chain (`syscallChain`, ffi/rawsyscall.ts), one thread hand-off
 * for the lot; in a worker they run one after another with libc. What guest-get-fsinfo needs per
 * mount (a sysfs device link, its `slaves/`, its `uevent`, statfs) thus costs one hop per poll
 * instead of several per mount.
 *
 * Every fd a chain opens is closed inside the same chain (a close step follows each open,
 * skipped only when the open failed), so an abandoned job leaves nothing open behind.
 *
 * Answers are exact or absent: a file longer than its buffer, a link target of PATH_MAX bytes or
 * a directory that needs more than one getdents64 call come back `incomplete`, and the caller
 * asks again the ordinary way.
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import {
  cString,
  errno,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDONLY,
  type OsPath,
  strerror,
} from "../libc.ts";
import {
  addressOf,
  AT_FDCWD,
  CHAIN_A0_FROM,
  CHAIN_STEP_WORDS,
  chainRetOffset,
  syscallChain,
} from "../rawsyscall.ts";
import { type BlockingOp, isError } from "./op.ts";
import { decodeStatfs, STATFS_SIZE, statfsFailure, type StatfsResult } from "./statfs.ts";

/** One look-up. */
export type ChainItem =
  /** The whole file, if it holds at most `size` bytes (default {@link READ_SIZE}). */
  | { kind: "read"; path: OsPath; size?: number }
  /** readlink(path). */
  | { kind: "readlink"; path: OsPath }
  /** The entry names of a directory, in getdents order, without `.` and `..`. */
  | { kind: "list"; path: OsPath }
  /** statfs(path). */
  | { kind: "statfs"; path: OsPath }
  /** inotify_add_watch(fd, path, mask): the watch descriptor (trampoline only). */
  | { kind: "watch"; path: OsPath; fd: number; mask: number };

/** One look-up's outcome: success carries the field of its kind. */
export interface ChainAnswer {
  /** 0 on success, else the errno of the call that failed. */
  errno: number;
  /** strerror(errno), when `errno` is not 0. */
  strerror?: string;
  /** "read": the contents; "readlink": the target's bytes. */
  data?: ArrayBuffer;
  /** "list": the names. */
  names?: string[];
  /** "statfs": the result (failures too). */
  statfs?: StatfsResult;
  /** "watch": the watch descriptor. */
  wd?: number;
  /** Not answered exactly (see the module comment): ask the ordinary way. */
  incomplete?: true;
}

/** The request. */
export interface ChainArgs {
  items: ChainItem[];
}

/** Default most bytes of a "read" (a sysfs attribute is at most a page). */
export const READ_SIZE = 4096;
/** readlink's buffer: sysfs targets are far shorter; one this long may be cut (incomplete). */
const LINK_SIZE = 512;
/**
 * getdents64's buffer: a `slaves/` directory holds a few entries; a second call with
 * {@link DIRENT_PROBE} bytes must return 0 (else incomplete).
 */
const DIRENT_SIZE = 2048;
/** Room for one entry of any name (a 19-byte header plus up to 255 bytes and a NUL, aligned). */
const DIRENT_PROBE = 280;

const decoder = new TextDecoder();
const ENOSYS = 38;

/** The names in getdents64 records (`d_ino` u64, `d_off` s64, `d_reclen` u16, `d_type`, name). */
function direntNames(buf: Uint8Array, length: number, names: string[]): void {
  const view = new DataView(buf.buffer, buf.byteOffset, length);
  for (let at = 0; at < length;) {
    const reclen = view.getUint16(at + 16, true);
    const start = at + 19;
    let end = start;
    while (end < at + reclen && buf[end] !== 0) end++;
    const name = decoder.decode(buf.subarray(start, end));
    if (name !== "." && name !== "..") names.push(name);
    at += reclen;
  }
}

function failure(e: number): ChainAnswer {
  return { errno: e, strerror: strerror(e) };
}

const INCOMPLETE: () => ChainAnswer = () => ({ errno: 0, incomplete: true });

/** Exactly `n` bytes of `buf`, as the answer's own buffer. */
function bytes(buf: Uint8Array, n: number): ArrayBuffer {
  return buf.slice(0, n).buffer;
}

/** The trampoline half's plan for one item: how to read its steps' results. */
interface Planned {
  answer(ret: (step: number) => bigint): ChainAnswer;
}

/** Steps each kind takes. */
const STEPS: Record<ChainItem["kind"], number> = {
  read: 4,
  readlink: 1,
  list: 4,
  statfs: 1,
  watch: 1,
};

/** Bytes of output buffer each kind needs in the arena. */
function outputSize(item: ChainItem): number {
  switch (item.kind) {
    case "read":
      return (item.size ?? READ_SIZE) + 1;
    case "readlink":
      return LINK_SIZE;
    case "list":
      return DIRENT_SIZE + DIRENT_PROBE;
    case "statfs":
      return STATFS_SIZE();
    case "watch":
      return 0;
  }
}

const align8 = (n: number) => (n + 7) & ~7;

/**
 * Builds the chain for `items`: its steps, the one buffer (arena) holding every path and every
 * output buffer they point into, and how to answer each item from the results.
 */
function plan(items: readonly ChainItem[]) {
  const nr = sys();
  const paths = items.map((item) => cString(item.path));
  let total = 0;
  let count = 0;
  items.forEach((item, i) => {
    const kind = item.kind;
    if (!Object.hasOwn(STEPS, kind)) {
      throw new Error(`chain: unknown item kind ${JSON.stringify(kind)}`);
    }
    total += align8(paths[i].length) + align8(outputSize(item));
    count += STEPS[kind];
  });
  const arena = new Uint8Array(total);
  const base = addressOf(arena);
  let used = 0;
  /** A region of the arena, and its address. */
  const region = (size: number): [Uint8Array<ArrayBuffer>, bigint] => {
    const view = arena.subarray(used, used + size);
    const at = base + BigInt(used);
    used += align8(size);
    return [view, at];
  };
  const steps = new BigInt64Array(count * CHAIN_STEP_WORDS);
  let next = 0;
  const step = (call: number, a0: bigint, a1 = 0n, a2 = 0n, a3 = 0n, from = -1): number => {
    const w = next * CHAIN_STEP_WORDS;
    steps[w] = BigInt(call);
    steps[w + 1] = a0;
    steps[w + 2] = a1;
    steps[w + 3] = a2;
    steps[w + 4] = a3;
    if (from !== -1) steps[w + 7] = BigInt(CHAIN_A0_FROM | (chainRetOffset(from) << 8));
    return next++;
  };
  const cwd = BigInt(AT_FDCWD);
  const flags = BigInt(O_RDONLY | O_CLOEXEC);
  const planned = items.map((item, i): Planned => {
    const [pathView, path] = region(paths[i].length);
    pathView.set(paths[i]);
    switch (item.kind) {
      case "read": {
        const size = item.size ?? READ_SIZE;
        const [data, at] = region(size + 1);
        const open = step(nr.openat, cwd, path, flags);
        const read = step(nr.read, 0n, at, BigInt(size), 0n, open);
        // A second read must find the end: then the first one got the whole file.
        const eof = step(nr.read, 0n, at + BigInt(size), 1n, 0n, open);
        step(nr.close, 0n, 0n, 0n, 0n, open);
        return {
          answer: (ret) => {
            for (const s of [open, read, eof]) if (isError(ret(s))) return failure(Number(-ret(s)));
            if (ret(eof) !== 0n) return INCOMPLETE();
            return { errno: 0, data: bytes(data, Number(ret(read))) };
          },
        };
      }
      case "readlink": {
        const [target, at] = region(LINK_SIZE);
        const s = step(nr.readlinkat, cwd, path, at, BigInt(LINK_SIZE));
        return {
          answer: (ret) => {
            const n = ret(s);
            if (isError(n)) return failure(Number(-n));
            if (n === BigInt(LINK_SIZE)) return INCOMPLETE();
            return { errno: 0, data: bytes(target, Number(n)) };
          },
        };
      }
      case "list": {
        const [data, at] = region(DIRENT_SIZE + DIRENT_PROBE);
        // O_NONBLOCK: a FIFO at the path must not hold the chain in open().
        const open = step(nr.openat, cwd, path, flags | BigInt(O_NONBLOCK));
        const read = step(nr.getdents64, 0n, at, BigInt(DIRENT_SIZE), 0n, open);
        const end = step(
          nr.getdents64,
          0n,
          at + BigInt(DIRENT_SIZE),
          BigInt(DIRENT_PROBE),
          0n,
          open,
        );
        step(nr.close, 0n, 0n, 0n, 0n, open);
        return {
          answer: (ret) => {
            for (const s of [open, read, end]) if (isError(ret(s))) return failure(Number(-ret(s)));
            if (ret(end) !== 0n) return INCOMPLETE();
            const names: string[] = [];
            direntNames(data, Number(ret(read)), names);
            return { errno: 0, names };
          },
        };
      }
      case "statfs": {
        const [buf, at] = region(STATFS_SIZE());
        const s = step(nr.statfs, path, at);
        return {
          answer: (ret) => {
            const n = ret(s);
            return { errno: 0, statfs: isError(n) ? statfsFailure(Number(-n)) : decodeStatfs(buf) };
          },
        };
      }
      case "watch": {
        const s = step(nr.inotify_add_watch, BigInt(item.fd), path, BigInt(item.mask));
        return {
          answer: (ret) => {
            const n = ret(s);
            return isError(n) ? failure(Number(-n)) : { errno: 0, wd: Number(n) };
          },
        };
      }
    }
  });
  return { steps, count, arena, planned };
}

/** The worker half of one item: libc calls on this thread. */
function viaLibc(item: ChainItem): ChainAnswer {
  const c = libc();
  switch (item.kind) {
    case "read": {
      const size = item.size ?? READ_SIZE;
      const fd = c.open(cString(item.path), O_RDONLY | O_CLOEXEC, 0);
      if (fd === -1) return failure(errno());
      try {
        const data = new Uint8Array(size);
        const n = Number(c.read(fd, data, BigInt(size)));
        if (n === -1) return failure(errno());
        const more = Number(c.read(fd, new Uint8Array(1), 1n));
        if (more === -1) return failure(errno());
        return more !== 0 ? INCOMPLETE() : { errno: 0, data: bytes(data, n) };
      } finally {
        c.close(fd);
      }
    }
    case "readlink": {
      const target = new Uint8Array(LINK_SIZE);
      const n = Number(c.readlink(cString(item.path), target, BigInt(LINK_SIZE)));
      if (n === -1) return failure(errno());
      return n === LINK_SIZE ? INCOMPLETE() : { errno: 0, data: bytes(target, n) };
    }
    case "list": {
      const getdents64 = c.getdents64;
      if (getdents64 === null) return INCOMPLETE(); // an old libc: the ordinary way then
      const fd = c.open(cString(item.path), O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
      if (fd === -1) return failure(errno());
      try {
        const data = new Uint8Array(DIRENT_SIZE);
        const n = Number(getdents64(fd, data, BigInt(DIRENT_SIZE)));
        if (n === -1) return failure(errno());
        const end = Number(getdents64(fd, new Uint8Array(DIRENT_PROBE), BigInt(DIRENT_PROBE)));
        if (end === -1) return failure(errno());
        if (end !== 0) return INCOMPLETE();
        const names: string[] = [];
        direntNames(data, n, names);
        return { errno: 0, names };
      } finally {
        c.close(fd);
      }
    }
    case "statfs": {
      const buf = new Uint8Array(STATFS_SIZE());
      const ok = c.statfs(cString(item.path), buf) !== -1;
      return { errno: 0, statfs: ok ? decodeStatfs(buf) : statfsFailure(errno()) };
    }
    case "watch":
      // Watches serve the trampoline's change cache only (ffi/inotify.ts), never a worker.
      return failure(ENOSYS);
    default:
      throw new Error(
        `chain: unknown item kind ${JSON.stringify((item as { kind: unknown }).kind)}`,
      );
  }
}

/** The look-ups of `items`, answered in item order. */
export const chain: BlockingOp<ChainArgs, ChainAnswer[]> = {
  async trampoline({ items }) {
    if (items.length === 0) return [];
    const { steps, count, arena, planned } = plan(items);
    // Not even `abandoned` stops a chain half-way: it runs natively to its end, closes included.
    await syscallChain(steps, count, [arena]);
    const ret = (s: number) => steps[s * CHAIN_STEP_WORDS + 8];
    return planned.map((p) => p.answer(ret));
  },

  worker: ({ items }) => items.map(viaLibc),

  transferables: (answers) => answers.flatMap((a) => a.data === undefined ? [] : [a.data]),
};
