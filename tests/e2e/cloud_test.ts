/**
 * The proof in a real cloud guest: Debian 12 with systemd, udev and cloud-init, built from Debian's
 * packages (scripts/guest/cloud_image.ts), booted twice under QEMU/TCG from throwaway overlays of
 * the same image. In one boot the NoCloud user-data starts Debian's qemu-ga (the reference), in the
 * other it installs denoga from the release artifact disk as a systemd unit on the virtio-serial
 * port. Both runs measure QEMU start → first reply and collect the same replies; then they are
 * compared: guest-info's command list, guest-get-osinfo, -host-name, -timezone, -fsinfo, the
 * member shapes of guest-network-get-interfaces, guest-get-users, Proxmox's framing (a fresh
 * connection per command, 0xFF + guest-sync-delimited and the command in one write),
 * `systemctl restart` of the agent through guest-exec with the host reconnecting, and a host that
 * disconnects (mid-request) and reconnects.
 *
 * Needs root, mmdebstrap, qemu-system-x86_64, qemu-img, cloud-localds, genisoimage, mkfs.ext4 and
 * Debian's archive (first build); skipped without them unless `DENOGA_REQUIRE_REAL=1`.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { QgaRawClient, ReadTimeout } from "../fixtures/guest/qga_client.ts";
import { realComponents, type Requirement, SEED_COMMANDS } from "../integration/harness.ts";
import {
  buildCloudImage,
  type CloudImage,
  missingCloudImagePrerequisite,
} from "../../scripts/guest/cloud_image.ts";
import {
  artifactDisk,
  bootCloudGuest,
  CLOUD_HOSTNAME,
  CLOUD_UNITS,
  type CloudAgent,
  type CloudVm,
  missingCloudBootPrerequisite,
  userDataPath,
} from "../fixtures/cloud/vm.ts";
import { which } from "../../scripts/guest/build.ts";

/** Failure guards only: a TCG boot through cloud-init takes well under a minute. */
const BOOT_TIMEOUT_MS = 240_000;
const SYNC_POLL_MS = 1_000;
const RESTART_TIMEOUT_MS = 60_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

type Json = unknown;

/** What one boot observed. */
interface Observed {
  bootSeconds: number;
  commands: string[];
  osinfo: Json;
  hostName: Json;
  timezone: Json;
  fsinfo: Json[];
  interfaces: Json[];
  users: Json;
  proxmox: Record<string, Json>;
  restartSeconds: number;
}

let idCounter = Math.floor(Math.random() * 2 ** 30);
const nextId = (): number => ++idCounter;

/** Sends syncs until the newest is answered; returns when it was. */
async function syncUntilReady(
  client: QgaRawClient,
  vm: CloudVm,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.syncDelimited(nextId(), SYNC_POLL_MS);
      return;
    } catch (e) {
      if (!(e instanceof ReadTimeout) || Date.now() > deadline || vm.hasExited()) throw e;
    }
  }
}

/**
 * A fresh connection that answers a sync (the agent may still be restarting); each connection
 * gets up to 10 s. `trace` collects when each connection was made and how it ended.
 */
async function reconnect(
  vm: CloudVm,
  timeoutMs: number,
  trace?: { from: number; lines: string[] },
): Promise<QgaRawClient> {
  const deadline = Date.now() + timeoutMs;
  const at = (): string =>
    trace ? `+${((performance.now() - trace.from) / 1000).toFixed(1)} s` : "";
  for (;;) {
    const c = await QgaRawClient.connect(vm.socket);
    const opened = at();
    try {
      await syncUntilReady(c, vm, Math.min(10_000, Math.max(0, deadline - Date.now())));
      trace?.lines.push(`connection at ${opened}: synced at ${at()}`);
      return c;
    } catch (e) {
      trace?.lines.push(
        `connection at ${opened}: ${e instanceof Error ? e.message : e} at ${at()}`,
      );
      c.close();
      if (Date.now() > deadline || vm.hasExited()) throw e;
    }
  }
}

