/**
 * guest-network-get-interfaces (§3.8) and guest-network-get-route (§3.11).
 *
 * qemu-ga walks getifaddrs: every link's AF_PACKET entry first, in the kernel's device order,
 * then the IPv4 and IPv6 address entries; one interface per name in order of first appearance
 * (an IPv4 label such as `eth0:1` is a name of its own). The `network` facet gives exactly what
 * getifaddrs reads: the kernel's link and address dumps. The hardware address is the device's
 * (the part of a name before its first colon names it), as SIOCGIFHWADDR returns it; the
 * counters are the device's, as /proc/net/dev prints them.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import { OsFileError } from "../platform/files.ts";
import type { Link, LinkStats } from "../platform/network.ts";
import { formatIpv6 } from "../system/inet.ts";
import { parseIpv4Routes, parseIpv6Routes } from "../system/proc_net_route.ts";

const GuestIpAddress = t.struct("GuestIpAddress", [
  { name: "ip-address", type: t.str },
  { name: "ip-address-type", type: t.enumOf("GuestIpAddressType", ["ipv4", "ipv6"]) },
  { name: "prefix", type: t.int },
]);

const GuestNetworkInterfaceStat = t.struct("GuestNetworkInterfaceStat", [
  { name: "rx-bytes", type: t.uint64 },
  { name: "rx-packets", type: t.uint64 },
  { name: "rx-errs", type: t.uint64 },
  { name: "rx-dropped", type: t.uint64 },
  { name: "tx-bytes", type: t.uint64 },
  { name: "tx-packets", type: t.uint64 },
  { name: "tx-errs", type: t.uint64 },
  { name: "tx-dropped", type: t.uint64 },
]);

const GuestNetworkInterface = t.struct("GuestNetworkInterface", [
  { name: "name", type: t.str },
  { name: "hardware-address", type: t.str, optional: true },
  { name: "ip-addresses", type: t.list(GuestIpAddress), optional: true },
  { name: "statistics", type: GuestNetworkInterfaceStat, optional: true },
]);

const GuestNetworkRoute = t.struct("GuestNetworkRoute", [
  { name: "iface", type: t.str },
  { name: "destination", type: t.str },
  { name: "metric", type: t.int },
  { name: "gateway", type: t.str, optional: true },
  { name: "mask", type: t.str, optional: true },
  { name: "irtt", type: t.int, optional: true },
  { name: "flags", type: t.uint64, optional: true },
  { name: "refcnt", type: t.int, optional: true },
  { name: "use", type: t.int, optional: true },
  { name: "window", type: t.int, optional: true },
  { name: "mtu", type: t.int, optional: true },
  { name: "desprefixlen", type: t.str, optional: true },
  { name: "source", type: t.str, optional: true },
  { name: "srcprefixlen", type: t.str, optional: true },
  { name: "nexthop", type: t.str, optional: true },
  { name: "version", type: t.int },
]);

interface IpAddress {
  readonly "ip-address": string;
  readonly "ip-address-type": "ipv4" | "ipv6";
  readonly prefix: number;
}

interface Interface {
  readonly name: string;
  readonly addresses: IpAddress[];
}

/**
 * A matcher for shell-style patterns (`*`, `?`, `[a-z]`, `[!0-9]`, `\` quoting), as fnmatch
 * without flags; true when `name` matches any of them.
 */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => {
    let re = "";
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === "*") re += "[^]*";
      else if (c === "?") re += "[^]";
      else if (c === "\\" && i + 1 < p.length) re += escapeRe(p[++i]);
      else if (c === "[" && p.indexOf("]", i + 2) > 0) {
        const close = p.indexOf("]", i + 2);
        let body = p.slice(i + 1, close);
        const negate = body[0] === "!" || body[0] === "^";
        if (negate) body = body.slice(1);
        re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
        i = close;
      } else re += escapeRe(c);
    }
    return new RegExp(`^${re}$`, "u");
  });
  return (name) => res.some((r) => r.test(name));
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The part of `name` SIOCGIFHWADDR looks the device up by: the text before its first colon. */
function hardwareDevice(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(0, colon);
}

/**
 * What qemu-ga prints from SIOCGIFHWADDR: the first six bytes of the device address,
 * zero-padded (all zero without one).
 */
function formatHardwareAddress(bytes: Uint8Array | undefined): string {
  return Array.from({ length: 6 }, (_, i) => (bytes?.[i] ?? 0).toString(16).padStart(2, "0"))
    .join(":");
}

