/**
 * lib/system/proc_net_dev.ts on fixtures: a real network namespace's file and odd lines
 * (a long name glued to its counters, short lines, a counter past int64, a tab before the colon,
 * no trailing newline). Expected values were checked against glibc's sscanf with qemu-ga's
 * format.
 */

import { assertEquals } from "../assert.ts";
import { findNetDevStats, parseProcNetDev } from "../../lib/system/proc_net_dev.ts";

const FIXTURES = new URL("../fixtures/proc_net_dev/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

function stats(rx: (number | bigint)[], tx: (number | bigint)[]) {
  const [rxBytes, rxPackets, rxErrs, rxDropped] = rx.map(BigInt);
  const [txBytes, txPackets, txErrs, txDropped] = tx.map(BigInt);
  return { rxBytes, rxPackets, rxErrs, rxDropped, txBytes, txPackets, txErrs, txDropped };
}

Deno.test("proc_net_dev: a namespace's devices in file order, counters from columns 1-4, 9-12", () => {
  const lines = parseProcNetDev(read("netns.dev"));
  assertEquals(lines.map((l) => l.name), [
    "lo",
    "d0",
    "d1",
    "down0",
    "vb",
    "va",
    "averyverylongnm",
    "tun0",
  ]);
  assertEquals(findNetDevStats(lines, "d0"), stats([2182, 29, 0, 29], [0, 0, 0, 0]));
  assertEquals(findNetDevStats(lines, "averyverylongnm"), stats([490, 7, 0, 7], [0, 0, 0, 0]));
  assertEquals(findNetDevStats(lines, "va"), stats([936, 12, 0, 0], [936, 12, 0, 0]));
  assertEquals(findNetDevStats(lines, "d0:alias"), undefined);
  assertEquals(findNetDevStats(lines, "nosuch"), undefined);
});

Deno.test("proc_net_dev: odd lines", () => {
  const lines = parseProcNetDev(read("odd.dev"));
  assertEquals(lines.map((l) => l.name), [
    "lo",
    "eth0",
    "eth0",
    "averylongname15",
    "tab\t",
    "last",
  ]);
  // The short eth0 line is passed over for the next one; int64 overflow saturates as strtoll.
  assertEquals(lines[1].stats, undefined);
  assertEquals(
    findNetDevStats(lines, "eth0"),
    stats([9223372036854775807n, 11, 12, 13], [21, 22, 23, 24]),
  );
  assertEquals(
    findNetDevStats(lines, "averylongname15"),
    stats([123456789, 7, 0, 1], [
      987654321,
      8,
      0,
      2,
    ]),
  );
  // qemu-ga compares the whole text before the colon: white space there is part of the name.
  assertEquals(findNetDevStats(lines, "tab"), undefined);
  assertEquals(findNetDevStats(lines, "tab\t"), stats([5, 6, 7, 8], [9, 10, 11, 12]));
  assertEquals(findNetDevStats(lines, "last"), stats([1, 2, 3, 4], [9, 10, 11, 12]));
  assertEquals(parseProcNetDev(""), []);
});
