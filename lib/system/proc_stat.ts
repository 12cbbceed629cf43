/**
 * The per-CPU lines of /proc/stat (`cpuN user nice system idle iowait irq softirq steal guest
 * guest_nice`, in USER_HZ ticks), read the way qemu-ga reads them: each line through one sscanf
 * of a name and up to ten numbers.
 *
 * - lines whose name does not start with `cpu`, and the aggregate `cpu` line, are skipped;
 * - a `cpuN` line with fewer than four numbers ends the scan: the CPUs before it are kept;
 * - the CPU number is `atoi` of what follows `cpu`;
 * - iowait counts from 5 numbers, irq and softirq from 6, steal from 8, guest from 9, guest_nice
 *   from 10.
 *
 * @module
 */

import { atoi, type Conversion, lines, scanFields } from "./c_scan.ts";

/** One CPU's times in USER_HZ ticks; absent ones were not on its line. */
export interface CpuTicks {
  readonly cpu: number;
  readonly user: bigint;
  readonly nice: bigint;
  readonly system: bigint;
  readonly idle: bigint;
  readonly iowait?: bigint;
  readonly irq?: bigint;
  readonly softirq?: bigint;
  readonly steal?: bigint;
  readonly guest?: bigint;
  readonly guestnice?: bigint;
}

/** The CPUs of /proc/stat, and whether a malformed `cpuN` line cut the list short. */
export interface ProcStatCpus {
  readonly cpus: CpuTicks[];
  readonly cutShort: boolean;
}

const FORMAT: readonly Conversion[] = ["s", ...Array<Conversion>(10).fill("lu")];
const CPU = [0x63, 0x70, 0x75];

/** Parses the per-CPU lines of /proc/stat. */
export function parseProcStatCpus(data: Uint8Array): ProcStatCpus {
  const cpus: CpuTicks[] = [];
  for (const line of lines(data)) {
    const { fields, eof } = scanFields(line, FORMAT);
    if (eof) continue;
    const name = fields[0] as Uint8Array;
    if (name.length <= 3 || CPU.some((c, i) => name[i] !== c)) continue;
    // sscanf's count includes the name.
    const count = fields.length;
    if (count < 5) return { cpus, cutShort: true };
    const n = (i: number) => fields[i] as bigint;
    cpus.push({
      cpu: atoi(name, 3),
      user: n(1),
      nice: n(2),
      system: n(3),
      idle: n(4),
      ...(count > 5 ? { iowait: n(5) } : {}),
      // With exactly six numbers qemu-ga reports a softirq it never read (an uninitialised
      // variable); no kernel prints such a line, and 0 stands for the unknown value.
      ...(count > 6 ? { irq: n(6), softirq: count > 7 ? n(7) : 0n } : {}),
      ...(count > 8 ? { steal: n(8) } : {}),
      ...(count > 9 ? { guest: n(9) } : {}),
      ...(count > 10 ? { guestnice: n(10) } : {}),
    });
  }
  return { cpus, cutShort: false };
}
