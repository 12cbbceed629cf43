/** lib/system/proc_stat.ts on fixture files: columns by kernel generation, gaps, odd lines. */

import { assertEquals } from "../assert.ts";
import { parseProcStatCpus } from "../../lib/system/proc_stat.ts";

const FIXTURES = new URL("../fixtures/proc_stat/", import.meta.url);

async function parse(name: string) {
  return parseProcStatCpus(await Deno.readFile(new URL(name, FIXTURES)));
}

Deno.test("kernel 6.1: per-CPU lines only, numbered with gaps (offline CPUs)", async () => {
  const { cpus, cutShort } = await parse("kernel-6.1.stat");
  assertEquals(cutShort, false);
  assertEquals(cpus.map((c) => c.cpu), [0, 2, 5]);
  assertEquals(cpus[1], {
    cpu: 2,
    user: 48866n,
    nice: 12n,
    system: 18260n,
    idle: 89113n,
    iowait: 744n,
    irq: 3n,
    softirq: 412n,
    steal: 7n,
    guest: 5n,
    guestnice: 1n,
  });
});

Deno.test("older kernels: members by number of columns", async () => {
  const { cpus, cutShort } = await parse("kernel-2.6.stat");
  assertEquals(cutShort, false);
  const base = { user: 1n, nice: 2n, system: 3n, idle: 4n };
  assertEquals(cpus, [
    { cpu: 0, ...base },
    { cpu: 1, ...base, iowait: 5n },
    { cpu: 2, ...base, iowait: 5n, irq: 6n, softirq: 7n },
    { cpu: 3, ...base, iowait: 5n, irq: 6n, softirq: 7n, steal: 8n },
    { cpu: 4, ...base, iowait: 5n, irq: 6n, softirq: 7n, steal: 8n, guest: 9n },
    // Six numbers: qemu-ga claims a softirq it did not read.
    { cpu: 5, ...base, iowait: 5n, irq: 6n, softirq: 0n },
  ]);
});

Deno.test("a cpuN line with fewer than four numbers ends the list", async () => {
  const { cpus, cutShort } = await parse("cut-short.stat");
  assertEquals(cutShort, true);
  assertEquals(cpus.map((c) => c.cpu), [0]);
  assertEquals(cpus[0].guestnice, 1000n);
});

Deno.test("odd names and numbers: atoi of the suffix, wrapped and saturated values", async () => {
  const { cpus, cutShort } = await parse("odd.stat");
  const max64 = (1n << 64n) - 1n;
  assertEquals(cpus, [
    { cpu: 0, user: 1n, nice: 2n, system: 3n, idle: 4n },
    { cpu: -3, user: 1n, nice: 2n, system: 3n, idle: 4n },
    { cpu: 7, user: 1n, nice: 2n, system: 3n, idle: 4n },
    { cpu: 2, user: max64, nice: max64, system: max64, idle: 0n },
  ]);
  // The last line, `cpux` alone, has no numbers.
  assertEquals(cutShort, true);
});

Deno.test("no CPU lines at all", () => {
  assertEquals(parseProcStatCpus(new TextEncoder().encode("intr 1\nctxt 2\n")), {
    cpus: [],
    cutShort: false,
  });
});
