/**
 * guest-network-get-interfaces (§3.8) and guest-network-get-route (§3.11).
 *
 * qemu-ga walks getifaddrs: every link's AF_PACKET entry first, in the kernel's device order,
 * then the IPv4 and IPv6 address entries; one interface per name in order of first appearance
 * (an IPv4 label such as `eth0:1` is a name of its own). Here the links and their order come
 * from /proc/net/dev (the kernel lists devices there in the same order as its link dump), the
 * address entries from the `network` facet, the hardware address from
 * /sys/class/net/<dev>/address (what SIOCGIFHWADDR returns: the first six bytes of the device
 * address, zero-padded; the part of a name before its first colon names the device).
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import {
  lookUpKey,
  OsFileError,
  type OsFiles,
  type OsLookUp,
  type OsLookUpResult,
  withKnown,
} from "../platform/files.ts";
import { formatIpv6, netmaskPrefix, parseIpv6 } from "../system/inet.ts";
import { type NetDevLine, type NetDevStats, parseProcNetDev } from "../system/proc_net_dev.ts";
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
  hardwareAddress: string | undefined;
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

/** The last addresses written, by Deno's text: an interface keeps its addresses between polls. */
const ipv6Texts = new Map<string, string>();
const IPV6_TEXTS_MAX = 4096;

/** An IPv6 address as glibc's inet_ntop writes it. */
function inetNtop6(text: string): string {
  let out = ipv6Texts.get(text);
  if (out === undefined) {
    const v6 = parseIpv6(text);
    out = v6 ? formatIpv6(v6) : text;
    if (ipv6Texts.size >= IPV6_TEXTS_MAX) ipv6Texts.clear();
    ipv6Texts.set(text, out);
  }
  return out;
}

/** Decodes the ASCII and UTF-8 files read here. */
const utf8 = new TextDecoder();

/** The device links in kernel order: /proc/net/dev, else /sys/class/net by ifindex. */
async function linkNames(agent: Agent, dev: readonly NetDevLine[] | undefined): Promise<string[]> {
  if (dev) return dev.map((l) => l.name);
  const os = agent.platform.os;
  const names = await os.readDir("/sys/class/net").catch(() => [] as string[]);
  const indexed = await Promise.all(names.map(async (name) => {
    const data = await os.readFile(`/sys/class/net/${name}/ifindex`).catch(() => undefined);
    return { name, index: data ? Number(utf8.decode(data).trim()) : Infinity };
  }));
  return indexed.sort((a, b) => a.index - b.index).map((l) => l.name);
}

/** The device SIOCGIFHWADDR would ask about for `name`, or undefined where it would fail. */
function hardwareDevice(name: string): string | undefined {
  // The kernel looks up an alias (`eth0:1`) by the part before the colon.
  const device = name.split(":")[0];
  if (device === "" || device === "." || device === ".." || device.includes("/")) {
    return undefined;
  }
  return device;
}

/** The link names /proc/net/dev listed last time, per file facet: the likely ones this time. */
const lastLinkNames = new WeakMap<object, readonly string[]>();

/**
 * `os` with /proc/net/dev and the `address` attributes of the likely interfaces (those with
 * addresses and those /proc/net/dev listed last time) read in one look-up; whatever the reply
 * turns out to need beyond them is read as usual.
 */
async function readAhead(agent: Agent, addressed: readonly string[]): Promise<OsFiles> {
  const os = agent.platform.os;
  if (os.lookUp === undefined) return os;
  const names = new Set([...lastLinkNames.get(os) ?? [], ...addressed]);
  const list: OsLookUp[] = [{ method: "readFile", path: "/proc/net/dev" }];
  for (const name of names) {
    const device = hardwareDevice(name);
    if (device !== undefined) {
      list.push({ method: "readFile", path: `/sys/class/net/${device}/address` });
    }
  }
  const answers = await os.lookUp(list);
  const known = new Map<string, OsLookUpResult>();
  list.forEach((l, i) => known.set(lookUpKey(l.method, l.path), answers[i]));
  return withKnown(os, known);
}

