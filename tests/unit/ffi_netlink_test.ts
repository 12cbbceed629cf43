/**
 * The rtnetlink exchange on both executors against what this machine's getifaddrs and
 * /proc/net/dev say: the same links in the same order, the same address entries.
 */

import assert from "node:assert/strict";
import { netlinkDump } from "../../ffi/netlink.ts";
import { parseAddresses, parseLinks } from "../../lib/system/netlink.ts";
import { formatIpv6 } from "../../lib/system/inet.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";

function procNetDevNames(): string[] {
  return Deno.readTextFileSync("/proc/net/dev").split("\n").filter((l) => l.includes(":"))
    .map((l) => l.slice(0, l.indexOf(":")).trim());
}

for (const ex of EXECUTORS) {
  Deno.test(`netlink dump: getifaddrs' links and addresses, in its order [${ex}]`, () =>
    usingExecutor(ex, async () => {
      const r = await netlinkDump();
      assert.ok(r.ok, JSON.stringify(r));
      if (!r.ok) return;
      const links = parseLinks(new Uint8Array(r.links));
      assert.deepEqual(links.map((l) => l.name), procNetDevNames());
      const addresses = parseAddresses(new Uint8Array(r.addresses), links).map((a) =>
        `${a.name} ${a.family === "ipv4" ? a.address.join(".") : formatIpv6(a.address)}`
      );
      const libc = Deno.networkInterfaces().map((i) =>
        `${i.name} ${i.family === "IPv4" ? i.address : formatIpv6(ipv6Bytes(i.address))}`
      );
      assert.deepEqual(addresses, libc);
    }));
}

/** Rust's IPv6 text → bytes (Deno formats addresses its own way). */
function ipv6Bytes(text: string): Uint8Array {
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const words = (s: string) => s === "" ? [] : s.split(":").map((w) => parseInt(w, 16));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
}
