/** lib/system/utmp.ts on binary records in both architectures' layouts. */

import { assertEquals } from "../assert.ts";
import {
  DEAD_PROCESS,
  loggedInUsers,
  LOGIN_PROCESS,
  parseUtmp,
  USER_PROCESS,
  UTMP_AARCH64,
  UTMP_X86_64,
} from "../../lib/system/utmp.ts";
import { type RecordSpec, utmpBytes } from "../fixtures/utmp/build.ts";

const RECORDS: RecordSpec[] = [
  { type: 2, user: "reboot", sec: 1_700_000_000, usec: 0 }, // BOOT_TIME
  { type: LOGIN_PROCESS, user: "LOGIN", sec: 1_700_000_001, usec: 0, line: "tty1" },
  { type: USER_PROCESS, user: "alice", sec: 1_700_000_500, usec: 250_000 },
  { type: USER_PROCESS, user: "bob", sec: 1_700_000_600, usec: 1 },
  { type: USER_PROCESS, user: "alice", sec: 1_700_000_100, usec: 500_000, line: "pts/1" },
  { type: DEAD_PROCESS, user: "carol", sec: 1_700_000_050, usec: 0 },
  { type: USER_PROCESS, user: "alice", sec: 1_700_000_900, usec: 0, line: "pts/2" },
];

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

for (const layout of [UTMP_X86_64, UTMP_AARCH64]) {
  Deno.test(`${layout.size}-byte records: one user each, earliest login, others ignored`, () => {
    const data = utmpBytes(layout, RECORDS);
    const records = parseUtmp(data, layout);
    assertEquals(records.length, RECORDS.length);
    assertEquals(records.map((r) => r.type), RECORDS.map((r) => r.type));
    const users = loggedInUsers(records).map((u) => [dec(u.user), u.loginTime]);
    assertEquals(users, [["alice", 1_700_000_100.5], ["bob", 1_700_000_600.000001]]);
  });

  Deno.test(`${layout.size}-byte records: a short record at the end is not read`, () => {
    const data = utmpBytes(layout, RECORDS.slice(2, 4));
    assertEquals(parseUtmp(data.subarray(0, data.length - 1), layout).length, 1);
    assertEquals(parseUtmp(new Uint8Array(), layout), []);
  });
}

Deno.test("a 32-byte user name has no NUL: it runs on into ut_host, as C reads it", () => {
  const name = "u".repeat(32);
  const data = utmpBytes(UTMP_X86_64, [
    { type: USER_PROCESS, user: name, sec: 1, usec: 0, host: "example.net" },
  ]);
  assertEquals(dec(loggedInUsers(parseUtmp(data, UTMP_X86_64))[0].user), `${name}example.net`);
});

Deno.test("the login time is seconds + microseconds / 1e6 as doubles", () => {
  const data = utmpBytes(UTMP_X86_64, [
    { type: USER_PROCESS, user: "x", sec: 1_712_345_678, usec: 123_456 },
  ]);
  assertEquals(loggedInUsers(parseUtmp(data, UTMP_X86_64))[0].loginTime, 1712345678 + 123456 / 1e6);
});