/** An IPv4 address as inet_ntop writes it. */
function inetNtop4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function statistics(s: LinkStats) {
  return {
    "rx-bytes": s.rxBytes,
    "rx-packets": s.rxPackets,
    "rx-errs": s.rxErrs,
    "rx-dropped": s.rxDropped,
    "tx-bytes": s.txBytes,
    "tx-packets": s.txPackets,
    "tx-errs": s.txErrs,
    "tx-dropped": s.txDropped,
  };
}

/** Lists the guest's network interfaces with their addresses and counters. */
export const guestNetworkGetInterfaces = defineCommand({
  name: "guest-network-get-interfaces",
  summary: "List network interfaces with hardware and IP addresses and traffic counters",
  args: [],
  returns: t.list(GuestNetworkInterface),
  run: async (_args, agent) => {
    let tables;
    try {
      tables = await agent.platform.network.tables();
    } catch (e) {
      const text = e instanceof OsFileError ? e.text : String(e);
      throw genericError(`getifaddrs failed: ${text}`);
    }
    const byName = new Map<string, Interface>();
    const named = (name: string) => {
      let i = byName.get(name);
      if (!i) byName.set(name, i = { name, addresses: [] });
      return i;
    };
    const linkByName = new Map<string, Link>();
    for (const l of tables.links) {
      named(l.name);
      if (!linkByName.has(l.name)) linkByName.set(l.name, l);
    }
    for (const a of tables.addresses) {
      if (a.name === undefined) continue; // glibc drops an address of a link it did not list
      named(a.name).addresses.push({
        "ip-address": a.family === "ipv6" ? formatIpv6(a.address) : inetNtop4(a.address),
        "ip-address-type": a.family,
        prefix: a.prefix,
      });
    }
    const excluded = globMatcher(agent.options.excludeInterfaces ?? []);
    return [...byName.values()].filter((i) => !excluded(i.name)).map((i) => {
      const device = linkByName.get(hardwareDevice(i.name));
      // qemu-ga reads counters from the /proc/net/dev line named exactly so, for interfaces
      // with an address; a label (`eth0:1`) has none.
      const stats = i.addresses.length > 0 ? linkByName.get(i.name)?.stats : undefined;
      return {
        name: i.name,
        "hardware-address": device && formatHardwareAddress(device.address),
        "ip-addresses": i.addresses.length > 0 ? i.addresses : undefined,
        statistics: stats && statistics(stats),
      };
    });
  },
});

/** Decodes the route files. */
const utf8 = new TextDecoder();

/** Reads one route file; qemu-ga notes a file it cannot open and goes on with the next. */
async function routeFile(agent: Agent, path: string): Promise<string | OsFileError> {
  try {
    return utf8.decode(await agent.platform.os.readFile(path));
  } catch (e) {
    if (e instanceof OsFileError) return e;
    throw e;
  }
}

/** Lists the IPv4 and IPv6 routing tables. */
export const guestNetworkGetRoute = defineCommand({
  name: "guest-network-get-route",
  summary: "List the IPv4 and IPv6 routes of the guest",
  args: [],
  returns: t.list(GuestNetworkRoute),
  run: async (_args, agent) => {
    // Both at once (two hops in parallel); the first failure in qemu-ga's order is the error.
    const [v4, v6] = await Promise.all([
      routeFile(agent, "/proc/net/route"),
      routeFile(agent, "/proc/net/ipv6_route"),
    ]);
    const failed = [v4, v6].find((r) => r instanceof OsFileError);
    if (failed) throw genericError(`open("${failed.path}"): ${failed.text}`);
    return [
      ...parseIpv4Routes(v4 as string).map((r) => ({
        iface: r.iface,
        destination: r.destination,
        metric: r.metric,
        gateway: r.gateway,
        mask: r.mask,
        irtt: r.irtt,
        flags: r.flags,
        refcnt: r.refcnt,
        use: r.use,
        window: r.window,
        mtu: r.mtu,
        version: 4,
      })),
      ...parseIpv6Routes(v6 as string).map((r) => ({
        iface: r.iface,
        destination: r.destination,
        metric: r.metric,
        // A C int stored in a uint64: negative values are sign-extended.
        flags: BigInt.asUintN(64, BigInt(r.flags)),
        refcnt: r.refcnt,
        use: r.use,
        desprefixlen: String(r.desPrefixLen),
        source: r.source,
        srcprefixlen: String(r.srcPrefixLen),
        nexthop: r.nextHop,
        version: 6,
      })),
    ];
  },
});

/** The family, for the command table. */
export const networkCommands = [guestNetworkGetInterfaces, guestNetworkGetRoute];
