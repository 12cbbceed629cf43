/**
 * `/proc/net/dev`: one line per network device of the reader's network namespace, in the
 * kernel's device order (the order of its link dump, which getifaddrs follows), with the
 * receive and transmit counters qemu-ga reports.
 *
 * @module
 */

import { isCSpace, scanLine } from "./c_scan_text.ts";

/** The counters qemu-ga reports, as unsigned 64-bit values. */
export interface NetDevStats {
  readonly rxBytes: bigint;
  readonly rxPackets: bigint;
  readonly rxErrs: bigint;
  readonly rxDropped: bigint;
  readonly txBytes: bigint;
  readonly txPackets: bigint;
  readonly txErrs: bigint;
  readonly txDropped: bigint;
}

/** One device line. */
export interface NetDevLine {
  /** The text before the line's first colon, leading white space removed. */
  readonly name: string;
  /** Undefined when the line does not hold the 16 counters qemu-ga's sscanf needs. */
  readonly stats: NetDevStats | undefined;
}

/**
 * Every line that has a colon (the two header lines have none), in file order.
 *
 * @example
 * ```ts
 * const lines = parseProcNetDev("    lo: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n");
 * lines[0].name; // "lo"
 * ```
 */
export function parseProcNetDev(text: string): NetDevLine[] {
  const out: NetDevLine[] = [];
  for (const raw of text.split("\n")) {
    let start = 0;
    while (start < raw.length && isCSpace(raw[start])) start++;
    const line = raw.slice(start);
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    out.push({ name: line.slice(0, colon), stats: counters(line.slice(colon + 1)) });
  }
  return out;
}

const SIXTEEN_COUNTERS = new Array(16).fill("%lld").join(" ");

/**
 * The usual line: sixteen unsigned decimal fields apart, none long enough to be clamped. sscanf
 * reads those as their plain values; anything else takes the full scanf emulation.
 */
const PLAIN_COUNTERS = new RegExp(
  `^[ \\t\\n\\v\\f\\r]*${new Array(16).fill("([0-9]{1,18})").join("[ \\t\\n\\v\\f\\r]+")}(?![0-9])`,
);

function counters(rest: string): NetDevStats | undefined {
  const plain = PLAIN_COUNTERS.exec(rest);
  let v: bigint[];
  if (plain !== null) {
    v = plain.slice(1).map(BigInt);
  } else {
    const f = scanLine(rest, SIXTEEN_COUNTERS);
    if (!f) return undefined;
    // qemu-ga reads long long and stores it in a uint64.
    v = f.map((n) => BigInt.asUintN(64, n as bigint));
  }
  return {
    rxBytes: v[0],
    rxPackets: v[1],
    rxErrs: v[2],
    rxDropped: v[3],
    txBytes: v[8],
    txPackets: v[9],
    txErrs: v[10],
    txDropped: v[11],
  };
}

/** qemu-ga's lookup: the first line named exactly `name` whose counters could be read. */
export function findNetDevStats(
  lines: readonly NetDevLine[],
  name: string,
): NetDevStats | undefined {
  return lines.find((l) => l.name === name && l.stats !== undefined)?.stats;
}
