/** lib/system/loadavg.ts: glibc getloadavg's reading of /proc/loadavg. */

import { assertEquals } from "../assert.ts";
import { parseLoadavg } from "../../lib/system/loadavg.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("three numbers, the rest of the line ignored", () => {
  assertEquals(parseLoadavg(enc("0.52 0.58 0.59 1/234 5678\n")), [0.52, 0.58, 0.59]);
  assertEquals(parseLoadavg(enc("12.00 3 1e1\n")), [12, 3, 10]);
});

Deno.test("the last byte read is dropped; fewer than three numbers fail", () => {
  assertEquals(parseLoadavg(enc("1 2 3")), undefined); // the "3" was the dropped byte
  assertEquals(parseLoadavg(enc("1 2 34")), [1, 2, 3]);
  assertEquals(parseLoadavg(enc("1 2\n")), undefined);
  assertEquals(parseLoadavg(enc("")), undefined);
  assertEquals(parseLoadavg(enc("x 1 2 3\n")), undefined);
});

Deno.test("only the first 64 bytes are read", () => {
  const long = `1 2 ${"9".repeat(70)}\n`;
  assertEquals(parseLoadavg(enc(long)), [1, 2, Number("9".repeat(59))]);
});