/** Runs `path args` in the guest through guest-exec and returns its stdout. */
async function guestRun(
  c: QgaRawClient,
  path: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<string> {
  const { pid } = await c.call<{ pid: number }>("guest-exec", {
    path,
    arg: args,
    "capture-output": true,
  }, timeoutMs);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const st = await c.call<{ exited: boolean; exitcode?: number; "out-data"?: string }>(
      "guest-exec-status",
      { pid },
      timeoutMs,
    );
    if (st.exited) {
      assertEquals(st.exitcode, 0, `${path} ${args.join(" ")}`);
      return dec.decode(Uint8Array.fromBase64(st["out-data"] ?? ""));
    }
    assertOk(Date.now() < deadline, `${path} did not exit`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Proxmox's framing: a new connection, 0xFF + guest-sync-delimited + the command in one write. */
async function proxmoxCall(vm: CloudVm, execute: string): Promise<Json> {
  const c = await QgaRawClient.connect(vm.socket);
  try {
    const id = nextId();
    const sync = JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } });
    await c.send(new Uint8Array([0xff, ...enc.encode(sync + JSON.stringify({ execute }))]));
    const deadline = Date.now() + 10_000;
    assertOk(await c.skipToDelimiter(deadline), "EOF before the sync's 0xFF");
    assertEquals(JSON.parse((await c.readLine(10_000)) ?? "null"), { return: id });
    return JSON.parse((await c.readLine(10_000)) ?? "null");
  } finally {
    c.close();
  }
}

/** Shape of a value: objects as sorted key → shape, arrays as the set of their items' shapes. */
function shape(v: Json): Json {
  if (Array.isArray(v)) {
    return [...new Set(v.map((x) => JSON.stringify(shape(x))))].sort().map((s) => JSON.parse(s));
  }
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v).sort().map((k) => [k, shape((v as Record<string, Json>)[k])]),
    );
  }
  return typeof v;
}

