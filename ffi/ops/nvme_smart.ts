/**
 * open(device, O_RDONLY|O_CLOEXEC), ioctl(NVME_IOCTL_ADMIN_CMD, Get Log Page: SMART / Health
 * Information), close: the 512-byte log page of an NVMe disk (guest-get-disks' `smart`).
 *
 * @module
 */

import { arch } from "../arch/mod.ts";
import { cString, errno, libc, O_CLOEXEC, O_RDONLY, type OsPath, strerror } from "../libc.ts";
import { AT_FDCWD, syscall6 } from "../rawsyscall.ts";
import { type BlockingOp, isError } from "./op.ts";

/** The device node to ask. */
export interface NvmeSmartArgs {
  path: OsPath;
}

/** The log page, or which step failed. */
export type NvmeSmartResult =
  | {
    ok: true;
    /** The 512 bytes of the SMART / Health Information log page as the controller wrote them. */
    log: ArrayBuffer;
  }
  | {
    ok: false;
    stage: "open" | "ioctl";
    /** 0 when the command reached the controller and it answered with an error `status`. */
    errno: number;
    strerror: string;
    /** The NVMe completion status the ioctl returned (a positive result instead of -1). */
    status?: number;
  };

/** NVMe Admin command "Get Log Page". */
const ADMIN_GET_LOG_PAGE = 0x02;
/** Log identifier of the SMART / Health Information page. */
const LOG_SMART_INFO = 0x02;
/** Its size: the whole page. */
export const SMART_LOG_SIZE = 512;
/** The namespace id that means "the controller as a whole" (qemu-ga's NVME_NSID_BROADCAST). */
const NSID_BROADCAST = 0xffff_ffff;
/**
 * cdw10 as qemu-ga sets it: log id in bits 0-7, Retain Asynchronous Event (bit 15), and the
 * number of dwords to read minus one in bits 16-31 (0x007F8002).
 */
const CDW10 = LOG_SMART_INFO | (1 << 15) | (((SMART_LOG_SIZE >> 2) - 1) << 16);

// Like qemu-ga's get_nvme_smart: qga_open_cloexec(disk->name, O_RDONLY, 0).
const FLAGS = O_RDONLY | O_CLOEXEC;

/**
 * The command for a log page into `log`, whose address goes into the struct: `log` must stay
 * referenced (and at a fixed address: an ArrayBuffer of this size lives outside the V8 heap)
 * until the ioctl has returned.
 */
export function nvmeSmartCommand(log: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const at = arch().layout.nvmeAdminCmd;
  const cmd = new Uint8Array(at.size);
  const v = new DataView(cmd.buffer);
  v.setUint8(at.opcode, ADMIN_GET_LOG_PAGE);
  v.setUint32(at.nsid, NSID_BROADCAST, true);
  void log.buffer; // a typed array's storage moves off the V8 heap when `.buffer` is read
  v.setBigUint64(at.addr, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(log))), true);
  v.setUint32(at.dataLen, SMART_LOG_SIZE, true);
  v.setUint32(at.cdw10, CDW10, true);
  return cmd;
}

function failure(stage: "open" | "ioctl", e: number): NvmeSmartResult {
  return { ok: false, stage, errno: e, strerror: strerror(e) };
}

/** qemu-ga treats any non-zero ioctl result as failure: -1 with errno, or an NVMe status. */
function statusFailure(status: number): NvmeSmartResult {
  return {
    ok: false,
    stage: "ioctl",
    errno: 0,
    strerror: `NVMe status 0x${status.toString(16)}`,
    status,
  };
}

/** The SMART / Health Information log page of the NVMe device at `path`. */
export const nvmeSmart: BlockingOp<NvmeSmartArgs, NvmeSmartResult> = {
  async trampoline({ path }, job) {
    const nr = arch().sys;
    const log = new Uint8Array(new ArrayBuffer(SMART_LOG_SIZE));
    const cmd = nvmeSmartCommand(log);
    const fd = await syscall6(nr.openat, AT_FDCWD, cString(path), FLAGS, 0);
    if (isError(fd)) return failure("open", Number(-fd));
    // Abandoned by shutdown() while opening: nobody waits for the page any more.
    const ret = job.abandoned ? 0n : await syscall6(nr.ioctl, fd, arch().ioctl.nvmeAdminCmd, cmd);
    await syscall6(nr.close, fd);
    if (isError(ret)) return failure("ioctl", Number(-ret));
    return ret === 0n ? { ok: true, log: log.buffer } : statusFailure(Number(ret));
  },

  worker({ path }) {
    const c = libc();
    const log = new Uint8Array(new ArrayBuffer(SMART_LOG_SIZE));
    const cmd = nvmeSmartCommand(log);
    const fd = c.open(cString(path), FLAGS, 0);
    if (fd === -1) return failure("open", errno());
    const ret = c.ioctl_buffer(fd, BigInt(arch().ioctl.nvmeAdminCmd), cmd);
    const e = ret === -1 ? errno() : 0; // before close(), which may overwrite errno
    c.close(fd);
    if (ret === -1) return failure("ioctl", e);
    return ret === 0 ? { ok: true, log: log.buffer } : statusFailure(ret);
  },

  transferables: (reply) => reply.ok ? [reply.log] : [],
};
