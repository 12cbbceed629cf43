/**
 * The network family's real code over a fake /proc and /sys laid out in a temp dir and a fake
 * address list: interface order (links first, then new names such as IPv4 labels), hardware
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
import type { InterfaceAddress, NetworkFacet } from "../../lib/platform/network.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import type { ReplyValue } from "../../lib/protocol/value.ts";
import { StateDir } from "../../lib/state.ts";

const DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       1       2    0    0    0     0          0         0        3       4    0    0    0     0       0          0
  eth0:     100      10    1    2    0     0          0         0      200      20    3    4    0     0       0          0
  tun0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
   ib0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
 veth9:       5       5    0    0    0     0          0         0        5       5    0    0    0     0       0          0
`;

const SYS: Record<string, [index: number, address: string]> = {
  lo: [1, "00:00:00:00:00:00"],
  eth0: [2, "52:54:00:AB:cd:0e"],
  tun0: [3, ""],
  ib0: [4, "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:bc:de"],
  veth9: [5, "0a:0b"],
  sit9: [6, "0a:01:02:03"],
};

async function layout(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${root}${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeTextFile(`${root}${path}`, text);
  }
}

function sysFiles(names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    out[`/sys/class/net/${n}/ifindex`] = `${SYS[n][0]}\n`;
    out[`/sys/class/net/${n}/address`] = `${SYS[n][1]}\n`;
  }
  return out;
}

const ADDRESSES: InterfaceAddress[] = [
  { family: "IPv4", name: "lo", address: "127.0.0.1", netmask: "255.0.0.0" },
  { family: "IPv4", name: "eth0", address: "192.168.1.5", netmask: "255.255.255.0" },
  { family: "IPv4", name: "eth0:1", address: "10.0.0.1", netmask: "255.255.255.255" },
  { family: "IPv4", name: "ghost", address: "10.9.9.9", netmask: "255.0.0.0" },
  {
    family: "IPv6",
    name: "lo",
    address: "::1",
    netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
  },
  { family: "IPv6", name: "eth0", address: "::ffff:0:0:102", netmask: "ffff:ffff:ffff:ffff::" },
  {
    family: "IPv6",
    name: "eth0",
    address: "fe80::5054:ff:feab:cd0e",
    netmask: "ffff:ffff:ffff:ffff::",
  },
];

async function withAgent(
  files: Record<string, string>,
  network: NetworkFacet,
  options: Partial<AgentOptions>,
  fn: (agent: Agent) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denoga-network-" });
  try {
    await layout(root, files);
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

const facet = (list: InterfaceAddress[]): NetworkFacet => ({
  addresses: () => Promise.resolve(list),
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

Deno.test("get-interfaces: links in /proc/net/dev order, then new names; qemu-ga's members", async () => {
  const files = { "/proc/net/dev": DEV, ...sysFiles(["lo", "eth0", "tun0", "ib0", "veth9"]) };
  await withAgent(files, facet(ADDRESSES), {}, async (agent) => {
    assertEquals(json(await guestNetworkGetInterfaces.run({}, agent)), FULL);
  });
});

Deno.test("get-interfaces: later polls see changed addresses and links", async () => {
  const files = { "/proc/net/dev": DEV, ...sysFiles(["lo", "eth0", "tun0", "ib0", "veth9"]) };
  await withAgent(files, facet(ADDRESSES), {}, async (agent) => {
    assertEquals(json(await guestNetworkGetInterfaces.run({}, agent)), FULL);
    assertEquals(json(await guestNetworkGetInterfaces.run({}, agent)), FULL);
  });
  const root = await Deno.makeTempDir({ prefix: "denoga-network-" });
  try {
    await layout(root, { "/proc/net/dev": DEV, ...sysFiles(Object.keys(SYS)) });
    const agent = new Agent({
      table: commandTable(),
      options: { blockedRpcs: [] },
      state: new StateDir("/nonexistent"),
      log: new Logger({ verbose: false, sink: { write() {} } }),
      platform: fakePlatform({ os: osFiles(root), network: facet(ADDRESSES) }),
    });
    assertEquals(json(await guestNetworkGetInterfaces.run({}, agent)), FULL);
    // tun0 gets an address, veth9 goes, sit9 comes
    await Deno.writeTextFile(`${root}/sys/class/net/tun0/address`, "0a:01:02:03:04:05\n");
    const lines = DEV.split("\n").filter((l) => !l.includes("veth9"));
    lines.splice(
      4,
      0,
      "  sit9:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0",
    );
    await Deno.writeTextFile(`${root}/proc/net/dev`, lines.join("\n"));
    const reply = json(await guestNetworkGetInterfaces.run({}, agent));
    assertEquals(
      reply,
      FULL.replace(
        '{"name": "tun0", "hardware-address": "00:00:00:00:00:00"}',
        '{"name": "sit9", "hardware-address": "0a:01:02:03:00:00"}, {"name": "tun0", "hardware-address": "0a:01:02:03:04:05"}',
      )
        .replace(', {"name": "veth9", "hardware-address": "0a:0b:00:00:00:00"}', ""),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("get-interfaces: without /proc/net/dev, links by ifindex and no statistics", async () => {
  const files = sysFiles(["veth9", "lo", "tun0", "sit9"]);
  await withAgent(files, facet(ADDRESSES.slice(0, 1)), {}, async (agent) => {
    assertEquals(
      json(await guestNetworkGetInterfaces.run({}, agent)),
      '[{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", ' +
        '"prefix": 8}], "hardware-address": "00:00:00:00:00:00"}, ' +
        '{"name": "tun0", "hardware-address": "00:00:00:00:00:00"}, ' +
        '{"name": "veth9", "hardware-address": "0a:0b:00:00:00:00"}, ' +
        '{"name": "sit9", "hardware-address": "0a:01:02:03:00:00"}]',
    );
  });
});

Deno.test("get-interfaces: --exclude-interfaces leaves matching names out", async () => {
  const files = { "/proc/net/dev": DEV, ...sysFiles(["lo", "eth0", "tun0", "ib0", "veth9"]) };
  await withAgent(
    files,
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
    addresses: () => Promise.reject(new OsFileError("Too many open files", 24, "getifaddrs")),
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