/**
 * SIOCGIFHWADDR through sysfs for each name, in one look-up where the facet has one;
 * undefined where the ioctl would fail (no such device).
 */
async function hardwareAddresses(
  os: OsFiles,
  names: readonly string[],
): Promise<(string | undefined)[]> {
  const paths = names.map((name) => {
    const device = hardwareDevice(name);
    return device === undefined ? undefined : `/sys/class/net/${device}/address`;
  });
  const wanted = paths.filter((p) => p !== undefined);
  const known = new Map<string, Uint8Array | undefined>();
  if (os.lookUp !== undefined && wanted.length > 0) {
    const answers = await os.lookUp(wanted.map((path) => ({ method: "readFile", path })));
    wanted.forEach((path, i) => {
      const a = answers[i];
      if (a !== undefined) known.set(path, "value" in a ? a.value as Uint8Array : undefined);
    });
  }
  return await Promise.all(paths.map(async (path) => {
    if (path === undefined) return undefined;
    let bytes = known.get(path);
    if (bytes === undefined && !known.has(path)) {
      bytes = await os.readFile(path).catch(() => undefined);
    }
    return bytes === undefined ? undefined : formatHardwareAddress(bytes);
  }));
}

/** The `address` attribute as qemu-ga prints the six bytes it got. */
function formatHardwareAddress(data: Uint8Array): string {
  const ascii = utf8.decode(data).trim();
  const bytes = ascii === "" ? [] : ascii.split(":").map((h) => parseInt(h, 16) & 0xff);
  return Array.from({ length: 6 }, (_, i) => (bytes[i] ?? 0).toString(16).padStart(2, "0"))
    .join(":");
}

function statistics(s: NetDevStats) {
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
    let entries;
    try {
      entries = await agent.platform.network.addresses();
    } catch (e) {
      const text = e instanceof OsFileError ? e.text : String(e);
      throw genericError(`getifaddrs failed: ${text}`);
    }
    const ahead = await readAhead(agent, entries.map((e) => e.name));
    const dev = await ahead.readFile("/proc/net/dev").then(
      (b) => parseProcNetDev(utf8.decode(b)),
      () => undefined,
    );
    if (dev !== undefined) lastLinkNames.set(agent.platform.os, dev.map((l) => l.name));
    const byName = new Map<string, Interface>();
    const named = (name: string) => {
      let i = byName.get(name);
      if (!i) byName.set(name, i = { name, hardwareAddress: undefined, addresses: [] });
      return i;
    };
    for (const name of await linkNames(agent, dev)) named(name);
    for (const e of entries) {
      named(e.name).addresses.push({
        "ip-address": e.family === "IPv6" ? inetNtop6(e.address) : e.address,
        "ip-address-type": e.family === "IPv6" ? "ipv6" : "ipv4",
        prefix: netmaskPrefix(e.netmask),
      });
    }
    const excluded = globMatcher(agent.options.excludeInterfaces ?? []);
    const shown = [...byName.values()].filter((i) => !excluded(i.name));
    const hardware = await hardwareAddresses(ahead, shown.map((i) => i.name));
    shown.forEach((i, n) => i.hardwareAddress = hardware[n]);
    const statsOf = new Map<string, NetDevStats>();
    for (const l of dev ?? []) {
      if (!statsOf.has(l.name) && l.stats !== undefined) statsOf.set(l.name, l.stats);
    }
    return shown.map((i) => {
      // qemu-ga's lookup: the first line of that name whose counters could be read.
      const stats = i.addresses.length > 0 ? statsOf.get(i.name) : undefined;
      return {
        name: i.name,
        "hardware-address": i.hardwareAddress,
        "ip-addresses": i.addresses.length > 0 ? i.addresses : undefined,
        statistics: stats && statistics(stats),
      };
    });
  },
});

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
    const v4 = await routeFile(agent, "/proc/net/route");
    const v6 = await routeFile(agent, "/proc/net/ipv6_route");
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
