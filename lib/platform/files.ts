/**
 * The `os` facet: the files commands read and write to learn about the guest (/proc, /sys,
 * /etc, /var/run/utmp, home directories). Every call is one of Deno's async file operations,
 * which run on the runtime's blocking pool: a file system that stops answering (a dead NFS home
 * directory, a stopped FUSE daemon) holds that one call, never the event loop.
 *
 * {@link osFiles} takes a root so tests can lay out a fake /sys or /proc as plain files in a
 * temp directory and run a family's real code over it.
 *
 * @module
 */

import type { StatfsResult } from "../../ffi/statfs.ts";
import type { CacheOptions, ChangeCache } from "./watch.ts";

/** A failed file operation: the C library's text and, where the OS gave one, the errno. */
export class OsFileError extends Error {
  constructor(
    /** strerror text, e.g. `No such file or directory`. */
    readonly text: string,
    /** errno (2 for ENOENT, …); 0 when the failure did not come from a system call. */
    readonly errno: number,
    /** The path as the command named it (without the test root). */
    readonly path: string,
    /**
     * Which step of a multi-step operation failed, where callers need to tell them apart:
     * `open`, `read`, `write` or `fsync` for {@link OsFiles.readFile},
     * {@link OsFiles.writeFile}, {@link OsFiles.readPrefix} and {@link OsFiles.writeInPlace};
     * undefined elsewhere.
     */
    readonly syscall?: string,
  ) {
    super(`${path}: ${text}`);
    this.name = "OsFileError";
  }
}

/** What a command can learn from stat(). */
export interface OsFileInfo {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
  readonly isBlockDevice: boolean;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Device numbers of a device node (st_rdev), 0 otherwise. */
  readonly rdev: number;
  /**
   * Device, inode, size and change times in one string: equal values mean the file was not
   * replaced or rewritten in between, so a cache of its contents is still good.
   */
  readonly identity: string;
}

/** readdir's `d_type` values, which C code tests before, or instead of, a stat. */
export const DT_UNKNOWN = 0;
export const DT_FIFO = 1;
export const DT_CHR = 2;
export const DT_DIR = 4;
export const DT_BLK = 6;
export const DT_REG = 8;
export const DT_LNK = 10;
export const DT_SOCK = 12;

/** A directory entry as readdir reports it. */
export interface OsDirEntry {
  readonly name: string;
  /** `d_type`: {@link DT_DIR}, {@link DT_LNK}, … ({@link DT_UNKNOWN} when it cannot be told). */
  readonly type: number;
}

/** Options of {@link OsFiles.writeFile}. */
export interface WriteOptions {
  /** Create if missing (default true), with this mode (default 0o666 & ~umask). */
  readonly create?: boolean;
  readonly mode?: number;
  /** Append instead of truncating. */
  readonly append?: boolean;
  /** Fail with EEXIST when the file exists (O_CREAT|O_EXCL, as mkstemp creates). */
  readonly exclusive?: boolean;
  /** fsync() before closing. */
  readonly sync?: boolean;
}

/** One look-up {@link OsFiles.lookUp} can answer: the method it stands for, and its path. */
export interface OsLookUp {
  /** `statfs` is the `disks` facet's statfs, so that it can share a look-up with file reads. */
  readonly method: "readFile" | "readLink" | "readDir" | "statfs";
  readonly path: string;
  /** readFile: the most bytes looked for (default one page); a longer file is asked again. */
  readonly size?: number;
}

/**
 * What the method would have returned or thrown; undefined where only the method itself can
 * answer exactly (a file too long for one read, a read error, …).
 */
export type OsLookUpResult =
  | { value: Uint8Array | string | string[] | StatfsResult }
  | { error: OsFileError }
  | undefined;

