/**
 * The NVMe SMART / Health Information log page (log identifier 0x02, 512 bytes, little-endian),
 * decoded as qemu-ga decodes it for guest-get-disks:
 *
 * - byte 0 critical warning, bytes 1-2 the composite temperature as the controller reports it (in
 *   kelvins: qemu-ga passes it on unconverted), byte 3 available spare, byte 4 its threshold,
 *   byte 5 percentage used (all percentages may exceed 100: they are passed on as they are);
 * - from byte 32, ten 128-bit counters, each as its low and high 64-bit halves: data units read
 *   and written, host read and write commands, controller busy time, power cycles, power-on hours,
 *   unsafe shutdowns, media errors, error log entries;
 * - the reserved bytes (6-31, 192-511) are ignored.
 *
 * qemu-ga reads into a zeroed buffer, so bytes a short page lacks read as 0 here too.
 *
 * @module
 */

/** A 128-bit counter as two unsigned 64-bit halves. */
export interface Counter128 {
  readonly lo: bigint;
  readonly hi: bigint;
}

/** The decoded page. */
export interface NvmeSmartLog {
  readonly criticalWarning: number;
  /** Kelvins, as reported. */
  readonly temperature: number;
  readonly availableSpare: number;
  readonly availableSpareThreshold: number;
  readonly percentageUsed: number;
  readonly dataUnitsRead: Counter128;
  readonly dataUnitsWritten: Counter128;
  readonly hostReadCommands: Counter128;
  readonly hostWriteCommands: Counter128;
  readonly controllerBusyTime: Counter128;
  readonly powerCycles: Counter128;
  readonly powerOnHours: Counter128;
  readonly unsafeShutdowns: Counter128;
  readonly mediaErrors: Counter128;
  readonly numberOfErrorLogEntries: Counter128;
}

/** The page's size. */
export const NVME_SMART_LOG_SIZE = 512;

/** Decodes a SMART / Health Information page (see the module comment for short pages). */
export function parseNvmeSmartLog(page: Uint8Array): NvmeSmartLog {
  const bytes = new Uint8Array(NVME_SMART_LOG_SIZE);
  bytes.set(page.subarray(0, NVME_SMART_LOG_SIZE));
  const v = new DataView(bytes.buffer);
  const counter = (at: number): Counter128 => ({
    lo: v.getBigUint64(at, true),
    hi: v.getBigUint64(at + 8, true),
  });
  return {
    criticalWarning: v.getUint8(0),
    temperature: v.getUint16(1, true), // unaligned: the page is packed
    availableSpare: v.getUint8(3),
    availableSpareThreshold: v.getUint8(4),
    percentageUsed: v.getUint8(5),
    dataUnitsRead: counter(32),
    dataUnitsWritten: counter(48),
    hostReadCommands: counter(64),
    hostWriteCommands: counter(80),
    controllerBusyTime: counter(96),
    powerCycles: counter(112),
    powerOnHours: counter(128),
    unsafeShutdowns: counter(144),
    mediaErrors: counter(160),
    numberOfErrorLogEntries: counter(176),
  };
}
