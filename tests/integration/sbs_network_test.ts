/**
 * guest-network-get-interfaces and guest-network-get-route side by side with the newest qemu-ga,
 * both agents inside one network namespace this test builds (never the host's interfaces): lo,
 * links with several IPv4/IPv6 addresses of different prefixes, an IPv4 label, a link with no
 * address, a link that is down, a veth pair, a 15-character name, a tun device (no hardware
 * address), forty veth pairs with addresses (dumps of many parts), routes via gateways, blackhole and unreachable routes of both versions.
 *
 * Counters (statistics, route refcnt) can move while the agents are asked: a comparison counts
 * only when qemu-ga gave the same line before and after denoga's; otherwise it is asked again.
 * Also denoga's --exclude-interfaces in the same namespace, against qemu-ga's reply with the
 * same interfaces taken out.
 */

import { assertEquals } from "../assert.ts";
import {
  type Agent,
  needQemuGaNewest,
  needRoot,
  RawClient,
  realComponents,
  type Requirement,
  startAgent,
} from "./harness.ts";
import { globMatcher } from "../../lib/commands/network.ts";

const dec = new TextDecoder();
const NS = `denoga-net-${Deno.pid}`;

async function run(argv: string[], check = true): Promise<boolean> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (check && !out.success) {
    throw new Error(`${argv.join(" ")}: ${dec.decode(out.stderr)}`);
  }
  return out.success;
}

function needIproute(): Requirement {
  let present = false;
  try {
    present = Deno.statSync("/usr/sbin/ip").isFile || Deno.statSync("/sbin/ip").isFile;
  } catch {
    present = false;
  }
  return { what: "iproute2 (ip)", present };
}

const ip = (...args: string[]) => run(["ip", "-n", NS, ...args]);

/** Many `ip` commands in one `ip -batch` run. */
async function ipBatch(lines: string[]): Promise<void> {
  const file = await Deno.makeTempFile({ prefix: "denoga-ip-batch-" });
  try {
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    await run(["ip", "-n", NS, "-batch", file]);
  } finally {
    await Deno.remove(file);
  }
}

/** A link that holds addresses and no traffic: dummy where the kernel has it, else ifb. */
async function plainLink(name: string): Promise<void> {
  if (await run(["ip", "-n", NS, "link", "add", name, "type", "dummy"], false)) return;
  await ip("link", "add", name, "type", "ifb");
}