/** The facet. Paths are absolute guest paths. */
export interface OsFiles {
  /** The whole file (reads until EOF: /proc and /sys report sizes that are not true). */
  readFile(path: string): Promise<Uint8Array>;
  /**
   * open(O_RDONLY) and one read of at most `length` bytes from offset 0, as C code reads a sysfs
   * attribute with pread; a failure says in `syscall` which call failed.
   */
  readPrefix(path: string, length: number): Promise<Uint8Array>;
  /**
   * open(O_WRONLY) of an existing file, without truncating, and one write of `data` at offset 0,
   * as C code stores a sysfs attribute with pwrite; a failure says in `syscall` which call failed.
   */
  writeInPlace(path: string, data: Uint8Array): Promise<void>;
  /** Entry names in directory (readdir) order, without `.` and `..`. */
  readDir(path: string): Promise<string[]>;
  /** The entries with their types, in readdir order, without `.` and `..`. */
  readDirEntries(path: string): Promise<OsDirEntry[]>;
  /** The target of a symbolic link, as stored. */
  readLink(path: string): Promise<string>;
  /** The canonical path (realpath). */
  realPath(path: string): Promise<string>;
  /** stat() (follows symlinks). */
  stat(path: string): Promise<OsFileInfo>;
  /** lstat() (does not follow symlinks). */
  lstat(path: string): Promise<OsFileInfo>;
  /** Writes `data`, creating/truncating as asked. */
  writeFile(path: string, data: Uint8Array, options?: WriteOptions): Promise<void>;
  /** mkdir with a mode (not recursive). */
  mkdir(path: string, mode: number): Promise<void>;
  /** chmod. */
  chmod(path: string, mode: number): Promise<void>;
  /** chown. */
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** rename(2): atomically replaces `to`. */
  rename(from: string, to: string): Promise<void>;
  /** unlink(2) of a file. */
  remove(path: string): Promise<void>;
  /**
   * Many small reads, link reads and listings in one operation off the event loop (one native
   * system call chain, `ffi/sysfs.ts`). Optional: a facet without it is asked method by method.
   */
  lookUp?(list: readonly OsLookUp[]): Promise<OsLookUpResult[]>;
  /**
   * `compute()`'s value, kept while none of `paths` can have changed (inotify, off the event
   * loop: `lib/platform/watch.ts`). Optional: without it, callers compute every time.
   */
  cached?<T>(
    key: string,
    paths: readonly string[],
    compute: () => Promise<T>,
    options?: CacheOptions,
  ): Promise<T>;
}

/**
 * `os` answering the methods and paths of `known` (keys `"<method> <path>"`, see
 * {@link lookUpKey}) from there, everything else from `os` itself.
 */
export function withKnown(os: OsFiles, known: ReadonlyMap<string, OsLookUpResult>): OsFiles {
  function from<T>(
    method: OsLookUp["method"] | "realPath",
    path: string,
    ask: () => Promise<T>,
  ): Promise<T> {
    const a = known.get(lookUpKey(method, path));
    if (a === undefined) return ask();
    return "error" in a ? Promise.reject(a.error) : Promise.resolve(a.value as T);
  }
  return {
    readFile: (path) => from("readFile", path, () => os.readFile(path)),
    readLink: (path) => from("readLink", path, () => os.readLink(path)),
    readDir: (path) => from("readDir", path, () => os.readDir(path)),
    realPath: (path) => from("realPath", path, () => os.realPath(path)),
    readDirEntries: (path) => os.readDirEntries(path),
    // One read of a sysfs attribute returns what reading the whole file returns, up to `length`.
    readPrefix: (path, length) =>
      from("readFile", path, () => os.readPrefix(path, length)).then((data) =>
        data.length > length ? data.subarray(0, length) : data
      ),
    writeInPlace: (path, data) => os.writeInPlace(path, data),
    stat: (path) => os.stat(path),
    lstat: (path) => os.lstat(path),
    writeFile: (path, data, options) => os.writeFile(path, data, options),
    mkdir: (path, mode) => os.mkdir(path, mode),
    chmod: (path, mode) => os.chmod(path, mode),
    chown: (path, uid, gid) => os.chown(path, uid, gid),
    rename: (from, to) => os.rename(from, to),
    remove: (path) => os.remove(path),
    ...(os.cached === undefined ? {} : { cached: os.cached.bind(os) }),
    ...(os.lookUp === undefined ? {} : {
      lookUp: async (list: readonly OsLookUp[]) => {
        // Only what `known` lacks is asked, in one look-up.
        const keys = list.map((l) => lookUpKey(l.method, l.path));
        const missing = list.filter((_, i) => !known.has(keys[i]));
        const asked = missing.length > 0 ? await os.lookUp!(missing) : [];
        let next = 0;
        return keys.map((k) => known.has(k) ? known.get(k) : asked[next++]);
      },
    }),
  };
}

/**
 * `os` with the answers to `list` looked up ahead, in one operation where `os` can
 * ({@link OsFiles.lookUp}): code then asks `os` method by method as before, and only what the
 * look-up could not answer exactly costs an operation of its own.
 */