/** fsinfo without what changes between boots (usage figures). */
function fsinfoStable(fs: Json[]): Json[] {
  return fs.map((f) => {
    const { "used-bytes": _u, "total-bytes": _t, ...rest } = f as Record<string, Json>;
    return rest;
  }).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Interfaces without counters: name, hardware address, addresses, and the shape of the rest. */
function interfacesStable(ifs: Json[]): Json[] {
  return ifs.map((i) => {
    const { statistics, ...rest } = i as Record<string, Json>;
    return { ...rest, statistics: shape(statistics) };
  });
}

async function scenario(
  image: CloudImage,
  agent: CloudAgent,
  artifact: string | undefined,
  t: Deno.TestContext,
): Promise<Observed | undefined> {
  const vm = await bootCloudGuest(image, agent, artifact);
  const seen: Partial<Observed> = {};
  let client: QgaRawClient | undefined;
  let failed = false;
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const ok = await t.step({ name: `${agent}: ${name}`, ignore: failed, fn });
    if (!ok) failed = true;
  };
  const c = (): QgaRawClient => client!;
  try {
    await step("boot through cloud-init to the first reply", async () => {
      client = await QgaRawClient.connect(vm.socket);
      await syncUntilReady(c(), vm, BOOT_TIMEOUT_MS);
      assertEquals(await c().request("guest-ping"), { return: {} });
      seen.bootSeconds = (performance.now() - vm.startedAt) / 1000;
      console.log(
        `[cloud ${agent}] QEMU start → first reply: ${seen.bootSeconds.toFixed(1)} s`,
      );
    });

    await step("collect replies", async () => {
      const info = await c().call<{ supported_commands: { name: string; enabled: boolean }[] }>(
        "guest-info",
      );
      seen.commands = info.supported_commands.filter((x) => x.enabled).map((x) => x.name).sort();
      assertEquals(SEED_COMMANDS.filter((n) => !seen.commands!.includes(n)), []);
      seen.osinfo = await c().call("guest-get-osinfo");
      seen.hostName = await c().call("guest-get-host-name");
      seen.timezone = await c().call("guest-get-timezone");
      seen.fsinfo = await c().call<Json[]>("guest-get-fsinfo");
      seen.interfaces = await c().call<Json[]>("guest-network-get-interfaces");
      seen.users = await c().call("guest-get-users");
      assertEquals(seen.hostName, { "host-name": CLOUD_HOSTNAME });
    });

    await step(
      "Proxmox framing: a connection per command, sync + command in one write",
      async () => {
        c().close();
        client = undefined;
        seen.proxmox = {};
        for (const cmd of ["guest-ping", "guest-get-host-name", "guest-get-osinfo"]) {
          seen.proxmox[cmd] = await proxmoxCall(vm, cmd);
        }
        assertEquals(seen.proxmox["guest-ping"], { return: {} });
      },
    );

    await step("host disconnects mid-request and reconnects", async () => {
      const half = await QgaRawClient.connect(vm.socket);
      await half.send('{"execute":"guest-get-osi');
      half.close();
      client = await reconnect(vm, 30_000);
      assertEquals(await c().request("guest-ping"), { return: {} });
    });

    await step("systemctl restart of the agent through guest-exec, host reconnects", async () => {
      const unit = CLOUD_UNITS[agent];
      const pidOf = async (): Promise<string> =>
        // A short deadline: a request the dying agent took with it gets no answer at all.
        (await guestRun(
          c(),
          "/usr/bin/systemctl",
          ["show", "-p", "MainPID", "--value", unit],
          3_000,
        ))
          .trim();
      const before = await pidOf();
      assertOk(/^[1-9]\d*$/.test(before), `MainPID before: ${before}`);
      const sentAt = performance.now();
      // The agent may die before its reply to guest-exec leaves; either outcome is fine.
      await c().send(JSON.stringify({
        execute: "guest-exec",
        arguments: { path: "/usr/bin/systemctl", arg: ["restart", unit] },
      }));
      try {
        await c().readLine(2_000);
      } catch (e) {
        if (!(e instanceof ReadTimeout)) throw e;
      }
      c().close();
      client = undefined;
      // Until systemd has stopped it the old agent may still answer, and lose a guest-exec's
      // state between two requests when it dies: ask again on a new connection until the
      // answers come from a new MainPID.
      let after = before;
      let lastError: unknown;
      let attempts = 0;
      const trace = { from: sentAt, lines: [] as string[] };
      const deadline = Date.now() + RESTART_TIMEOUT_MS;
      while (after === before) {
        assertOk(Date.now() < deadline, `${unit} kept MainPID ${before} (${lastError})`);
        client?.close();
        client = undefined;
        try {
          attempts++;
          client = await reconnect(vm, RESTART_TIMEOUT_MS, trace);
          after = await pidOf();
          trace.lines.push(
            `MainPID ${after} at +${((performance.now() - sentAt) / 1000).toFixed(1)} s`,
          );
        } catch (e) {
          lastError = e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      assertEquals(await c().request("guest-ping"), { return: {} });
      seen.restartSeconds = (performance.now() - sentAt) / 1000;
      assertOk(/^[1-9]\d*$/.test(after), `MainPID after: ${after}`);
      const uptime = await guestRun(c(), "/usr/bin/cat", ["/proc/uptime"]);
      const journal = await guestRun(c(), "/usr/bin/journalctl", [
        ...["-u", unit, "-o", "short-monotonic", "--no-pager", "-n", "8"],
      ]);
      console.log(
        `[cloud ${agent}] restart → answering again: ${seen.restartSeconds.toFixed(1)} s ` +
          `(MainPID ${before} → ${after}, ${attempts} attempt(s)):\n  ${
            trace.lines.join("\n  ")
          }\n` +
          `the unit's journal (guest uptime now ${uptime.split(" ")[0]} s):\n${journal.trimEnd()}`,
      );
    });
  } finally {
    client?.close();
    if (failed) {
      console.log(
        `[cloud ${agent}] guest console:\n${vm.console()}\n[cloud ${agent}] QEMU stderr:\n` +
          vm.qemuStderr(),
      );
    }
    await vm.dispose();
  }
  return failed ? undefined : seen as Observed;
}

/**
 * Members only the newer qemu-ga that denoga follows reports (the reference here is Debian's 7.2):
 * fsinfo's `total-bytes-privileged` (qemu-ga 9.x).
 */
const NEWER_FSINFO_MEMBERS = ["total-bytes-privileged"];

function withoutMembers(list: Json[], members: string[]): Json[] {
  return list.map((x) =>
    Object.fromEntries(
      Object.entries(x as Record<string, Json>).filter(([k]) => !members.includes(k)),
    )
  );
}

function compare(ref: Observed, dut: Observed): void {
  const onlyRef = ref.commands.filter((n) => !dut.commands.includes(n));
  const onlyDut = dut.commands.filter((n) => !ref.commands.includes(n));
  console.log(
    `[cloud] guest-info: qemu-ga ${ref.commands.length} enabled, denoga ${dut.commands.length}; ` +
      `only qemu-ga: ${onlyRef.join(" ") || "-"}; only denoga: ${onlyDut.join(" ") || "-"}`,
  );
  console.log(
    `[cloud] boot to first reply: qemu-ga ${ref.bootSeconds.toFixed(1)} s, denoga ` +
      `${dut.bootSeconds.toFixed(1)} s; restart to answers: qemu-ga ` +
      `${ref.restartSeconds.toFixed(1)} s, denoga ${dut.restartSeconds.toFixed(1)} s`,
  );
  const dutFs = withoutMembers(dut.fsinfo, NEWER_FSINFO_MEMBERS);
  const pairs: [string, Json, Json][] = [
    ["guest-get-osinfo", dut.osinfo, ref.osinfo],
    ["guest-get-host-name", dut.hostName, ref.hostName],
    ["guest-get-timezone", dut.timezone, ref.timezone],
    ["guest-get-fsinfo", fsinfoStable(dutFs), fsinfoStable(ref.fsinfo)],
    ["guest-get-fsinfo shapes", shape(dutFs), shape(ref.fsinfo)],
    [
      "guest-network-get-interfaces",
      interfacesStable(dut.interfaces),
      interfacesStable(ref.interfaces),
    ],
    ["guest-get-users", dut.users, ref.users],
    ["Proxmox-framed replies", dut.proxmox, ref.proxmox],
  ];
  const differing = pairs.filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b));
  for (const [what, a, b] of differing) {
    console.log(
      `[cloud] ${what} differs:\n  denoga:  ${JSON.stringify(a)}\n  qemu-ga: ${JSON.stringify(b)}`,
    );
  }
  assertEquals(differing.map(([what]) => what), [], "replies that differ (printed above)");
}

