/**
 * guest-get-vcpus, guest-set-vcpus and the memory block commands (§3.10): logical processors
 * and memory blocks online or offline through /sys/devices/system/{cpu,memory}.
 *
 * qemu-ga opens each processor or block directory, then `online` or `state` in it, reads the
 * first bytes, and writes only when the requested state differs. The texts below name the paths
 * exactly as qemu-ga builds them, trailing and doubled slashes included, and a processor or
 * block is looked up by its number (`cpu01` is read as `cpu1/`).
 *
 * @module
 */

import { t } from "../dispatch/schema.ts";
import { audited } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError, QgaError } from "../errors.ts";
import {
  ATTRIBUTE_READ_AHEAD,
  DT_DIR,
  type OsDirEntry,
  OsFileError,
  type OsFiles,
  type OsLookUp,
  withLookedUp,
} from "../platform/files.ts";
import { cpuIdOfEntry, isOnlineStatus } from "../system/sysfs_cpu.ts";
import {
  blockIndexOfEntry,
  isOnlineState,
  isRemovable,
  parseBlockSize,
} from "../system/sysfs_memory.ts";

const ENOENT = 2;
const EISDIR = 21;

const CPU_DIR = "/sys/devices/system/cpu";
const MEMORY_DIR = "/sys/devices/system/memory/";

function osError(e: unknown): OsFileError {
  if (e instanceof OsFileError) return e;
  throw e;
}

/**
 * open(dir, O_DIRECTORY) as qemu-ga checks it (listing it opens it so); a failure is
 * `Could not open '<dir>': ...`.
 */
async function openDirectory(os: OsFiles, dir: string): Promise<void> {
  try {
    await os.readDir(dir);
  } catch (e) {
    throw genericError(`Could not open '${dir}': ${osError(e).text}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Logical processors

const GuestLogicalProcessor = t.struct("GuestLogicalProcessor", [
  { name: "logical-id", type: t.int },
  { name: "online", type: t.bool },
  { name: "can-offline", type: t.bool, optional: true },
]);

function vcpuDir(id: bigint): string {
  return `${CPU_DIR}/cpu${id}/`;
}

/** A processor's state; no `online` file (cpu0 on most kernels) means online for good. */
async function readVcpu(
  os: OsFiles,
  id: bigint,
): Promise<{ online: boolean; canOffline: boolean }> {
  const dir = vcpuDir(id);
  await openDirectory(os, dir);
  const file = `${dir}/online`;
  let status: Uint8Array;
  try {
    status = await os.readPrefix(file, 1);
  } catch (e) {
    const err = osError(e);
    if (err.syscall !== "open") throw genericError(`pread("${file}"): ${err.text}`);
    if (err.errno === ENOENT) return { online: true, canOffline: false };
    throw genericError(`could not open ${file}: ${err.text}`);
  }
  if (status.length === 0) throw genericError(`pread("${file}"): unexpected EOF`);
  return { online: isOnlineStatus(status[0]), canOffline: true };
}

/** Brings a processor to the requested state; writes `0` or `1` only when it differs. */
async function writeVcpu(os: OsFiles, id: bigint, online: boolean): Promise<void> {
  const dir = vcpuDir(id);
  await openDirectory(os, dir);
  const file = `${dir}/online`;
  let status: Uint8Array;
  try {
    status = await os.readPrefix(file, 1);
  } catch (e) {
    const err = osError(e);
    if (err.syscall === "open" && err.errno === ENOENT) {
      if (online) return; // onlining a processor that cannot go offline succeeds as is
      throw genericError(`logical processor #${id} can't be offlined`);
    }
    // qemu-ga opens `online` read-write, which a directory refuses at open, not at read.
    if (err.syscall === "open" || err.errno === EISDIR) {
      throw genericError(`could not open ${file}: ${err.text}`);
    }
    throw genericError(`pread("${file}"): ${err.text}`);
  }
  if (status.length === 0) throw genericError(`pread("${file}"): unexpected EOF`);
  if (online === isOnlineStatus(status[0])) return;
  try {
    await os.writeInPlace(file, Uint8Array.of(online ? 0x31 : 0x30));
  } catch (e) {
    const err = osError(e);
    if (err.syscall === "open") throw genericError(`could not open ${file}: ${err.text}`);
    throw genericError(`pwrite("${file}"): ${err.text}`);
  }
}