export async function withLookedUp(os: OsFiles, list: readonly OsLookUp[]): Promise<OsFiles> {
  if (os.lookUp === undefined || list.length === 0) return os;
  const known = new Map<string, OsLookUpResult>();
  // In batches: one look-up's buffers grow with its list (a few KiB per listing), and a large
  // guest has thousands of memory blocks.
  for (let at = 0; at < list.length; at += LOOK_UP_BATCH) {
    const batch = list.slice(at, at + LOOK_UP_BATCH);
    const answers = await os.lookUp(batch);
    batch.forEach((l, i) => known.set(lookUpKey(l.method, l.path), answers[i]));
  }
  return withKnown(os, known);
}

/**
 * Room for a sysfs attribute (a number or a word) read ahead by {@link withLookedUp}; a longer one
 * is read on its own when asked.
 */
export const ATTRIBUTE_READ_AHEAD = 64;

/** Most look-ups {@link withLookedUp} makes in one operation. */
const LOOK_UP_BATCH = 256;

/** The key of a method's answer for {@link withKnown}. */
export function lookUpKey(method: OsLookUp["method"] | "realPath", path: string): string {
  return `${method} ${path}`;
}

const OS_ERROR = /(?:^|: )([^:]*) \(os error (\d+)\)/;

/** Turns whatever a Deno file operation threw into an {@link OsFileError}. */
export function toOsFileError(e: unknown, path: string, syscall?: string): OsFileError {
  if (e instanceof OsFileError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const m = OS_ERROR.exec(msg);
  return m
    ? new OsFileError(m[1], Number(m[2]), path, syscall)
    : new OsFileError(msg, 0, path, syscall);
}

/** ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP: path lookup failures, which only open() reports. */
const PATH_ERRNOS = new Set([2, 20, 36, 40]);

/** Runs one step of a file operation, tagging a failure with the step's name. */
async function step<T>(syscall: string, path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw toOsFileError(e, path, syscall);
  }
}

function info(st: Deno.FileInfo): OsFileInfo {
  return {
    isFile: st.isFile,
    isDirectory: st.isDirectory,
    isSymlink: st.isSymlink,
    isBlockDevice: st.isBlockDevice ?? false,
    size: st.size,
    mode: st.mode ?? 0,
    uid: st.uid ?? 0,
    gid: st.gid ?? 0,
    rdev: st.rdev ?? 0,
    identity: `${st.dev}:${st.ino}:${st.size}:${st.mtime?.getTime()}:${st.ctime?.getTime()}`,
  };
}

/**
 * The real facet over the tree at `root` (`/` in the agent; a temp dir holding a fake /sys in
 * tests).
 */
