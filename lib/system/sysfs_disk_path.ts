/**
 * What qemu-ga reads out of a block device's sysfs path (qga/commands-linux.c,
 * `build_guest_fsinfo_for_pci_dev` / `_for_ccw_dev` / `_for_nonpci_virtio` / `build_hosts`): the
 * PCI functions on the way to the device, the SCSI target triple, the ATA or SCSI host number,
 * the CCW subchannel. Each function reproduces the `strstr` + `sscanf` pair qemu-ga uses, so a
 * path that fools qemu-ga fools this too.
 *
 * Pure functions over path strings; the directory walk lives with the commands.
 *
 * @module
 */

/** A PCI address as qemu-ga's `%x:%x:%x.%x` reads it: domain, bus, slot, function. */
export type PciAddress = readonly [number, number, number, number];

const ULONG_MAX = 2n ** 64n - 1n;

/**
 * sscanf with the directives qemu-ga's patterns use: `%x`, `%u`, `%d` (optionally `%*…` to skip),
 * `%n` and literal characters. Returns the converted values in order (as the unsigned ints
 * qemu-ga stores them in) and where `%n` stood, stopping at the first mismatch as sscanf does.
 */
export function scanf(s: string, pos: number, format: string): { values: number[]; n?: number } {
  const values: number[] = [];
  let n: number | undefined;
  let p = pos;
  for (let f = 0; f < format.length; f++) {
    if (format[f] !== "%") {
      if (s[p] !== format[f]) break;
      p++;
      continue;
    }
    const skip = format[++f] === "*";
    if (skip) f++;
    const conv = format[f];
    if (conv === "n") {
      n = p;
      continue;
    }
    const num = scanNumber(s, p, conv === "x" ? 16 : 10);
    if (num === undefined) break;
    p = num.end;
    if (!skip) values.push(num.value);
  }
  return { values, n };
}

/** One `%x`/`%u`/`%d` conversion: whitespace, optional sign, (hex) optional 0x, ≥ 1 digits. */
function scanNumber(
  s: string,
  pos: number,
  radix: 10 | 16,
): { value: number; end: number } | undefined {
  let p = pos;
  while (/\s/.test(s[p] ?? "")) p++;
  let negative = false;
  if (s[p] === "+" || s[p] === "-") negative = s[p++] === "-";
  const digit = radix === 16 ? /[0-9a-fA-F]/ : /[0-9]/;
  if (radix === 16 && s[p] === "0" && /[xX]/.test(s[p + 1] ?? "") && digit.test(s[p + 2] ?? "")) {
    p += 2;
  }
  const start = p;
  while (digit.test(s[p] ?? "")) p++;
  if (p === start) return undefined;
  // strtoul: saturates at ULONG_MAX, negates modulo 2^64; the int variable keeps the low 32 bits.
  const parsed = BigInt((radix === 16 ? "0x" : "") + s.slice(start, p));
  const magnitude = parsed > ULONG_MAX ? ULONG_MAX : parsed;
  return { value: Number(BigInt.asUintN(32, negative ? -magnitude : magnitude)), end: p };
}

/**
 * The first PCI function below the root bus: `strstr("/devices/pci")` then
 * `%*x:%*x/%x:%x:%x.%x%n`. `end` is where the rest of the path starts (qemu-ga's `p`).
 */
export function pciRootFunction(syspath: string): { pci: PciAddress; end: number } | undefined {
  const p = syspath.indexOf("/devices/pci");
  if (p === -1) return undefined;
  const r = scanf(syspath, p + 12, "%*x:%*x/%x:%x:%x.%x%n");
  if (r.values.length < 4 || r.n === undefined) return undefined;
  return { pci: r.values as unknown as PciAddress, end: r.n };
}

/** One more PCI function at `pos` (behind a bridge): `/%x:%x:%x.%x%n`, all four or nothing. */
export function pciNextFunction(
  syspath: string,
  pos: number,
): { pci: PciAddress; end: number } | undefined {
  const r = scanf(syspath, pos, "/%x:%x:%x.%x%n");
  if (r.values.length < 4 || r.n === undefined) return undefined;
  return { pci: r.values as unknown as PciAddress, end: r.n };
}

/**
 * The SCSI address after `/target`: `%*u:%*u:%*u/%*u:%u:%u:%u` — for `target2:0:1/2:0:1:3`
 * that is `[0, 1, 3]` (channel, target id, lun).
 */
export function scsiTarget(syspath: string): readonly [number, number, number] | undefined {
  const p = syspath.indexOf("/target");
  if (p === -1) return undefined;
  const r = scanf(syspath, p + 7, "%*u:%*u:%*u/%*u:%u:%u:%u");
  if (r.values.length < 3) return undefined;
  return [r.values[0], r.values[1], r.values[2]];
}

/**
 * The host the device hangs off: the first `/ata` (ATA port, number after 4 characters) or,
 * without one, the first `/host` (SCSI host, after 5). `dir` is the directory holding that entry
 * (whose siblings qemu-ga numbers); `host` is undefined when no number follows.
 */
export function hostOfPath(
  syspath: string,
): { ata: boolean; dir: string; host: number | undefined } | undefined {
  let p = syspath.indexOf("/ata");
  const ata = p !== -1;
  if (!ata) p = syspath.indexOf("/host");
  if (p === -1) return undefined;
  const host = scanf(syspath, p + (ata ? 4 : 5), "%u").values[0];
  return { ata, dir: syspath.slice(0, p), host };
}

/**
 * The host number of a sibling entry (`ata%d` or `host%d`), undefined when it is not one. The
 * value is kept as the unsigned int qemu-ga stores it in.
 */
export function hostNumberOfEntry(name: string, ata: boolean): number | undefined {
  return scanf(name, 0, ata ? "ata%d" : "host%d").values[0];
}

/** A CCW (s390x channel I/O) address. */
export interface CcwAddress {
  readonly cssid: number;
  readonly ssid: number;
  readonly subchno: number;
  readonly devno: number;
}

/**
 * The CCW address after `/devices/css`: `%*x/%x.%x.%x/%*x.%*x.%x/`; `rest` is the path from
 * `/devices/css` on (where qemu-ga looks for `/virtio`).
 */
export function ccwAddress(syspath: string): { ccw: CcwAddress; rest: string } | undefined {
  const p = syspath.indexOf("/devices/css");
  if (p === -1) return undefined;
  const r = scanf(syspath, p + 12, "%*x/%x.%x.%x/%*x.%*x.%x/");
  if (r.values.length < 4) return undefined;
  const [cssid, ssid, subchno, devno] = r.values;
  return { ccw: { cssid, ssid, subchno, devno }, rest: syspath.slice(p) };
}