/** Lists the logical processors in directory order. */
export const guestGetVcpus = defineCommand({
  name: "guest-get-vcpus",
  summary: "List the guest's logical processors and whether each is online",
  args: [],
  returns: t.list(GuestLogicalProcessor),
  run: async (_args, agent) => {
    const os = agent.platform.os;
    let names: string[];
    try {
      names = await os.readDir(CPU_DIR);
    } catch (e) {
      throw genericError(`failed to list entries: ${CPU_DIR}: ${osError(e).text}`);
    }
    const ids = names.map(cpuIdOfEntry).filter((id) => id !== undefined);
    // Each processor's directory and `online` in one look-up, not two operations each.
    const known = await withLookedUp(
      os,
      ids.flatMap((id): OsLookUp[] => [
        { method: "readDir", path: vcpuDir(id) },
        { method: "readFile", path: `${vcpuDir(id)}/online`, size: ATTRIBUTE_READ_AHEAD },
      ]),
    );
    const vcpus = [];
    for (const id of ids) {
      const { online, canOffline } = await readVcpu(known, id);
      vcpus.push({ "logical-id": id, online, "can-offline": canOffline });
    }
    // qemu-ga asserts that a guest has a processor (and aborts when none is listed).
    return vcpus;
  },
});

/** Brings the listed processors online or offline, in order; returns how many were done. */
export const guestSetVcpus = defineCommand({
  name: "guest-set-vcpus",
  summary: "Bring logical processors online or offline; returns how many were processed",
  args: [{ name: "vcpus", type: t.list(GuestLogicalProcessor) }],
  returns: t.int,
  run: ({ vcpus }, agent) =>
    audited(agent, "guest-set-vcpus", { vcpus }, async () => {
      let processed = 0;
      for (const vcpu of vcpus) {
        try {
          await writeVcpu(agent.platform.os, vcpu["logical-id"], vcpu.online);
        } catch (e) {
          // The first element's failure is the reply; a later one ends the run with its count.
          if (processed === 0 || !(e instanceof QgaError)) throw e;
          break;
        }
        processed++;
      }
      return processed;
    }, (processed) => ({ processed })),
});

// ---------------------------------------------------------------------------------------------
// Memory blocks

const GuestMemoryBlock = t.struct("GuestMemoryBlock", [
  { name: "phys-index", type: t.uint64 },
  { name: "online", type: t.bool },
  { name: "can-offline", type: t.bool, optional: true },
]);

const RESPONSE_TYPES = [
  "success",
  "not-found",
  "operation-not-supported",
  "operation-failed",
] as const;
type ResponseType = typeof RESPONSE_TYPES[number];

const GuestMemoryBlockResponse = t.struct("GuestMemoryBlockResponse", [
  { name: "phys-index", type: t.uint64 },
  { name: "response", type: t.enumOf("GuestMemoryBlockResponseType", RESPONSE_TYPES) },
  { name: "error-code", type: t.int, optional: true },
]);

/** qemu-ga prints the uint64 index with a signed format: block 2^64 - 1 is `memory-1`. */
function blockDir(index: bigint): string {
  return `${MEMORY_DIR}memory${BigInt.asIntN(64, index)}/`;
}

/**
 * One read of a block attribute as qemu-ga's sysfs helper does it. On failure: the text a host
 * would see and the errno qemu-ga goes on to test (0 for an empty file).
 */
async function readAttribute(
  os: OsFiles,
  dir: string,
  name: string,
  size: number,
): Promise<Uint8Array | { text: string; errno: number }> {
  let data: Uint8Array;
  try {
    data = await os.readPrefix(dir + name, size);
  } catch (e) {
    const err = osError(e);
    const call = err.syscall === "open" ? "open" : "pread";
    return { text: `${call} sysfs file "${name}": ${err.text}`, errno: err.errno };
  }
  if (data.length === 0) return { text: `pread sysfs file "${name}": unexpected EOF`, errno: 0 };
  return data;
}

async function readMemoryBlock(
  os: OsFiles,
  index: bigint,
): Promise<{ online: boolean; canOffline: boolean }> {
  const dir = blockDir(index);
  await openDirectory(os, dir);
  const state = await readAttribute(os, dir, "state", 10);
  if (!(state instanceof Uint8Array)) {
    // Kernels without `state` cannot offline memory.
    if (state.errno === ENOENT) return { online: true, canOffline: false };
    throw genericError(state.text);
  }
  const removable = await readAttribute(os, dir, "removable", 1);
  if (!(removable instanceof Uint8Array)) {
    if (removable.errno === ENOENT) return { online: isOnlineState(state), canOffline: false };
    throw genericError(removable.text);
  }
  return { online: isOnlineState(state), canOffline: isRemovable(removable[0]) };
}

/**
 * One element of guest-set-memory-blocks. `error-code` is the errno qemu-ga saw, and it keeps
 * qemu-ga's combinations: `success` with an error code when the memory directory cannot be
 * opened for a reason other than ENOENT, or when onlining a block that has no `state`.
 */
