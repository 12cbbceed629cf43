/**
 * rtnetlink dump messages → the links and addresses getifaddrs(3) builds from them: links in
 * the link dump's order with their name, hardware address and counters; addresses in the address
 * dump's order with the name glibc gives them (an IPv4 label, else the link's name), the local
 * address (IFA_LOCAL where present, else IFA_ADDRESS, as glibc picks) and the prefix length.
 *
 * @module
 */

/** The counters qemu-ga reads from /proc/net/dev, as the kernel prints them there. */
export interface LinkStats {
  readonly rxBytes: bigint;
  readonly rxPackets: bigint;
  readonly rxErrs: bigint;
  /** rx_dropped + rx_missed_errors: the printed "drop" column. */
  readonly rxDropped: bigint;
  readonly txBytes: bigint;
  readonly txPackets: bigint;
  readonly txErrs: bigint;
  readonly txDropped: bigint;
}

/** One RTM_NEWLINK message. */
export interface Link {
  readonly index: number;
  readonly name: string;
  /** IFLA_ADDRESS (absent for a device without one, e.g. tun). */
  readonly address: Uint8Array | undefined;
  /** From IFLA_STATS64, undefined without it. */
  readonly stats: LinkStats | undefined;
}

/** One RTM_NEWADDR message of family AF_INET or AF_INET6. */
export interface Address {
  readonly family: "ipv4" | "ipv6";
  /** The label for IPv4 (IFA_LABEL), else the link's name; undefined for an unknown link. */
  readonly name: string | undefined;
  /** 4 or 16 bytes. */
  readonly address: Uint8Array;
  /** The prefix length, at most the address's bits. */
  readonly prefix: number;
}

/** A dump the kernel refused (NLMSG_ERROR) or that cannot be read; `errno` as glibc sets it. */
export class NetlinkError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
    this.name = "NetlinkError";
  }
}

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const RTM_NEWLINK = 16;
const RTM_NEWADDR = 20;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_STATS64 = 23;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const AF_INET = 2;
const AF_INET6 = 10;
const EIO = 5;
const STATS64_SIZE = 23 * 8;
const LLONG_MAX = (1n << 63n) - 1n;

const align4 = (n: number) => (n + 3) & ~3;
const decoder = new TextDecoder();

/** Each message's type and payload, until NLMSG_DONE; throws on NLMSG_ERROR or truncation. */
function* messages(bytes: Uint8Array): Generator<[type: number, body: Uint8Array]> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < bytes.length;) {
    if (at + 16 > bytes.length) throw new NetlinkError(EIO, "truncated netlink header");
    const len = v.getUint32(at, true);
    const type = v.getUint16(at + 4, true);
    if (len < 16 || at + len > bytes.length) {
      throw new NetlinkError(EIO, "truncated netlink message");
    }
    if (type === NLMSG_DONE) return;
    if (type === NLMSG_ERROR) {
      const error = len >= 20 ? -v.getInt32(at + 16, true) : EIO;
      throw new NetlinkError(error === 0 ? EIO : error, `netlink error ${error}`);
    }
    yield [type, bytes.subarray(at + 16, at + len)];
    at += align4(len);
  }
  throw new NetlinkError(EIO, "netlink dump without its end");
}

/**
 * The attributes of the `wanted` types after a `fixed`-byte header, by type (the last of a type
 * wins). Only those are cut out: a link carries some fifty attributes, and a view of each cost
 * more than the rest of the parse.
 */
function attributes(
  body: Uint8Array,
  fixed: number,
  wanted: readonly number[],
): Map<number, Uint8Array> {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out = new Map<number, Uint8Array>();
  for (let at = align4(fixed); at + 4 <= body.length;) {
    const len = v.getUint16(at, true);
    if (len < 4 || at + len > body.length) break;
    const type = v.getUint16(at + 2, true) & 0x3fff;
    if (wanted.includes(type)) out.set(type, body.subarray(at + 4, at + len));
    at += align4(len);
  }
  return out;
}

