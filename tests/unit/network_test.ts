/**
 * The network family's real code over fake link and address tables (and a fake /proc for routes): interface order (links first, then new names such as IPv4 labels), hardware
 * addresses of every length, statistics only with an address, the exclusion option, the
 * getifaddrs and open() error texts, and the route members of each version.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent, type AgentOptions } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import {
  globMatcher,
  guestNetworkGetInterfaces,
  guestNetworkGetRoute,
} from "../../lib/commands/network.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import { OsFileError, osFiles } from "../../lib/platform/files.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import type { Address, Link, LinkStats, NetworkFacet } from "../../lib/platform/network.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import type { ReplyValue } from "../../lib/protocol/value.ts";
import { StateDir } from "../../lib/state.ts";

const stats = (n: number[]): LinkStats => ({
  rxBytes: BigInt(n[0]),
  rxPackets: BigInt(n[1]),
  rxErrs: BigInt(n[2]),
  rxDropped: BigInt(n[3]),
  txBytes: BigInt(n[4]),
  txPackets: BigInt(n[5]),
  txErrs: BigInt(n[6]),
  txDropped: BigInt(n[7]),
});
const ZERO = stats([0, 0, 0, 0, 0, 0, 0, 0]);

const LINKS: Link[] = [
  { index: 1, name: "lo", address: new Uint8Array(6), stats: stats([1, 2, 0, 0, 3, 4, 0, 0]) },
  {
    index: 2,
    name: "eth0",
    address: new Uint8Array([0x52, 0x54, 0, 0xab, 0xcd, 0x0e]),
    stats: stats([100, 10, 1, 2, 200, 20, 3, 4]),
  },
  { index: 3, name: "tun0", address: undefined, stats: ZERO },
  {
    index: 4,
    name: "ib0",
    address: new Uint8Array([0x80, 0, 2, 8, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 2, 0xc9, 3, 0, 0x0a]),
    stats: ZERO,
  },
  {
    index: 5,
    name: "veth9",
    address: new Uint8Array([0x0a, 0x0b]),
    stats: stats([5, 5, 0, 0, 5, 5, 0, 0]),
  },
];

const v6 = (words: number[]) => new Uint8Array(words.flatMap((w) => [w >> 8, w & 0xff]));
const ADDRESSES: Address[] = [
  { family: "ipv4", name: "lo", address: new Uint8Array([127, 0, 0, 1]), prefix: 8 },
  { family: "ipv4", name: "eth0", address: new Uint8Array([192, 168, 1, 5]), prefix: 24 },
  { family: "ipv4", name: "eth0:1", address: new Uint8Array([10, 0, 0, 1]), prefix: 32 },
  { family: "ipv4", name: "ghost", address: new Uint8Array([10, 9, 9, 9]), prefix: 8 },
  { family: "ipv4", name: undefined, address: new Uint8Array([10, 8, 8, 8]), prefix: 8 },
  { family: "ipv6", name: "lo", address: v6([0, 0, 0, 0, 0, 0, 0, 1]), prefix: 128 },
  { family: "ipv6", name: "eth0", address: v6([0, 0, 0, 0, 0xffff, 0, 0, 0x102]), prefix: 64 },
  {
    family: "ipv6",
    name: "eth0",
    address: v6([0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfeab, 0xcd0e]),
    prefix: 64,
  },
];

async function layout(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${root}${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeTextFile(`${root}${path}`, text);
  }
}

async function withAgent(
  files: Record<string, string | undefined>,
  network: NetworkFacet,
  options: Partial<AgentOptions>,
  fn: (agent: Agent) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denoga-network-" });
  try {
    await layout(root, files as Record<string, string>);
    const agent = new Agent({
      table: commandTable(),
      options: { blockedRpcs: [], ...options },
      state: new StateDir("/nonexistent"),
      log: new Logger({ verbose: false, sink: { write() {} } }),
      platform: fakePlatform({ os: osFiles(root), network }),
    });
    await fn(agent);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const facet = (addresses: Address[], links: Link[] = LINKS): NetworkFacet => ({
  tables: () => Promise.resolve({ links, addresses }),
});
const json = (v: unknown) => toJson(v as ReplyValue);

const STATS_ETH0 =
  '"statistics": {"tx-packets": 20, "tx-errs": 3, "rx-bytes": 100, "rx-dropped": 2, ' +
  '"rx-packets": 10, "rx-errs": 1, "tx-bytes": 200, "tx-dropped": 4}';
const STATS_LO = '"statistics": {"tx-packets": 4, "tx-errs": 0, "rx-bytes": 1, "rx-dropped": 0, ' +
  '"rx-packets": 2, "rx-errs": 0, "tx-bytes": 3, "tx-dropped": 0}';

const FULL = "[" + [
  '{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}, ' +
  '{"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], ' + STATS_LO +
  ', "hardware-address": "00:00:00:00:00:00"}',
  '{"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.168.1.5", "prefix": 24}, ' +
  '{"ip-address-type": "ipv6", "ip-address": "::ffff:0:0:102", "prefix": 64}, ' +
  '{"ip-address-type": "ipv6", "ip-address": "fe80::5054:ff:feab:cd0e", "prefix": 64}], ' +
  STATS_ETH0 +
  ', "hardware-address": "52:54:00:ab:cd:0e"}',
  '{"name": "tun0", "hardware-address": "00:00:00:00:00:00"}',
  '{"name": "ib0", "hardware-address": "80:00:02:08:fe:80"}',
  '{"name": "veth9", "hardware-address": "0a:0b:00:00:00:00"}',
  '{"name": "eth0:1", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.0.1", "prefix": 32}], ' +
  '"hardware-address": "52:54:00:ab:cd:0e"}',
  '{"name": "ghost", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.9.9.9", "prefix": 8}]}',
].join(", ") + "]";

Deno.test("get-interfaces: links in kernel order, then new names; qemu-ga's members", async () => {
  await withAgent({}, facet(ADDRESSES), {}, async (agent) => {
    assertEquals(json(await guestNetworkGetInterfaces.run({}, agent)), FULL);
    assertEquals(json(await guestNetworkGetInterfaces.run({}, agent)), FULL);
  });
});

Deno.test("get-interfaces: a link without counters gets no statistics", async () => {
  const links = [{ ...LINKS[0], stats: undefined }];
  await withAgent({}, facet(ADDRESSES.slice(0, 1), links), {}, async (agent) => {
    assertEquals(
      json(await guestNetworkGetInterfaces.run({}, agent)),
      '[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", ' +
        '"prefix": 8}], "hardware-address": "00:00:00:00:00:00"}]',
    );
  });
});

Deno.test("get-interfaces: --exclude-interfaces leaves matching names out", async () => {
  await withAgent(
    {},
    facet(ADDRESSES),
    { excludeInterfaces: ["veth*", "eth0:?", "t[a-z]n0", "ib[!0]", "gh*t"] },
    async (agent) => {
      const names = (await guestNetworkGetInterfaces.run({}, agent) as { name: string }[])
        .map((i) => i.name);
      assertEquals(names, ["lo", "eth0", "ib0"]);
    },
  );
});

Deno.test("glob patterns: *, ?, classes, negation, quoting, whole-name match", () => {
  const m = globMatcher(["veth*", "br-????", "cali[0-9]*", "x[!a]y", "lit\\*", "a.b"]);
  for (const yes of ["veth", "veth0abc", "br-abcd", "cali7f", "xby", "lit*", "a.b"]) {
    assertEquals(m(yes), true, yes);
  }
  for (const no of ["eveth", "br-abc", "calix", "xay", "litx", "axb", "lo"]) {
    assertEquals(m(no), false, no);
  }
  assertEquals(globMatcher([])("anything"), false);
});

Deno.test("get-interfaces: a getifaddrs failure is qemu-ga's text", async () => {
  const failing: NetworkFacet = {
    tables: () => Promise.reject(new OsFileError("Too many open files", 24, "getifaddrs")),
  };
  await withAgent({}, failing, {}, async (agent) => {
    await assertRejects(
      async () => await guestNetworkGetInterfaces.run({}, agent),
      (e) => e instanceof QgaError && e.desc === "getifaddrs failed: Too many open files",
    );
  });
});

const ROUTE =
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
  "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
const IPV6_ROUTE = "00000000000000000000000000000001 80 00000000000000000000000000000000 00 " +
  "00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo\n";

Deno.test("get-route: v4 then v6 members, v6 flags sign-extended", async () => {
  const files = { "/proc/net/route": ROUTE, "/proc/net/ipv6_route": IPV6_ROUTE };
  await withAgent(files, facet([]), {}, async (agent) => {
    assertEquals(
      json(await guestNetworkGetRoute.run({}, agent)),
      '[{"flags": 3, "metric": 100, "refcnt": 0, "window": 0, "version": 4, "iface": "eth0", ' +
        '"destination": "0.0.0.0", "irtt": 0, "gateway": "192.168.1.1", "use": 0, "mtu": 0, ' +
        '"mask": "0.0.0.0"}, {"flags": 18446744071564165121, "source": "::", "metric": 0, ' +
        '"refcnt": 3, "version": 6, "nexthop": "::", "iface": "lo", "destination": "::1", ' +
        '"desprefixlen": "128", "srcprefixlen": "0", "use": 0}]',
    );
  });
});

Deno.test("get-route: a file that cannot be opened is qemu-ga's open() text", async () => {
  for (
    const [files, text] of [
      [
        { "/proc/net/ipv6_route": IPV6_ROUTE },
        'open("/proc/net/route"): No such file or directory',
      ],
      [{ "/proc/net/route": ROUTE }, 'open("/proc/net/ipv6_route"): No such file or directory'],
      [{}, 'open("/proc/net/route"): No such file or directory'],
    ] as const
  ) {
    await withAgent(files, facet([]), {}, async (agent) => {
      await assertRejects(
        async () => await guestNetworkGetRoute.run({}, agent),
        (e) => e instanceof QgaError && e.desc === text,
      );
    });
  }
});
