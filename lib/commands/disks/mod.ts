/**
 * guest-get-fsinfo, guest-get-disks and guest-fstrim (§3.9), over the fsfreeze mount list.
 *
 * The sysfs walk (`address.ts`) and the disk listing (`get_disks.ts`) read through the `os`
 * facet; statvfs, FITRIM and the NVMe SMART log go through the `disks` facet, off the event loop.
 *
 * @module
 */

import { sameBytes } from "../../bytes.ts";
import type { Agent } from "../../agent.ts";
import { t } from "../../dispatch/schema.ts";
import { audited } from "../../audit.ts";
import { defineCommand } from "../../dispatch/table.ts";
import { genericError } from "../../errors.ts";
import type { StatfsResult } from "../../platform/disks.ts";
import type { OsFiles } from "../../platform/files.ts";
import type { MountEntry } from "../../system/mounts.ts";
import { type DeviceWalk, readAhead, readAheadAsLastTime, walkDevice } from "./address.ts";
import { listDisks } from "./get_disks.ts";
import {
  type FilesystemInfo,
  guestDiskInfo,
  guestFilesystemInfo,
  guestFilesystemTrimResponse,
  type TrimResult,
} from "./types.ts";

const ENOTTY = 25;
const EOPNOTSUPP = 95;

const u64 = (v: bigint) => BigInt.asUintN(64, v);

/** How many mounts are looked at at once: enough to batch, few blocking-pool threads. */
const MOUNTS_AT_ONCE = 8;