const LINK_ATTRIBUTES = [IFLA_ADDRESS, IFLA_IFNAME, IFLA_STATS64];
const ADDRESS_ATTRIBUTES = [IFA_ADDRESS, IFA_LOCAL, IFA_LABEL];

/** A NUL-terminated string attribute. */
function text(a: Uint8Array): string {
  const nul = a.indexOf(0);
  return decoder.decode(nul < 0 ? a : a.subarray(0, nul));
}

/** A printed /proc/net/dev column as qemu-ga's %lld reads it (clamped to LLONG_MAX). */
function column(n: bigint): bigint {
  const v = BigInt.asUintN(64, n);
  return v > LLONG_MAX ? LLONG_MAX : v;
}

function stats(a: Uint8Array | undefined): LinkStats | undefined {
  if (a === undefined || a.length < STATS64_SIZE) return undefined;
  const v = new DataView(a.buffer, a.byteOffset, a.byteLength);
  const u = (i: number) => v.getBigUint64(i * 8, true);
  // struct rtnl_link_stats64: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors,
  // rx_dropped, tx_dropped, …, rx_missed_errors is word 15.
  return {
    rxBytes: column(u(2)),
    rxPackets: column(u(0)),
    rxErrs: column(u(4)),
    rxDropped: column(u(6) + u(15)),
    txBytes: column(u(3)),
    txPackets: column(u(1)),
    txErrs: column(u(5)),
    txDropped: column(u(7)),
  };
}

/**
 * The links of an RTM_GETLINK dump, in its order.
 *
 * @throws NetlinkError on NLMSG_ERROR or a truncated dump.
 * @example
 * ```ts
 * const links = parseLinks(new Uint8Array(dump.links));
 * links.map((l) => l.name); // ["lo", "eth0"]
 * ```
 */
export function parseLinks(bytes: Uint8Array): Link[] {
  const out: Link[] = [];
  for (const [type, body] of messages(bytes)) {
    // struct ifinfomsg: family, pad, type u16, index s32, flags u32, change u32.
    if (type !== RTM_NEWLINK || body.length < 16) continue;
    const index = new DataView(body.buffer, body.byteOffset, 16).getInt32(4, true);
    const attrs = attributes(body, 16, LINK_ATTRIBUTES);
    const name = attrs.get(IFLA_IFNAME);
    if (name === undefined) continue;
    out.push({
      index,
      name: text(name),
      address: attrs.get(IFLA_ADDRESS)?.slice(),
      stats: stats(attrs.get(IFLA_STATS64)),
    });
  }
  return out;
}

/**
 * The IPv4 and IPv6 addresses of an RTM_GETADDR dump, in its order, named as glibc names them
 * from `links`.
 *
 * @throws NetlinkError on NLMSG_ERROR or a truncated dump.
 */
export function parseAddresses(bytes: Uint8Array, links: readonly Link[]): Address[] {
  const names = new Map(links.map((l) => [l.index, l.name]));
  const out: Address[] = [];
  for (const [type, body] of messages(bytes)) {
    // struct ifaddrmsg: family, prefixlen, flags, scope (u8 each), index u32.
    if (type !== RTM_NEWADDR || body.length < 8) continue;
    const family = body[0];
    const size = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
    if (size === 0) continue;
    const attrs = attributes(body, 8, ADDRESS_ATTRIBUTES);
    const address = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
    if (address === undefined || address.length < size) continue;
    const index = new DataView(body.buffer, body.byteOffset, 8).getUint32(4, true);
    const label = family === AF_INET ? attrs.get(IFA_LABEL) : undefined;
    out.push({
      family: family === AF_INET ? "ipv4" : "ipv6",
      name: label !== undefined ? text(label) : names.get(index),
      address: address.slice(0, size),
      prefix: Math.min(body[1], size * 8),
    });
  }
  return out;
}
