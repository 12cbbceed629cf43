/**
 * `/proc/net/route` (IPv4) and `/proc/net/ipv6_route` (IPv6), read line by line with the field
 * conversions qemu-ga's guest-network-get-route uses, so the same lines are taken or skipped
 * and numbers wrap the same way (an IPv6 metric of ffffffff is -1, flags with the top bit set
 * are sign-extended).
 *
 * @module
 */

import { CScanner, scanLine } from "./c_scan_text.ts";
import { formatIpv6 } from "./inet.ts";

/** One IPv4 route. Addresses are dotted quads; numbers are C `int`s, flags an `unsigned`. */
export interface Ipv4Route {
  readonly iface: string;
  readonly destination: string;
  readonly gateway: string;
  readonly flags: number;
  readonly refcnt: number;
  readonly use: number;
  readonly metric: number;
  readonly mask: string;
  readonly mtu: number;
  readonly window: number;
  readonly irtt: number;
}

/** One IPv6 route. Addresses are inet_ntop text; every number is a C `int` (read as hex). */
export interface Ipv6Route {
  readonly destination: string;
  readonly desPrefixLen: number;
  /** Undefined when the field is not 32 hex digits. */
  readonly source: string | undefined;
  readonly srcPrefixLen: number;
  readonly nextHop: string | undefined;
  readonly metric: number;
  readonly refcnt: number;
  readonly use: number;
  readonly flags: number;
  readonly iface: string;
}

/** /proc prints the big-endian address as a host (little-endian) number: low byte first. */
function quad(n: bigint): string {
  const v = Number(BigInt.asUintN(32, n));
  return `${v & 0xff}.${(v >>> 8) & 0xff}.${(v >>> 16) & 0xff}.${v >>> 24}`;
}

const int = (v: bigint) => Number(BigInt.asIntN(32, v));
const uint = (v: bigint) => Number(BigInt.asUintN(32, v));

/** Lines as getline returns them (a last line without a newline counts). */
function lines(text: string): string[] {
  const all = text.split("\n");
  if (all[all.length - 1] === "") all.pop();
  return all;
}

/**
 * The IPv4 routes; the first line (the header) is skipped, and so is any line that does not
 * give all eleven fields.
 *
 * @example
 * ```ts
 * parseIpv4Routes("Iface\tDestination\n" + "eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n");
 * // [{ iface: "eth0", destination: "0.0.0.0", gateway: "192.168.2.1", flags: 3, ... }]
 * ```
 */
export function parseIpv4Routes(text: string): Ipv4Route[] {
  const out: Ipv4Route[] = [];
  for (const line of lines(text).slice(1)) {
    const f = scanLine(line, "%s %X %X %x %d %d %d %X %d %d %d");
    if (!f) continue;
    const [iface, destination, gateway, flags, refcnt, use, metric, mask, mtu, window, irtt] =
      f as [string, ...bigint[]];
    out.push({
      iface,
      destination: quad(destination),
      gateway: quad(gateway),
      flags: uint(flags),
      refcnt: int(refcnt),
      use: int(use),
      metric: int(metric),
      mask: quad(mask),
      mtu: int(mtu),
      window: int(window),
      irtt: int(irtt),
    });
  }
  return out;
}

/**
 * qemu-ga's hex_to_ip_address: sixteen two-character hex conversions at offsets 0, 2, … 30 of
 * the field; undefined when one of them matches nothing.
 */
function ipv6FromHex(field: string): string | undefined {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    if (2 * i >= field.length) return undefined;
    const v = new CScanner(field.slice(2 * i)).unsigned(16, 2);
    if (v === undefined) return undefined;
    bytes[i] = Number(BigInt.asUintN(8, v));
  }
  return formatIpv6(bytes);
}

/**
 * The IPv6 routes (no header line); a line that does not give all ten fields, or whose
 * destination is not hex, is skipped.
 */
export function parseIpv6Routes(text: string): Ipv6Route[] {
  const out: Ipv6Route[] = [];
  for (const line of lines(text)) {
    const f = scanLine(line, "%32s %x %32s %x %32s %x %x %x %x %s");
    if (!f) continue;
    const [dest, dlen, src, slen, hop, metric, refcnt, use, flags, iface] = f;
    const destination = ipv6FromHex(dest as string);
    if (destination === undefined) continue;
    out.push({
      destination,
      desPrefixLen: int(dlen as bigint),
      source: ipv6FromHex(src as string),
      srcPrefixLen: int(slen as bigint),
      nextHop: ipv6FromHex(hop as string),
      metric: int(metric as bigint),
      refcnt: int(refcnt as bigint),
      use: int(use as bigint),
      flags: int(flags as bigint),
      iface: iface as string,
    });
  }
  return out;
}
