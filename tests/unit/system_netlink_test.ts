/**
 * The rtnetlink parser over dumps captured from this machine and from a netns (veth pair with
 * one end down, an IPv4 label, a point-to-point tun with IPv4 and IPv6), and over hand-built
 * messages: attributes out of order and unknown ones, NLMSG_ERROR, truncation, a missing end.
 */

import { assertEquals, assertThrows } from "../assert.ts";
import { NetlinkError, parseAddresses, parseLinks } from "../../lib/system/netlink.ts";

const fixture = (name: string) =>
  Deno.readFileSync(new URL(`../fixtures/netlink/${name}`, import.meta.url));

Deno.test("netlink: the netns dumps give getifaddrs' links, names and addresses", () => {
  const links = parseLinks(fixture("netns.links"));
  assertEquals(links.map((l) => l.name), ["lo", "vb", "va", "tn0"]);
  assertEquals(links.find((l) => l.name === "tn0")?.address, undefined);
  assertEquals(links[0].address, new Uint8Array(6));
  assertEquals(links[1].address?.length, 6);
  assertEquals(links[0].stats?.rxBytes, 0n);
  const addrs = parseAddresses(fixture("netns.addrs"), links);
  assertEquals(
    addrs.map((a) => `${a.family} ${a.name} ${a.address.join(".")}/${a.prefix}`),
    [
      "ipv4 lo 127.0.0.1/8",
      "ipv4 vb 192.168.7.1/30",
      "ipv4 va 10.1.0.1/24",
      "ipv4 va:lab 10.1.0.9/32",
      "ipv4 tn0 10.2.0.1/32", // IFA_LOCAL, not the peer
      "ipv6 lo 0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1/128",
      "ipv6 va 253.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1/64",
      "ipv6 tn0 253.1.0.0.0.0.0.0.0.0.0.0.0.0.0.5/128",
    ],
  );
});

Deno.test("netlink: the host dumps parse to links with counters", () => {
  const links = parseLinks(fixture("host.links"));
  assertEquals(links[0].name, "lo");
  for (const l of links) assertEquals(l.stats !== undefined, true, l.name);
  assertEquals(parseAddresses(fixture("host.addrs"), links)[0].name, "lo");
});

/** One netlink message of `type` with a `fixed` header and attributes. */
function message(type: number, fixed: number[], attrs: [number, number[]][]): number[] {
  const body = [...fixed];
  for (const [t, data] of attrs) {
    const len = 4 + data.length;
    body.push(len & 0xff, len >> 8, t & 0xff, t >> 8, ...data);
    while (body.length % 4) body.push(0);
  }
  const len = 16 + body.length;
  return [len & 0xff, (len >> 8) & 0xff, 0, 0, type, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, ...body];
}
const DONE = message(3, [0, 0, 0, 0], []);
const ifinfo = (index: number) => [0, 0, 1, 0, index, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const name = (s: string) => [...new TextEncoder().encode(s), 0];
const u64s = (values: number[]) =>
  values.flatMap((v) => [...new Uint8Array(new BigUint64Array([BigInt(v)]).buffer)]);

Deno.test("netlink: attributes in any order, unknown ones skipped; drop = dropped + missed", () => {
  const stats = Array.from({ length: 24 }, (_, i) => i + 1);
  const bytes = new Uint8Array([
    ...message(16, ifinfo(7), [
      [23, u64s(stats)],
      [999, [1, 2, 3]],
      [1, [0x80, 0, 2, 8, 0xfe, 0x80, 0, 0]],
      [3, name("ib0")],
    ]),
    ...message(99, [1, 2, 3, 4], []), // an unknown message type
    ...DONE,
  ]);
  const [link] = parseLinks(bytes);
  assertEquals(link.name, "ib0");
  assertEquals(link.index, 7);
  assertEquals(link.address, new Uint8Array([0x80, 0, 2, 8, 0xfe, 0x80, 0, 0]));
  assertEquals(link.stats, {
    rxBytes: 3n,
    rxPackets: 1n,
    rxErrs: 5n,
    rxDropped: 7n + 16n,
    txBytes: 4n,
    txPackets: 2n,
    txErrs: 6n,
    txDropped: 8n,
  });
  const addr = message(20, [2, 40, 0, 0, 7, 0, 0, 0], [[1, [10, 0, 0, 1]]]);
  assertEquals(parseAddresses(new Uint8Array([...addr, ...DONE]), [link])[0], {
    family: "ipv4",
    name: "ib0",
    address: new Uint8Array([10, 0, 0, 1]),
    prefix: 32, // clamped as glibc does
  });
});

Deno.test("netlink: NLMSG_ERROR, truncation and a missing end throw with an errno", () => {
  const error = message(2, [0xf3, 0xff, 0xff, 0xff], []); // -13: EACCES
  for (
    const [bytes, errno] of [
      [error, 13],
      [DONE.slice(0, 10), 5],
      [[...message(16, ifinfo(1), [[3, name("lo")]])].slice(0, 30), 5],
      [message(16, ifinfo(1), [[3, name("lo")]]), 5],
    ] as const
  ) {
    assertThrows(
      () => parseLinks(new Uint8Array(bytes)),
      (e) => e instanceof NetlinkError && e.errno === errno,
    );
  }
});
