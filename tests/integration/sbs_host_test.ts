/**
 * Side by side with the newest qemu-ga: the host-information commands (guest-get-osinfo, -host-name,
 * -users, -timezone, -time, -load) and the argument errors of guest-set-time. No valid
 * guest-set-time is ever sent: only requests whose decoding fails before anything is done.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import {
  type Case,
  needQemuGaNewest,
  parseReply,
  RawClient,
  realTest,
  registerSideBySide,
  REPO_ROOT,
  startAgent,
} from "./harness.ts";

const NEWEST = [needQemuGaNewest()];
const FIXTURES = `${REPO_ROOT}/tests/fixtures/os-release`;

// One os-release path for both agents of a pair: each case copies its fixture there first.
const osReleaseDir = await Deno.makeTempDir({ prefix: "denoga-sbs-os-release-" });
const OS_RELEASE = `${osReleaseDir}/os-release`;
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(osReleaseDir, { recursive: true });
  } catch {
    // best effort
  }
});

function osReleaseCase(fixture: string | undefined): Case {
  return {
    name: `osinfo with QGA_OS_RELEASE = ${fixture ?? "a missing file"}`,
    steps: [
      {
        host: async () => {
          await Deno.remove(OS_RELEASE).catch(() => {});
          if (fixture) await Deno.copyFile(`${FIXTURES}/${fixture}`, OS_RELEASE);
        },
      },
      { req: '{"execute":"guest-get-osinfo"}' },
    ],
  };
}

const OS_RELEASE_FIXTURES = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).sort();

registerSideBySide(
  "sbs host: osinfo",
  [...OS_RELEASE_FIXTURES.map(osReleaseCase), osReleaseCase(undefined), {
    name: "osinfo with QGA_OS_RELEASE naming a directory",
    steps: [
      { host: () => Deno.mkdir(OS_RELEASE).catch(() => {}) },
      { req: '{"execute":"guest-get-osinfo"}' },
      { host: () => Deno.remove(OS_RELEASE).catch(() => {}) },
    ],
  }],
  { newest: true, env: { QGA_OS_RELEASE: OS_RELEASE } },
  NEWEST,
);

/** Member names and JSON types of a reply's `return`, for values that differ between runs. */
function shape(line: string): string {
  const v = parseReply(line);
  if (v === null || typeof v !== "object" || Array.isArray(v) || !("return" in v)) return line;
  const r = v["return"];
  const type = (x: unknown) => typeof x === "bigint" ? "int" : typeof x;
  if (r !== null && typeof r === "object" && !Array.isArray(r)) {
    return Object.entries(r).map(([k, x]) => `${k}:${type(x)}`).join(",");
  }
  return type(r);
}

const READ_ONLY: Case[] = [
  { name: "osinfo of this host", steps: [{ req: '{"execute":"guest-get-osinfo"}' }] },
  { name: "host name", steps: [{ req: '{"execute":"guest-get-host-name"}' }] },
  { name: "users (this host's utmp)", steps: [{ req: '{"execute":"guest-get-users"}' }] },
  { name: "timezone from /etc/localtime", steps: [{ req: '{"execute":"guest-get-timezone"}' }] },
  ...[
    "guest-get-osinfo",
    "guest-get-host-name",
    "guest-get-users",
    "guest-get-timezone",
    "guest-get-time",
    "guest-get-load",
  ].map((cmd): Case => ({
    name: `${cmd} refuses an argument`,
    steps: [{ req: `{"execute":"${cmd}","arguments":{"x":1},"id":"a"}` }],
  })),
  ...[
    '{"time":"1"}',
    '{"time":1.5}',
    '{"time":true}',
    '{"time":null}',
    '{"time":18446744073709551615}',
    '{"time":1,"extra":2}',
  ].map((args): Case => ({
    name: `guest-set-time refuses ${args} before acting`,
    steps: [{ req: `{"execute":"guest-set-time","arguments":${args}}` }],
  })),
];

registerSideBySide("sbs host", READ_ONLY, { newest: true }, NEWEST);

// The same question under TZ values of every kind GLib knows: zone files (with and without ':'),
// POSIX rules, constant offsets, and names it cannot load (UTC then).
const TZ_VALUES = [
  "Europe/Berlin",
  "America/New_York",
  ":Asia/Kolkata",
  "UTC",
  "EST5EDT",
  "EST5",
  "CET-1CEST,M3.5.0,M10.5.0/3",
  "AEST-10AEDT,M10.1.0,M4.1.0/3",
  "<+0330>-3:30",
  "+05:30",
  "Not/AZone",
  "",
  "/usr/share/zoneinfo/Asia/Tokyo",
];
for (const tz of TZ_VALUES) {
  registerSideBySide(
    `sbs host TZ=${JSON.stringify(tz)}`,
    [{ name: "timezone", steps: [{ req: '{"execute":"guest-get-timezone"}' }] }],
    { newest: true, env: { TZ: tz } },
    NEWEST,
  );
}
registerSideBySide(
  "sbs host TZDIR",
  [{ name: "timezone from $TZDIR", steps: [{ req: '{"execute":"guest-get-timezone"}' }] }],
  { newest: true, env: { TZ: "Asia_Kolkata", TZDIR: `${REPO_ROOT}/tests/fixtures/tzif` } },
  NEWEST,
);

/** Sends `req` to a fresh agent of each kind; returns each reply line and when it arrived. */
async function askBoth(req: string): Promise<{ line: string; at: number }[]> {
  const out: { line: string; at: number }[] = [];
  for (const impl of ["qemu-ga", "denoga"] as const) {
    const agent = await startAgent({ impl, newest: true });
    try {
      const c = await RawClient.connect(agent.socketPath);
      try {
        await c.send(req);
        const line = new TextDecoder().decode(await c.recvLine());
        out.push({ line, at: Date.now() });
      } finally {
        c.close();
      }
    } finally {
      await agent.stop();
    }
  }
  return out;
}

realTest("sbs host: get-time is the clock in ns, µs resolution, within 1 s", NEWEST, async () => {
  for (const { line, at } of await askBoth('{"execute":"guest-get-time","id":1}')) {
    assertOk(/^\{"return": \d+, "id": 1\}$/.test(line), line);
    const ns = (parseReply(line) as { return: bigint }).return;
    assertEquals(ns % 1000n, 0n, "microsecond clock × 1000");
    assertOk(Math.abs(Number(ns / 1_000_000n) - at) < 1000, `${ns} is not within 1 s of ${at}`);
  }
});

realTest(
  "sbs host: get-load is qemu-ga's, byte for byte (sysinfo, not /proc/loadavg)",
  NEWEST,
  async () => {
    // The kernel updates the averages every 5 s: a pair asked across an update differs, so ask
    // again. /proc/loadavg's two decimals would differ from getloadavg's 2^-16 steps every time.
    let pair: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [qga, deno] = await askBoth('{"execute":"guest-get-load"}');
      assertEquals(shape(deno.line), "load15m:number,load5m:number,load1m:number");
      if (deno.line === qga.line) return;
      pair = [qga.line, deno.line];
    }
    assertEquals(pair[1], pair[0]);
  },
);
