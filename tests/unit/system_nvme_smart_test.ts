/** lib/system/nvme_smart.ts on fixture log pages: distinct values, QEMU's emulated page, short ones. */

import { assertEquals } from "../assert.ts";
import { type NvmeSmartLog, parseNvmeSmartLog } from "../../lib/system/nvme_smart.ts";

const FIXTURES = new URL("../fixtures/nvme_smart/", import.meta.url);

async function parse(name: string): Promise<NvmeSmartLog> {
  return parseNvmeSmartLog(await Deno.readFile(new URL(name, FIXTURES)));
}

const COUNTERS = [
  "dataUnitsRead",
  "dataUnitsWritten",
  "hostReadCommands",
  "hostWriteCommands",
  "controllerBusyTime",
  "powerCycles",
  "powerOnHours",
  "unsafeShutdowns",
  "mediaErrors",
  "numberOfErrorLogEntries",
] as const;

const ZERO = { lo: 0n, hi: 0n };

Deno.test("every field from its offset; 128-bit counters as exact 64-bit halves; reserved ignored", async () => {
  const log = await parse("distinct.bin");
  assertEquals(log.criticalWarning, 5);
  assertEquals(log.temperature, 323); // kelvins, unconverted, from the unaligned bytes 1-2
  assertEquals(log.availableSpare, 100);
  assertEquals(log.availableSpareThreshold, 10);
  assertEquals(log.percentageUsed, 255);
  COUNTERS.forEach((name, i) => {
    assertEquals(log[name], { lo: 0xfedcba9876543210n + BigInt(i), hi: BigInt(i + 1) }, name);
  });
});

Deno.test("the page of QEMU 7.2's emulated controller after boot", async () => {
  const log = await parse("qemu-7.2.bin");
  assertEquals(log, {
    criticalWarning: 0,
    temperature: 323,
    availableSpare: 0,
    availableSpareThreshold: 0,
    percentageUsed: 0,
    dataUnitsRead: { lo: 1n, hi: 0n },
    dataUnitsWritten: ZERO,
    hostReadCommands: { lo: 3n, hi: 0n },
    hostWriteCommands: ZERO,
    controllerBusyTime: ZERO,
    powerCycles: ZERO,
    powerOnHours: ZERO,
    unsafeShutdowns: ZERO,
    mediaErrors: ZERO,
    numberOfErrorLogEntries: ZERO,
  });
});

Deno.test("a short page: what is missing reads as 0, as in qemu-ga's zeroed buffer", async () => {
  const log = await parse("short.bin");
  assertEquals(log.temperature, 323);
  assertEquals(log.percentageUsed, 255);
  assertEquals(log.dataUnitsRead, { lo: 0xfedcba9876543210n, hi: 0n }); // only its low half
  for (const name of COUNTERS.slice(1)) assertEquals(log[name], ZERO, name);

  const empty = await parse("empty.bin");
  assertEquals(empty.criticalWarning, 0);
  assertEquals(empty.temperature, 0);
  for (const name of COUNTERS) assertEquals(empty[name], ZERO, name);
});

Deno.test("bytes past the 512 of the page are ignored", async () => {
  const page = await Deno.readFile(new URL("distinct.bin", FIXTURES));
  const longer = new Uint8Array(600).fill(0x77);
  longer.set(page);
  assertEquals(parseNvmeSmartLog(longer), parseNvmeSmartLog(page));
});
