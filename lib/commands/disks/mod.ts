/**
 * guest-get-fsinfo, guest-get-disks and guest-fstrim (§3.9), over the fsfreeze mount list.
 *
 * The sysfs walk (`address.ts`) and the disk listing (`get_disks.ts`) read through the `os`
 * facet; statvfs, FITRIM and the NVMe SMART log go through the `disks` facet, off the event loop.
 *
 * @module
 */

import type { Agent } from "../../agent.ts";
import { t } from "../../dispatch/schema.ts";
import { defineCommand } from "../../dispatch/table.ts";
import { genericError } from "../../errors.ts";
import type { MountEntry } from "../../system/mounts.ts";
import { type DeviceWalk, walkDevice } from "./address.ts";
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

/** One filesystem's entry: its devices' addresses, and sizes when statvfs answers. */
async function filesystemInfo(agent: Agent, mount: MountEntry): Promise<FilesystemInfo> {
  const walk: DeviceWalk = { disks: [] };
  const devpath = `/sys/dev/block/${mount.devmajor}:${mount.devminor}`;
  await walkDevice(agent.platform.os, devpath, walk);
  if (walk.error !== undefined) throw genericError(walk.error);
  const st = await agent.platform.disks.statfs(mount.path);
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
    const mounts = await agent.platform.mounts();
    const list: FilesystemInfo[] = [];
    for (const m of mounts) list.unshift(await filesystemInfo(agent, m));
    return list;
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
  run: async ({ minimum }, agent) => {
    agent.log.debug("guest-fstrim called");
    const mounts = await agent.platform.mounts();
    const paths: TrimResult[] = [];
    // fstrim_range.minlen is a __u64: a negative minimum reaches the kernel as a huge one.
    for (const m of mounts) paths.unshift(await trim(agent, m, u64(minimum ?? 0n)));
    return { paths };
  },
});

/** The family, for the command table. */
export const diskCommands = [guestFstrim, guestGetDisks, guestGetFsinfo];