async function writeMemoryBlock(
  os: OsFiles,
  index: bigint,
  online: boolean,
): Promise<{ "phys-index": bigint; response: ResponseType; "error-code"?: number }> {
  const reply = (response: ResponseType, errno?: number) => ({
    "phys-index": index,
    response,
    ...(errno === undefined ? {} : { "error-code": errno }),
  });
  try {
    await os.stat(MEMORY_DIR);
  } catch (e) {
    const errno = osError(e).errno;
    return reply(errno === ENOENT ? "operation-not-supported" : "success", errno);
  }
  const dir = blockDir(index);
  try {
    await os.stat(dir);
  } catch (e) {
    const errno = osError(e).errno;
    return reply(errno === ENOENT ? "not-found" : "operation-failed", errno);
  }
  const state = await readAttribute(os, dir, "state", 10);
  if (!(state instanceof Uint8Array)) {
    if (state.errno !== ENOENT) return reply("operation-failed", state.errno);
    return reply(online ? "success" : "operation-not-supported", ENOENT);
  }
  if (online === isOnlineState(state)) return reply("success");
  try {
    await os.writeInPlace(dir + "state", new TextEncoder().encode(online ? "online" : "offline"));
  } catch (e) {
    return reply("operation-failed", osError(e).errno);
  }
  return reply("success");
}

/** Lists the memory blocks in directory order. */
export const guestGetMemoryBlocks = defineCommand({
  name: "guest-get-memory-blocks",
  summary: "List the guest's memory blocks and whether each is online",
  args: [],
  returns: t.list(GuestMemoryBlock),
  run: async (_args, agent) => {
    const os = agent.platform.os;
    let entries: OsDirEntry[];
    try {
      entries = await os.readDirEntries(MEMORY_DIR);
    } catch (e) {
      const err = osError(e);
      // A kernel without memory hotplug has no such directory: no blocks, no error.
      if (err.errno === ENOENT) return [];
      throw genericError(`Can't open directory"${MEMORY_DIR}": ${err.text}`);
    }
    const indexes = entries
      .filter((e) => (e.type & DT_DIR) !== 0) // qemu-ga's test; DT_BLK shares the bit
      .map((e) => blockIndexOfEntry(e.name))
      .filter((index) => index !== undefined);
    // A guest has hundreds of blocks: what each needs, in one look-up, not three operations.
    const known = await withLookedUp(
      os,
      indexes.flatMap((index): OsLookUp[] => [
        { method: "readDir", path: blockDir(index) },
        { method: "readFile", path: `${blockDir(index)}state`, size: ATTRIBUTE_READ_AHEAD },
        { method: "readFile", path: `${blockDir(index)}removable`, size: ATTRIBUTE_READ_AHEAD },
      ]),
    );
    const blocks = [];
    for (const index of indexes) {
      const { online, canOffline } = await readMemoryBlock(known, index);
      blocks.push({ "phys-index": index, online, "can-offline": canOffline });
    }
    if (blocks.length === 0) throw genericError("guest reported zero memory blocks!");
    return blocks;
  },
});

/** Brings the listed memory blocks online or offline; one response per element. */
export const guestSetMemoryBlocks = defineCommand({
  name: "guest-set-memory-blocks",
  summary: "Bring memory blocks online or offline; returns one response per block",
  args: [{ name: "mem-blks", type: t.list(GuestMemoryBlock) }],
  returns: t.list(GuestMemoryBlockResponse),
  run: ({ "mem-blks": blocks }, agent) =>
    audited(agent, "guest-set-memory-blocks", { blocks }, async () => {
      const replies = [];
      for (const block of blocks) {
        replies.push(await writeMemoryBlock(agent.platform.os, block["phys-index"], block.online));
      }
      return replies;
    }, (replies) => ({ responses: replies })),
});

/** Reports the size of one memory block. */
export const guestGetMemoryBlockInfo = defineCommand({
  name: "guest-get-memory-block-info",
  summary: "Report the size in bytes of one guest memory block",
  args: [],
  returns: t.struct("GuestMemoryBlockInfo", [{ name: "size", type: t.uint64 }]),
  run: async (_args, agent) => {
    const os = agent.platform.os;
    try {
      await os.stat(MEMORY_DIR);
    } catch (e) {
      throw genericError(`open("${MEMORY_DIR}"): ${osError(e).text}`);
    }
    const text = await readAttribute(os, MEMORY_DIR, "block_size_bytes", 20);
    if (!(text instanceof Uint8Array)) throw genericError(text.text);
    return { size: parseBlockSize(text) };
  },
});

/** The family, for the command table. */
export const cpuMemoryCommands = [
  guestGetVcpus,
  guestSetVcpus,
  guestGetMemoryBlocks,
  guestSetMemoryBlocks,
  guestGetMemoryBlockInfo,
];