export function osFiles(root: string): OsFiles {
  const base = root.replace(/\/+$/, "");
  const at = (path: string) => base + path;
  async function guard<T>(
    path: string,
    op: () => Promise<T>,
    syscall?: OsFileError["syscall"],
  ): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw toOsFileError(e, path, syscall);
    }
  }
  let loading: Promise<ChangeCache> | undefined;
  let cache: ChangeCache | undefined;
  const facet: OsFiles = {
    readFile: async (path) => {
      try {
        // One operation on the blocking pool (open, read to EOF, close).
        return await Deno.readFile(at(path));
      } catch (e) {
        const err = toOsFileError(e, path, "open");
        if (PATH_ERRNOS.has(err.errno)) throw err;
        // Again step by step, so the failure names the call that failed (open or read).
        return await guard(path, () => readToEnd(at(path), path));
      }
    },
    readPrefix: async (path, length) => {
      using file = await guard(path, () => Deno.open(at(path), { read: true }), "open");
      const buf = new Uint8Array(length);
      const n = await guard(path, () => file.read(buf), "read");
      return buf.subarray(0, n ?? 0);
    },
    writeInPlace: async (path, data) => {
      using file = await guard(path, () => Deno.open(at(path), { write: true }), "open");
      await guard(path, () => file.write(data), "write");
    },
    readDir: (path) =>
      guard(path, async () => {
        const names: string[] = [];
        for await (const entry of Deno.readDir(at(path))) names.push(entry.name);
        return names;
      }),
    readDirEntries: (path) =>
      guard(path, async () => {
        const entries: OsDirEntry[] = [];
        for await (const e of Deno.readDir(at(path))) {
          entries.push({ name: e.name, type: await direntType(e, `${at(path)}/${e.name}`) });
        }
        return entries;
      }),
    readLink: (path) => guard(path, () => Deno.readLink(at(path))),
    realPath: (path) =>
      guard(path, async () => {
        const real = await Deno.realPath(at(path));
        return base !== "" && real.startsWith(base + "/") ? real.slice(base.length) : real;
      }),
    stat: (path) => guard(path, async () => info(await Deno.stat(at(path)))),
    lstat: (path) => guard(path, async () => info(await Deno.lstat(at(path)))),
    writeFile: (path, data, options = {}) =>
      guard(path, () => writeAll(at(path), path, data, options)),
    mkdir: (path, mode) => guard(path, () => Deno.mkdir(at(path), { mode })),
    chmod: (path, mode) => guard(path, () => Deno.chmod(at(path), mode)),
    chown: (path, uid, gid) => guard(path, () => Deno.chown(at(path), uid, gid)),
    rename: (from, to) => guard(from, () => Deno.rename(at(from), at(to))),
    remove: (path) => guard(path, () => Deno.remove(at(path))),
    lookUp: async (list) => {
      const { lookUp } = await (chainModule ??= import("../../ffi/sysfs.ts"));
      const kinds = {
        readFile: "read",
        readLink: "readlink",
        readDir: "list",
        statfs: "statfs",
      } as const;
      const answers = await lookUp(
        list.map((l) => ({ kind: kinds[l.method], path: at(l.path), size: l.size })),
      );
      return answers.map((a, i): OsLookUpResult => {
        const { method, path } = list[i];
        if (a.incomplete) return undefined;
        if (method === "statfs") return { value: a.statfs! };
        if (a.errno !== 0) {
          // readFile names the failed step; only open() fails for a path that does not resolve.
          if (method !== "readFile") return { error: new OsFileError(a.strerror!, a.errno, path) };
          if (!PATH_ERRNOS.has(a.errno)) return undefined;
          return { error: new OsFileError(a.strerror!, a.errno, path, "open") };
        }
        if (method === "readFile") return { value: new Uint8Array(a.data!) };
        if (method === "readLink") return { value: linkText.decode(a.data!) };
        return { value: a.names! };
      });
    },
    cached: async (key, paths, compute, options) => {
      cache ??= await (loading ??= Promise.all([
        import("./watch.ts"),
        chainModule ??= import("../../ffi/sysfs.ts"),
      ]).then(([{ changeCache }, { lookUp }]) => changeCache(base, lookUp, facet)));
      return await cache.cached(key, paths, compute, options);
    },
  };
  return facet;
}

let chainModule: Promise<typeof import("../../ffi/sysfs.ts")> | undefined;

/**
 * d_type of an entry. Deno reports three kinds from readdir; the rest (devices, FIFOs, sockets:
 * never in sysfs) are told by lstat, as readdir's d_type would have told them.
 */
async function direntType(e: Deno.DirEntry, path: string): Promise<number> {
  if (e.isDirectory) return DT_DIR;
  if (e.isSymlink) return DT_LNK;
  if (e.isFile) return DT_REG;
  try {
    const st = await Deno.lstat(path);
    if (st.isBlockDevice) return DT_BLK;
    if (st.isCharDevice) return DT_CHR;
    if (st.isFifo) return DT_FIFO;
    if (st.isSocket) return DT_SOCK;
  } catch {
    // gone since the listing
  }
  return DT_UNKNOWN;
}

const linkText = new TextDecoder();

/**
 * open, write everything, optionally fsync, close. With `exclusive` or `sync` a failure names
 * its step and `mode` is the creation mode (umask applies, as for mkstemp).
 */
async function writeAll(
  real: string,
  path: string,
  data: Uint8Array,
  options: WriteOptions,
): Promise<void> {
  const exclusive = options.exclusive ?? false;
  if (!exclusive && !options.sync) {
    // One call; Deno.writeFile applies `mode` whatever the umask.
    return await Deno.writeFile(real, data, {
      create: options.create ?? true,
      append: options.append ?? false,
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
    });
  }
  using file = await step("open", path, () =>
    Deno.open(real, {
      write: true,
      create: !exclusive && (options.create ?? true),
      createNew: exclusive,
      append: options.append ?? false,
      truncate: !(options.append ?? false),
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
    }));
  for (let done = 0; done < data.length;) {
    done += await step("write", path, () => file.write(data.subarray(done)));
  }
  if (options.sync) await step("fsync", path, () => file.sync());
}

/** Reads until EOF in growing chunks; size-less /proc files need it. */
async function readToEnd(real: string, path: string): Promise<Uint8Array> {
  using file = await step("open", path, () => Deno.open(real, { read: true }));
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const chunk = new Uint8Array(total < 65536 ? 65536 : total);
    const n = await step("read", path, () => file.read(chunk));
    if (n === null) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
  }
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}
