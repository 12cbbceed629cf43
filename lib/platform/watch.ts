/**
 * Values computed from files that rarely change (os-release, utmp, the local time zone), kept
 * while inotify says none of those files can have changed: a poll then costs no file access at
 * all, where qemu-ga reads and parses them every time.
 *
 * Before a value is computed, one look-up off the event loop watches each file (following
 * symlinks, as the computation's reads do), every directory on its path, on the path of each
 * symlink it leads through and on its real path (a rename or a new link anywhere on the way
 * changes what the path names), and checks with
 * statfs that all of them live on local filesystems (`lib/system/local_fs.ts`). Each later use
 * first drains the inotify descriptor and the mount table's flag without blocking
 * (`ffi/inotify.ts`); an event on any of a value's watches, lost events or a mount change drop
 * it. A path on a network or FUSE filesystem, or any failure to watch, means no caching: the
 * value is computed every time, as without this module.
 *
 * A value may also depend on the devices (sysfs, the udev database): it is then dropped by any
 * kernel or udev uevent as well, and kept only over the real root where those are reported.
 *
 * @module
 */

import { ChangeNotifier, DEVICE_CHANGE, DIRECTORY_EVENTS, FILE_EVENTS } from "../../ffi/inotify.ts";
import type { ChainAnswer, ChainItem } from "../../ffi/sysfs.ts";
import { isLocalFilesystem } from "../system/local_fs.ts";

/** The cache. */
export interface ChangeCache {
  /**
   * `compute()`'s value, kept under `key` until one of `paths` (absolute guest paths) may have
   * changed. `compute` must read nothing but `paths` (and what never changes while the guest
   * runs); a rejection is not kept.
   */
  cached<T>(
    key: string,
    paths: readonly string[],
    compute: () => Promise<T>,
    options?: CacheOptions,
  ): Promise<T>;
}

/** What else a cached value depends on. */
export interface CacheOptions {
  /**
   * `compute` also reads the mount table, /sys and /run/udev/data: any device event and any
   * mount change drop the value. Where device events are not reported, nothing is kept.
   */
  devices?: boolean;
}

interface Entry {
  valid: boolean;
  readonly wds: readonly number[];
  value?: Promise<unknown>;
}

const ENOENT = 2;
const ENOTDIR = 20;

/** `/a/b/c` → `/`, `/a`, `/a/b`. */
function directoriesOf(path: string): string[] {
  const dirs = ["/"];
  const parts = path.split("/").filter((p) => p !== "");
  for (let i = 1; i < parts.length; i++) dirs.push(`/${parts.slice(0, i).join("/")}`);
  return dirs;
}

/** The symlinks `path` leads through (itself first, when it is one); most GLib would follow. */
async function linksOn(
  path: string,
  readLink: (path: string) => Promise<string>,
): Promise<string[]> {
  const links: string[] = [];
  for (let at = path; links.length < 40;) {
    const target = await readLink(at).catch(() => undefined);
    if (target === undefined) break;
    links.push(at);
    at = target.startsWith("/") ? target : `${at.slice(0, at.lastIndexOf("/"))}/${target}`;
  }
  return links;
}

/**
 * The real cache over the tree at `root` (`` in the agent, a temp dir in tests); `lookUp` runs
 * chains off the event loop, `os` is the `os` facet.
 */
export function changeCache(
  root: string,
  lookUp: (items: ChainItem[]) => Promise<ChainAnswer[]>,
  os: {
    realPath(path: string): Promise<string>;
    readLink(path: string): Promise<string>;
  },
): ChangeCache {
  let opening: Promise<ChangeNotifier | undefined> | undefined;
  /** null until opened, then the notifier or undefined (none to be had). */
  let notifier: ChangeNotifier | undefined | null = null;
  const entries = new Map<string, Entry>();
  const byWd = new Map<number, Set<Entry>>();
  /** Keys whose paths cannot be watched, until the mount table changes. */
  const unwatchable = new Set<string>();

  function dropAll(): void {
    for (const e of entries.values()) e.valid = false;
    entries.clear();
    byWd.clear();
    unwatchable.clear();
  }

  /**
   * Drops a value's watch registrations: a file replaced at every login (utmp) brings a new
   * inode, so a new watch descriptor, each time.
   */
  function forget(e: Entry): void {
    for (const wd of e.wds) {
      const set = byWd.get(wd);
      set?.delete(e);
      if (set?.size === 0) byWd.delete(wd);
    }
  }

  function drain(n: ChangeNotifier): void {
    const changed = n.changes();
    if (changed === "all") return dropAll();
    for (const wd of changed) {
      const hit = byWd.get(wd);
      if (hit === undefined) continue;
      for (const e of hit) e.valid = false;
    }
  }

  /** Watches for `paths`, or undefined when any of them cannot be trusted to report changes. */
  async function watch(n: ChangeNotifier, paths: readonly string[]): Promise<number[] | undefined> {
    const real = await Promise.all(paths.map((p) => os.realPath(p).catch(() => undefined)));
    const links = await Promise.all(paths.map((p) => linksOn(p, os.readLink)));
    const dirs = new Set<string>();
    for (const p of [...paths, ...real, ...links.flat()]) {
      if (p !== undefined) { for (const d of directoriesOf(p)) dirs.add(d); }
    }
    const items: ChainItem[] = [];
    for (const d of dirs) {
      items.push({ kind: "watch", path: root + d, fd: n.fd, mask: DIRECTORY_EVENTS });
    }
    for (const p of paths) {
      items.push({ kind: "watch", path: root + p, fd: n.fd, mask: FILE_EVENTS });
    }
    for (const d of dirs) items.push({ kind: "statfs", path: root + d });
    for (const p of paths) items.push({ kind: "statfs", path: root + p });
    const answers = items.length > 0 ? await lookUp(items) : [];
    const wds: number[] = [];
    for (const a of answers) {
      if (a.wd !== undefined) wds.push(a.wd);
      else if (a.statfs !== undefined) {
        if (a.statfs.ok && !isLocalFilesystem(a.statfs.type)) return undefined;
      } else if (a.errno !== ENOENT && a.errno !== ENOTDIR) return undefined;
    }
    return wds;
  }

  return {
    async cached<T>(
      key: string,
      paths: readonly string[],
      compute: () => Promise<T>,
      options: CacheOptions = {},
    ) {
      if (notifier === null) {
        notifier = await (opening ??= ChangeNotifier.open().catch(() => undefined));
      }
      const n = notifier;
      if (n === undefined) return await compute();
      // A tree under another root (tests) has no device events of its own.
      if (options.devices && (!n.devices || root !== "")) return await compute();
      drain(n);
      const known = entries.get(key);
      if (known?.valid && known.value !== undefined) return await (known.value as Promise<T>);
      if (unwatchable.has(key)) return await compute();
      const wds = await watch(n, paths);
      if (wds === undefined) {
        unwatchable.add(key);
        return await compute();
      }
      if (options.devices) wds.push(DEVICE_CHANGE);
      // Registered before computing: a change made meanwhile drops the value at its next use.
      const entry: Entry = { valid: true, wds };
      entries.set(key, entry);
      for (const wd of wds) {
        let set = byWd.get(wd);
        if (set === undefined) byWd.set(wd, set = new Set());
        set.add(entry);
      }
      if (known !== undefined) forget(known);
      const value = compute();
      entry.value = value;
      value.catch(() => {
        entry.valid = false;
        forget(entry);
        if (entries.get(key) === entry) entries.delete(key);
      });
      return await value;
    },
  };
}
