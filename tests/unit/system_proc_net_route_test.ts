/**
 * lib/system/proc_net_route.ts on fixtures: a network namespace's /proc/net/route and
 * /proc/net/ipv6_route (gateways, blackhole and unreachable routes, local routes whose flags
 * have the top bit set, an ffffffff metric) and odd lines. Expected values were checked against
 * glibc's sscanf with qemu-ga's formats.
 */

import { assertEquals } from "../assert.ts";
import { parseIpv4Routes, parseIpv6Routes } from "../../lib/system/proc_net_route.ts";

const FIXTURES = new URL("../fixtures/proc_net_route/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

const v4 = (
  iface: string,
  destination: string,
  gateway: string,
  flags: number,
  metric: number,
  mask: string,
  mtu = 0,
) => ({
  iface,
  destination,
  gateway,
  flags,
  refcnt: 0,
  use: 0,
  metric,
  mask,
  mtu,
  window: 0,
  irtt: 0,
});

Deno.test("proc_net_route: IPv4 routes of a namespace, low byte first", () => {
  assertEquals(parseIpv4Routes(read("netns.route")), [
    v4("d0", "0.0.0.0", "10.10.1.1", 3, 0, "0.0.0.0"),
    v4("d0", "10.10.0.0", "0.0.0.0", 1, 0, "255.255.0.0"),
    v4("d0", "10.10.1.0", "0.0.0.0", 1, 0, "255.255.255.0"),
    v4("*", "10.66.0.0", "0.0.0.0", 1, 0, "255.255.0.0"),
    v4("*", "10.67.0.0", "0.0.0.0", 0x201, 0, "255.255.0.0"),
    v4("d0", "10.99.0.0", "10.10.1.2", 3, 7, "255.255.0.0"),
    v4("averyverylongnm", "172.16.0.0", "0.0.0.0", 1, 0, "255.240.0.0"),
    v4("va", "192.168.77.0", "0.0.0.0", 1, 0, "255.255.255.252"),
  ]);
});

Deno.test("proc_net_route: IPv4 odd lines (short, blank, bad hex, int overflow, no newline)", () => {
  assertEquals(parseIpv4Routes(read("odd.route")), [
    v4("eth0", "0.0.0.0", "192.168.2.1", 3, 100, "0.0.0.0"),
    v4("averylongname15", "192.168.0.0", "0.0.0.0", 1, -5, "255.255.255.0", 1500),
    v4("*", "10.66.0.0", "0.0.0.0", 513, -1, "255.255.255.255"),
  ]);
  // The first line is dropped whatever it holds.
  assertEquals(parseIpv4Routes(read("noheader.route")), [
    v4("eth0", "0.0.0.0", "192.168.2.1", 3, 100, "0.0.0.0"),
  ]);
  assertEquals(parseIpv4Routes(""), []);
});

const v6 = (
  destination: string,
  desPrefixLen: number,
  nextHop: string,
  metric: number,
  refcnt: number,
  flags: number,
  iface: string,
) => ({
  destination,
  desPrefixLen,
  source: "::",
  srcPrefixLen: 0,
  nextHop,
  metric,
  refcnt,
  use: 0,
  flags,
  iface,
});

Deno.test("proc_net_route: IPv6 routes of a namespace", () => {
  const routes = parseIpv6Routes(read("netns.ipv6_route"));
  assertEquals(routes.length, 24);
  assertEquals(routes[0], v6("2001:db8:1::", 64, "::", 256, 4, 1, "d0"));
  assertEquals(routes[2], v6("2001:db8:66::", 64, "::", 1024, 2, 0x200200, "lo"));
  assertEquals(routes[4], v6("2001:db8:99::", 64, "2001:db8:1::1", 42, 1, 3, "d0"));
  assertEquals(routes[5], v6("fd00:0:0:1::", 127, "::", 256, 1, 1, "d0"));
  assertEquals(routes[9], v6("fe80::", 64, "::", 256, 1, 1, "averyverylongnm"));
  assertEquals(routes[10], v6("::", 0, "2001:db8:1::1", 1024, 1, 3, "d0"));
  // Local routes: flags 80200001 read into an int.
  assertEquals(routes[11], v6("::1", 128, "::", 0, 3, -2145386495, "lo"));
  // The unreachable default route's metric ffffffff is -1.
  assertEquals(routes[23], v6("::", 0, "::", -1, 1, 0x200200, "lo"));
});

Deno.test("proc_net_route: IPv6 odd lines", () => {
  assertEquals(parseIpv6Routes(read("odd.ipv6_route")), [
    v6("2001:db8:1::", 64, "::", 256, 4, 1, "d0"),
    // A short source field cannot be read: the member is left out.
    {
      ...v6("::ffff:1.2.3.4", 96, "2001:db8:1::1", -1, 1, -2145386495, "averylongname15"),
      source: undefined,
    },
    // A 34-digit destination: %32s stops after 32 and the prefix length reads the rest.
    v6("::0.1.0.2", 0, "::", 1024, 1, 3, "glued"),
  ]);
  assertEquals(parseIpv6Routes(""), []);
});