/** `fn` of each item, in item order, a few at a time. */
async function eachMount<T>(
  mounts: readonly MountEntry[],
  fn: (mount: MountEntry, index: number) => Promise<T>,
): Promise<T[]> {
  const out = new Array<T>(mounts.length);
  let next = 0;
  const worker = async () => {
    while (next < mounts.length) {
      const i = next++;
      out[i] = await fn(mounts[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(MOUNTS_AT_ONCE, mounts.length) }, worker));
  return out;
}

/** One filesystem's entry: its devices' addresses, and sizes when statvfs answers. */
function filesystemInfo(
  mount: MountEntry,
  walk: DeviceWalk,
  st: StatfsResult,
): FilesystemInfo {
  // qemu-ga computes in unsigned long.
  const sizes = st.ok
    ? {
      "used-bytes": u64(u64(st.blocks - st.bfree) * st.frsize),
      "total-bytes": u64(u64(st.blocks - st.bfree + st.bavail) * st.frsize),
      "total-bytes-privileged": u64(st.blocks * st.frsize),
    }
    : {};
  return {
    // Always set: the device's name, or the basename of its /sys/dev/block link.
    name: walk.name ?? "",
    mountpoint: mount.dirname,
    type: mount.devtype,
    ...sizes,
    disk: walk.disks,
  };
}

/**
 * statfs of every mount. Where the `disks` facet batches them, they go through the `os` look-up
 * instead: there the last poll's mount points were read ahead with the mount table, so an unchanged
 * mount list costs no hop of its own.
 */
async function sizesOf(
  agent: Agent,
  os: OsFiles,
  mounts: readonly MountEntry[],
): Promise<StatfsResult[]> {
  if (agent.platform.disks.statfsAll === undefined) return await statfsEach(agent, mounts);
  // Look-ups name paths as text: only mount points whose bytes the text gives back exactly.
  const exact = mounts.every((m) => sameBytes(utf8.encode(m.dirname), m.path));
  if (os.lookUp !== undefined && exact) {
    const answers = await os.lookUp(mounts.map((m) => ({ method: "statfs", path: m.dirname })));
    const sizes = answers.map((a) => a !== undefined && "value" in a ? a.value : undefined);
    if (sizes.every((v) => v !== undefined)) return sizes as StatfsResult[];
  }
  return await statfsEach(agent, mounts);
}

/** statfs of every mount, in one operation where the `disks` facet batches them. */
function statfsEach(agent: Agent, mounts: readonly MountEntry[]): Promise<StatfsResult[]> {
  const { disks } = agent.platform;
  return disks.statfsAll === undefined
    ? eachMount(mounts, (m) => disks.statfs(m.path))
    : disks.statfsAll(mounts.map((m) => m.path));
}

/**
 * The mount list and its device walks, kept while neither the mount table nor any device
 * changed (the `os` facet's change cache, where it reports device events): a poll of an unchanged
 * guest then costs only the statfs of each mount, as qemu-ga's statvfs calls.
 */
function devicesCached<T>(agent: Agent, key: string, compute: () => Promise<T>): Promise<T> {
  const os = agent.platform.os;
  return os.cached !== undefined ? os.cached(key, [], compute, { devices: true }) : compute();
}

const utf8 = new TextEncoder();

/** FITRIM on one mount point, as a per-path result. */
async function trim(agent: Agent, mount: MountEntry, minlen: bigint): Promise<TrimResult> {
  const r = await agent.platform.disks.fitrim(mount.path, minlen);
  if (r.ok) {
    // The kernel's values, read back into qemu-ga's int64 members.
    return {
      path: mount.dirname,
      minimum: BigInt.asIntN(64, r.minlen),
      trimmed: BigInt.asIntN(64, r.trimmed),
    };
  }
  if (r.stage === "open") return { path: mount.dirname, error: `failed to open: ${r.strerror}` };
  if (r.errno === ENOTTY || r.errno === EOPNOTSUPP) {
    return { path: mount.dirname, error: "trim not supported" };
  }
  return { path: mount.dirname, error: `failed to trim: ${r.strerror}` };
}

/** Reports the mounted filesystems and the disks under them. */
export const guestGetFsinfo = defineCommand({
  name: "guest-get-fsinfo",
  summary: "List mounted filesystems with their sizes and the disks they live on",
  args: [],
  returns: t.list(guestFilesystemInfo),
  run: async (_args, agent) => {
    // Set when the walks were made now: the files read for them may include last poll's sizes.
    let fresh: OsFiles | undefined;
    const { mounts, walks } = await devicesCached(agent, "fsinfo walks", async () => {
      // The mount table and the files the last poll's walks began with, in one look-up.
      const ahead = await readAheadAsLastTime(agent.platform.os);
      const mounts = await agent.platform.mounts(ahead);
      // qemu-ga stops at the first mount whose devices it cannot walk; sysfs walks do not hang,
      // so all run first and statvfs (which can, on a dead mount) only when none failed.
      // The files every walk starts with, read in one go (unless read ahead already).
      const os = await readAhead(ahead, mounts);
      const walks = await eachMount(mounts, async (m) => {
        const walk: DeviceWalk = { disks: [] };
        await walkDevice(os, `/sys/dev/block/${m.devmajor}:${m.devminor}`, walk);
        return walk;
      });
      // A failed walk is not kept: the next poll walks again.
      const failed = walks.find((w) => w.error !== undefined);
      if (failed !== undefined) throw genericError(failed.error!);
      fresh = os;
      return { mounts, walks };
    });
    const sizes = fresh !== undefined
      ? await sizesOf(agent, fresh, mounts)
      : await statfsEach(agent, mounts);
    const list = mounts.map((m, i) => filesystemInfo(m, walks[i], sizes[i]));
    // qemu-ga prepends each mount's entry.
    return list.reverse();
  },
});

/** Reports the guest's block devices. */
export const guestGetDisks = defineCommand({
  name: "guest-get-disks",
  summary: "List block devices and their partitions, dependencies and addresses",
  args: [],
  returns: t.list(guestDiskInfo),
  run: (_args, agent) => listDisks(agent.platform.os, agent.platform.disks),
});

/** Discards unused blocks of every mounted filesystem. */
export const guestFstrim = defineCommand({
  name: "guest-fstrim",
  summary: "Discard unused blocks on every mounted filesystem; reports what each trimmed",
  args: [{ name: "minimum", type: t.int, optional: true }],
  returns: guestFilesystemTrimResponse,
  run: ({ minimum }, agent) =>
    audited(agent, "guest-fstrim", { minimum }, async () => {
      agent.log.debug("guest-fstrim called");
      const mounts = await agent.platform.mounts();
      const paths: TrimResult[] = [];
      // fstrim_range.minlen is a __u64: a negative minimum reaches the kernel as a huge one.
      for (const m of mounts) paths.unshift(await trim(agent, m, u64(minimum ?? 0n)));
      return { paths };
    }),
});

/** The family, for the command table. */
export const diskCommands = [guestFstrim, guestGetDisks, guestGetFsinfo];