function requirement(what: string, missing: string | undefined): Requirement {
  return { what: missing === undefined ? what : `${what} (${missing})`, present: !missing };
}

const requirements: Requirement[] = [
  requirement("the cloud image's build tools", missingCloudImagePrerequisite()),
  requirement("QEMU and the seed tools", missingCloudBootPrerequisite()),
];

const NAME = "cloud e2e (Debian 12 + cloud-init under QEMU/TCG: qemu-ga vs denoga)";
const policy = realComponents(NAME, requirements);
Deno.test({
  name: NAME,
  ignore: policy.ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    policy.check();
    let image: CloudImage | undefined;
    let artifact: string | undefined;
    await t.step("image: Debian 12 from mmdebstrap, the release artifact disk", async () => {
      image = await buildCloudImage({ log: (m) => console.log(`[cloud] ${m}`) });
      console.log(
        `[cloud] image: ${image.cached ? "reused" : `built in ${image.buildSeconds} s`}, ` +
          `kernel ${image.kernelRelease}, rootfs ${(image.rootfsBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      const a = await artifactDisk();
      artifact = a.path;
      console.log(
        `[cloud] artifact disk: ${a.cached ? "reused" : `built in ${a.buildSeconds.toFixed(1)} s`}`,
      );
    });
    assertOk(image !== undefined && artifact !== undefined, "no image");
    const ref = await scenario(image, "qemu-ga", undefined, t);
    const dut = await scenario(image, "denoga", artifact, t);
    assertOk(ref !== undefined && dut !== undefined, "a boot failed (see its steps)");
    await t.step("compare qemu-ga's and denoga's replies", () => compare(ref, dut));
  },
});

const SCHEMA_NAME = "cloud e2e: the user-data files pass `cloud-init schema`";
const schemaPolicy = realComponents(SCHEMA_NAME, [
  requirement(
    "cloud-init (apt-get install cloud-init)",
    which("cloud-init") ? undefined : "absent",
  ),
]);
Deno.test({
  name: SCHEMA_NAME,
  ignore: schemaPolicy.ignore,
  fn: async () => {
    schemaPolicy.check();
    for (const agent of ["qemu-ga", "denoga"] as const) {
      const file = userDataPath(agent);
      const out = await new Deno.Command(which("cloud-init")!, {
        args: ["schema", "--config-file", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertOk(out.success, `${file}: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`);
    }
  },
});
