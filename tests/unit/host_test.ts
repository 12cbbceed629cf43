/** The host-information commands over a fake root (osFiles(tempRoot)) and a fake host facet. */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import {
  guestGetHostName,
  guestGetLoad,
  guestGetOsinfo,
  guestGetTimezone,
  guestGetUsers,
} from "../../lib/commands/host.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import { osFiles } from "../../lib/platform/files.ts";
import { systemHost } from "../../lib/platform/host.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { StateDir } from "../../lib/state.ts";
import { USER_PROCESS, UTMP_X86_64 } from "../../lib/system/utmp.ts";
import { utmpBytes } from "../fixtures/utmp/build.ts";

const TZIF = new URL("../fixtures/tzif/", import.meta.url);

async function withRoot(
  files: Record<string, string | Uint8Array>,
  env: Record<string, string>,
  fn: (agent: Agent, root: string) => Promise<void>,
  hostName = "vm",
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denoga-host-" });
  try {
    for (const [path, data] of Object.entries(files)) {
      await Deno.mkdir(`${root}${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
      await Deno.writeFile(
        `${root}${path}`,
        typeof data === "string" ? new TextEncoder().encode(data) : data,
      );
    }
    const agent = new Agent({
      table: commandTable(),
      options: { blockedRpcs: [] },
      state: new StateDir("/nonexistent"),
      log: new Logger({ verbose: false, sink: { write() {} } }),
      platform: fakePlatform({
        os: osFiles(root),
        host: {
          hostName: () => hostName,
          env: (n) => env[n],
          kernelRelease: () => "6.1.0-uname",
          arch: "x86_64",
          loadAverage: () => [43253 / 65536, 0.25, 1],
        },
        clock: {
          nowMicroseconds: () => BigInt(Date.UTC(2024, 6, 1)) * 1000n,
          setTimeOfDay: () => Promise.reject(new Error("never")),
        },
      }),
    });
    await fn(agent, root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const isQga = (desc: string) => (e: unknown) => e instanceof QgaError && e.desc === desc;

Deno.test("users: USER_PROCESS records of /var/run/utmp; none without the file", async () => {
  const utmp = utmpBytes(UTMP_X86_64, [
    { type: USER_PROCESS, user: "root", sec: 100, usec: 500_000 },
    { type: 8, user: "gone", sec: 1, usec: 0 },
  ]);
  await withRoot({ "/var/run/utmp": utmp }, {}, async (agent) => {
    assertEquals(await guestGetUsers.run({}, agent), [{ user: "root", "login-time": 100.5 }]);
  });
  await withRoot({}, {}, async (agent) => assertEquals(await guestGetUsers.run({}, agent), []));
});

Deno.test("osinfo: /proc/sys/kernel, then os-release with its fallback", async () => {
  const files = {
    "/proc/sys/kernel/osrelease": "6.1.0-test\n",
    "/proc/sys/kernel/version": "#1 SMP Debian\n",
    "/etc/os-release": "ID=x\nnot a pair\n",
    "/usr/lib/os-release": 'ID=fallback\nPRETTY_NAME="Fall Back"\n',
  };
  await withRoot(files, {}, async (agent) => {
    assertEquals(await guestGetOsinfo.run({}, agent), {
      "kernel-release": "6.1.0-test",
      "kernel-version": "#1 SMP Debian",
      machine: "x86_64",
      id: "fallback",
      name: undefined,
      "pretty-name": "Fall Back",
      version: undefined,
      "version-id": undefined,
      variant: undefined,
      "variant-id": undefined,
    });
  });
  // QGA_OS_RELEASE set: that file only, no fallback; no /proc: uname's release
  await withRoot(
    { "/usr/lib/os-release": "ID=fallback\n" },
    { QGA_OS_RELEASE: "/missing" },
    async (agent) => {
      const r = await guestGetOsinfo.run({}, agent) as Record<string, unknown>;
      assertEquals([r["kernel-release"], r["kernel-version"], r.id], [
        "6.1.0-uname",
        undefined,
        undefined,
      ]);
    },
  );
});

Deno.test("timezone: a plain /etc/localtime needs /etc/timezone; TZ as a file or a rule", async () => {
  const berlin = await Deno.readFile(new URL("Europe_Berlin", TZIF));
  await withRoot({ "/etc/localtime": berlin }, {}, async (agent) => {
    // GLib reads a plain /etc/localtime only when /etc/timezone names the zone
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "UTC", offset: 0 });
  });
  await withRoot(
    { "/etc/localtime": berlin, "/etc/timezone": "Europe/Berlin\n" },
    {},
    async (agent) => {
      assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
    },
  );
  await withRoot(
    { "/usr/share/zoneinfo/Europe/Berlin": berlin },
    { TZ: ":Europe/Berlin" },
    async (agent) => {
      assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
    },
  );
  await withRoot({}, { TZ: "EST5EDT,M3.2.0,M11.1.0" }, async (agent) => {
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "EDT", offset: -14400 });
  });
});

Deno.test("timezone: a changed /etc/localtime link is picked up, its zone file kept", async () => {
  const berlin = await Deno.readFile(new URL("Europe_Berlin", TZIF));
  const newYork = await Deno.readFile(new URL("America_New_York", TZIF));
  const utc = await Deno.readFile(new URL("Etc_UTC", TZIF));
  const files = { "/usr/share/zoneinfo/Europe/Berlin": berlin, "/usr/share/zoneinfo/UTC": utc };
  await withRoot(files, {}, async (agent, root) => {
    const relink = async (target: string) => {
      await Deno.remove(`${root}/etc/localtime`).catch(() => {});
      await Deno.mkdir(`${root}/etc`, { recursive: true });
      await Deno.symlink(target, `${root}/etc/localtime`);
    };
    await relink("../usr/share/zoneinfo/Europe/Berlin");
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
    await relink("../usr/share/zoneinfo/UTC");
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "UTC", offset: 0 });
    // The same link, its target replaced (as a tzdata update does): GLib keeps the zone it
    // loaded under that name, and so qemu-ga (tests/integration/change_cache_test.ts).
    await Deno.writeFile(`${root}/usr/share/zoneinfo/UTC.new`, newYork);
    await Deno.rename(`${root}/usr/share/zoneinfo/UTC.new`, `${root}/usr/share/zoneinfo/UTC`);
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "UTC", offset: 0 });
    await relink("../usr/share/zoneinfo/Europe/Berlin");
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
    await relink("../usr/share/zoneinfo/UTC"); // now loaded anew
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "EDT", offset: -14400 });
  });
});

Deno.test("timezone: the zone TZ names is loaded once, a missing one retried", async () => {
  const berlin = await Deno.readFile(new URL("Europe_Berlin", TZIF));
  const newYork = await Deno.readFile(new URL("America_New_York", TZIF));
  await withRoot({}, { TZ: ":Europe/Berlin" }, async (agent, root) => {
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "UTC", offset: 0 });
    await Deno.mkdir(`${root}/usr/share/zoneinfo/Europe`, { recursive: true });
    await Deno.writeFile(`${root}/usr/share/zoneinfo/Europe/Berlin`, berlin);
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
    await Deno.writeFile(`${root}/usr/share/zoneinfo/Europe/Berlin`, newYork);
    assertEquals(await guestGetTimezone.run({}, agent), { zone: "CEST", offset: 7200 });
  });
});

Deno.test("load: the host facet's three averages, in qemu-ga's member names", async () => {
  await withRoot({ "/proc/loadavg": "9.99 9.99 9.99 1/2 3\n" }, {}, async (agent) => {
    assertEquals(await guestGetLoad.run({}, agent), {
      load1m: 43253 / 65536,
      load5m: 0.25,
      load15m: 1,
    });
  });
});

Deno.test("load: the real host's averages are getloadavg's, in steps of 2^-16", () => {
  for (const v of systemHost.loadAverage()) {
    assertEquals(Number.isInteger(v * 65536) && v >= 0, true, `${v}`);
  }
});

Deno.test("host name: a 64-byte name does not fit gethostname's buffer", async () => {
  await withRoot({}, {}, async (agent) => {
    assertEquals(await guestGetHostName.run({}, agent), { "host-name": "vm" });
  });
  await withRoot({}, {}, async (agent) => {
    await assertRejects(
      async () => await guestGetHostName.run({}, agent),
      isQga("cannot get hostname: File name too long"),
    );
  }, "h".repeat(64));
});