async function buildNamespace(): Promise<void> {
  await run(["ip", "netns", "add", NS]);
  // Fewer packets of the kernel's own: no duplicate address detection, no solicitations.
  for (const key of ["all", "default"]) {
    await run(["ip", "netns", "exec", NS, "sysctl", "-qw", `net.ipv6.conf.${key}.accept_dad=0`]);
    await run([
      "ip",
      "netns",
      "exec",
      NS,
      "sysctl",
      "-qw",
      `net.ipv6.conf.${key}.router_solicitations=0`,
    ]);
  }
  await ip("link", "set", "lo", "up");
  await plainLink("d0");
  await ip("link", "set", "d0", "up");
  await ip("addr", "add", "10.10.1.5/24", "dev", "d0");
  await ip("addr", "add", "10.10.2.5/16", "dev", "d0");
  await ip("addr", "add", "10.10.3.5/32", "dev", "d0", "label", "d0:alias");
  await ip("addr", "add", "2001:db8:1::5/64", "dev", "d0");
  await ip("addr", "add", "2001:db8:2::5/48", "dev", "d0");
  await ip("addr", "add", "fd00:0:0:1::/127", "dev", "d0");
  // IPv4-compatible: glibc writes ::1.2.3.4, other formatters ::102:304.
  await ip("addr", "add", "::1.2.3.4/96", "dev", "d0");
  await plainLink("noaddr0");
  await plainLink("down0");
  await ip("addr", "add", "10.20.0.1/8", "dev", "down0");
  await ip("-6", "addr", "add", "2001:db8:20::1/64", "dev", "down0");
  await ip("link", "add", "va", "type", "veth", "peer", "name", "vb");
  await ip("link", "set", "va", "up");
  await ip("link", "set", "vb", "up");
  await ip("addr", "add", "192.168.77.1/30", "dev", "va");
  await plainLink("averyverylongnm");
  await ip("link", "set", "averyverylongnm", "up");
  await ip("addr", "add", "172.16.9.9/12", "dev", "averyverylongnm");
  // Enough links and addresses that each dump takes several netlink messages' worth of parts.
  const batch = [];
  for (let i = 0; i < 40; i++) {
    batch.push(
      `link add m${i}a type veth peer name m${i}b`,
      `addr add 10.${100 + i}.0.1/24 dev m${i}a`,
    );
    batch.push(`addr add 2001:db8:${100 + i}::1/64 dev m${i}a`, `link set m${i}a up`);
  }
  await ipBatch(batch);
  // A tun device has no hardware address (addr_len 0); not every kernel offers one.
  await run(["ip", "-n", NS, "tuntap", "add", "dev", "tun0", "mode", "tun"], false);
  await ip("route", "add", "default", "via", "10.10.1.1", "dev", "d0");
  await ip("route", "add", "10.99.0.0/16", "via", "10.10.1.2", "metric", "7");
  await ip("route", "add", "blackhole", "10.66.0.0/16");
  await ip("route", "add", "unreachable", "10.67.0.0/16");
  await ip(
    "-6",
    "route",
    "add",
    "2001:db8:99::/64",
    "via",
    "2001:db8:1::1",
    "dev",
    "d0",
    "metric",
    "42",
  );
  await ip("-6", "route", "add", "blackhole", "2001:db8:66::/64");
  await ip("-6", "route", "add", "unreachable", "2001:db8:67::/64");
  await ip("-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "d0");
}

async function ask(agent: Agent, command: string): Promise<string> {
  const c = await RawClient.connect(agent.socketPath);
  try {
    await c.send(`{"execute": "${command}"}`);
    return dec.decode(await c.recvLine());
  } finally {
    c.close();
  }
}

/**
 * Asks qemu-ga, then denoga, then qemu-ga again until qemu-ga's two lines agree (nothing moved
 * in between), and returns that pair of lines (qemu-ga's, denoga's).
 */
async function settled(
  qga: Agent,
  denoga: Agent,
  command: string,
  expected: (line: string) => string = (l) => l,
): Promise<[string, string]> {
  let last: [string, string] = ["", ""];
  for (let attempt = 0; attempt < 10; attempt++) {
    const before = await ask(qga, command);
    const ours = await ask(denoga, command);
    const after = await ask(qga, command);
    last = [expected(before), ours];
    if (before === after) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

/** The elements of a reply's top-level `return` array, as text. */
function returnElements(line: string): string[] {
  const prefix = '{"return": [';
  if (!line.startsWith(prefix) || !line.endsWith("]}")) throw new Error(`not a list: ${line}`);
  const body = line.slice(prefix.length, -2);
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 0) {
      out.push(body.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (body.trim() !== "") out.push(body.slice(start).trim());
  return out;
}

const EXCLUDE = ["v?", "d0:*", "*long*"];

const NAME = "network side by side in a network namespace (interfaces, routes, exclusion)";
const { ignore, check } = realComponents(NAME, [needRoot(), needQemuGaNewest(), needIproute()]);

Deno.test({
  name: NAME,
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    check();
    const agents: Agent[] = [];
    try {
      await buildNamespace();
      const wrap = ["ip", "netns", "exec", NS];
      const qga = await startAgent({ impl: "qemu-ga", newest: true, wrap });
      agents.push(qga);
      const denoga = await startAgent({ impl: "denoga", wrap });
      agents.push(denoga);
      const excluding = await startAgent({
        impl: "denoga",
        wrap,
        args: [`--exclude-interfaces=${EXCLUDE.join(",")}`],
      });
      agents.push(excluding);

      await t.step("guest-network-get-interfaces: byte for byte", async () => {
        const [q, d] = await settled(qga, denoga, "guest-network-get-interfaces");
        assertEquals(d, q);
        // The namespace really has what the scenario needs.
        for (
          const part of [
            '"name": "noaddr0", "hardware-address": "',
            '"name": "d0:alias", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.10.3.5", "prefix": 32}], "hardware-address": "',
            '"ip-address": "::1.2.3.4", "prefix": 96',
            '"name": "averyverylongnm"',
          ]
        ) {
          assertEquals(q.includes(part), true, part);
        }
      });

      await t.step("guest-network-get-route: byte for byte", async () => {
        const [q, d] = await settled(qga, denoga, "guest-network-get-route");
        assertEquals(d, q);
        for (
          const part of [
            '"iface": "*", "destination": "10.67.0.0"',
            '"metric": -1',
            '"flags": 18446744071564165121',
            '"nexthop": "2001:db8:1::1", "iface": "d0", "destination": "2001:db8:99::"',
          ]
        ) {
          assertEquals(q.includes(part), true, part);
        }
      });

      await t.step("--exclude-interfaces: qemu-ga's reply without the matching names", async () => {
        const excluded = globMatcher(EXCLUDE);
        const filter = (line: string) => {
          const kept = returnElements(line).filter((e) => {
            const name = /^\{"name": "([^"]*)"/.exec(e)?.[1] ?? "";
            return !excluded(name);
          });
          return `{"return": [${kept.join(", ")}]}`;
        };
        const [q, d] = await settled(qga, excluding, "guest-network-get-interfaces", filter);
        assertEquals(d, q);
        for (const gone of ['"name": "va"', '"name": "vb"', '"name": "d0:alias"', "long"]) {
          assertEquals(d.includes(gone), false, gone);
        }
      });
    } finally {
      for (const a of agents) await a.stop().catch(() => a.dispose());
      await run(["ip", "-n", NS, "link", "del", "tun0"], false);
      await run(["ip", "netns", "del", NS], false);
    }
  },
});
