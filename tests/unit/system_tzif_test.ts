/**
 * lib/system/tzif.ts on zoneinfo files copied from Debian 12's tzdata (tests/fixtures/tzif/),
 * POSIX rules and constant offsets. The expected values are GLib 2.74's answers.
 */

import { assertEquals } from "../assert.ts";
import {
  constantOffsetZone,
  parseTzif,
  posixRuleZone,
  type Zone,
  zoneInfoAt,
} from "../../lib/system/tzif.ts";

const dir = new URL("../fixtures/tzif/", import.meta.url);
const file = (name: string): Zone => parseTzif(Deno.readFileSync(new URL(name, dir)))!;
const at = (z: Zone, iso: string) => {
  const i = zoneInfoAt(z, Date.parse(iso) / 1000);
  return `${i.abbrev} ${i.offset}`;
};

Deno.test("zone files: summer, winter, and past the table through the footer", () => {
  const berlin = file("Europe_Berlin");
  assertEquals(at(berlin, "2024-01-15T12:00:00Z"), "CET 3600");
  assertEquals(at(berlin, "2024-07-15T12:00:00Z"), "CEST 7200");
  assertEquals(at(berlin, "2024-03-31T00:59:59Z"), "CET 3600");
  assertEquals(at(berlin, "2024-03-31T01:00:00Z"), "CEST 7200");
  assertEquals(at(berlin, "2050-07-01T00:00:00Z"), "CEST 7200");
  assertEquals(at(berlin, "1890-01-01T00:00:00Z"), "LMT 3208");
  const ny = file("America_New_York");
  assertEquals(at(ny, "2024-01-15T12:00:00Z"), "EST -18000");
  assertEquals(at(ny, "2060-07-15T12:00:00Z"), "EDT -14400");
  assertEquals(at(file("Asia_Kolkata"), "2024-01-15T12:00:00Z"), "IST 19800");
  assertEquals(at(file("Etc_UTC"), "2024-01-15T12:00:00Z"), "UTC 0");
  const sydney = file("Australia_Sydney");
  assertEquals(at(sydney, "2024-01-15T12:00:00Z"), "AEDT 39600");
  assertEquals(at(sydney, "2045-07-15T12:00:00Z"), "AEST 36000");
  assertEquals(at(file("America_Sao_Paulo"), "2045-01-15T12:00:00Z"), "-03 -10800");
});

Deno.test("not a TZif file, a truncated one, a v2 file without its footer", () => {
  const berlin = Deno.readFileSync(new URL("Europe_Berlin", dir));
  assertEquals(parseTzif(new TextEncoder().encode("not a zone")), undefined);
  assertEquals(parseTzif(berlin.subarray(0, 100)), undefined);
  assertEquals(
    parseTzif(berlin.subarray(0, berlin.lastIndexOf(0x0a, berlin.length - 2))),
    undefined,
  );
});

Deno.test("POSIX rules, southern hemisphere included", () => {
  const cet = posixRuleZone("CET-1CEST,M3.5.0,M10.5.0/3")!;
  assertEquals(at(cet, "2024-07-01T00:00:00Z"), "CEST 7200");
  assertEquals(at(cet, "2024-12-01T00:00:00Z"), "CET 3600");
  const aest = posixRuleZone("AEST-10AEDT,M10.1.0,M4.1.0/3")!;
  assertEquals(at(aest, "2024-01-01T00:00:00Z"), "AEDT 39600");
  assertEquals(at(aest, "2024-07-01T00:00:00Z"), "AEST 36000");
  assertEquals(at(posixRuleZone("<+0330>-3:30")!, "2024-07-01T00:00:00Z"), "+0330 12600");
  assertEquals(at(posixRuleZone("EST5")!, "2024-07-01T00:00:00Z"), "EST -18000");
  // a daylight name without rules is not a rule GLib accepts (the file EST5EDT is used then)
  assertEquals(posixRuleZone("EST5EDT"), undefined);
  assertEquals(posixRuleZone("Europe/Berlin"), undefined);
  assertEquals(posixRuleZone(":Asia/Kolkata"), undefined);
});

Deno.test("constant offsets are named as written, east of UTC positive", () => {
  assertEquals(at(constantOffsetZone("UTC")!, "2024-07-01T00:00:00Z"), "UTC 0");
  assertEquals(at(constantOffsetZone("+05:30")!, "2024-07-01T00:00:00Z"), "+05:30 19800");
  assertEquals(at(constantOffsetZone("-08")!, "2024-07-01T00:00:00Z"), "-08 -28800");
  assertEquals(constantOffsetZone("GMT"), undefined);
  assertEquals(constantOffsetZone(""), undefined);
});
