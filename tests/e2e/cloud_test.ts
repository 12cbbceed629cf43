/**
 * The proof in a real cloud guest: Debian 12 with systemd, udev and cloud-init, built from Debian's
 * packages (scripts/guest/cloud_image.ts), booted twice under QEMU/TCG from throwaway overlays of
 * the same image. Both agents are in the image and started by cloud-init's runcmd at the same
 * point: Debian's qemu-ga (the reference) has its unit masked in the image and the user-data
 * unmasks and starts it; denoga is installed into a copy of the image as an image builder would
 * (`denoga install --root <mounted image> --no-enable` from the release tarball of `deno task
 * release`) and the project's example packaging/cloud-init/user-data-preinstalled.yaml enables and
 * starts it. In the denoga guest the other example, packaging/cloud-init/user-data.yaml, then runs
 * its setup script (fetch the tarball from the host by URL, `denoga install`). Both runs measure
 * QEMU start → first reply and where the guest spent that time, and collect the same replies:
 * guest-info's command list,
 * guest-get-osinfo, -host-name, -timezone, -fsinfo, the member shapes of
 * guest-network-get-interfaces, guest-get-users, Proxmox's framing (a fresh connection per
 * command, 0xFF + guest-sync-delimited and the command in one write), a host that disconnects
 * mid-request and reconnects, `systemctl restart` of the agent through guest-exec, and a guest
 * reboot through the agent's own guest-shutdown (inside the VM; the image has D-Bus, which qemu-ga
 * 7.2's `shutdown -r +0` needs) after which the host, keeping its connection, only resyncs. Then
 * the replies are compared.
 *
 * Needs root, mmdebstrap, qemu-system-x86_64, qemu-img, cloud-localds, genisoimage, mkfs.ext4 and
 * Debian's archive (first build); skipped without them unless `DENOGA_REQUIRE_REAL=1`.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import {
  type Json,
  QgaClient,
  QgaCommandError,
  QgaTimeoutError,
} from "../../lib/client/connection.ts";
import { guestExec } from "../../lib/client/transfer.ts";
import { DEFAULT_PREFIX } from "../../lib/install/args.ts";
import {
  PORT_DEVICE_UNIT,
  UDEV_RULE_PATH,
  udevRuleText,
  UNIT_PATH,
  unitText,
} from "../../lib/install/files.ts";
import { realComponents, type Requirement, SEED_COMMANDS } from "../integration/harness.ts";
import {
  buildCloudImage,
  type CloudImage,
  missingCloudImagePrerequisite,
} from "../../scripts/guest/cloud_image.ts";
import {
  bootCloudGuest,
  CLOUD_HOSTNAME,
  CLOUD_UNITS,
  type CloudAgent,
  cloudRunDir,
  type CloudVm,
  denogaUserData,
  EXAMPLE_USER_DATA,
  exampleSetupScript,
  imageWithDenoga,
  missingCloudBootPrerequisite,
  openPort,
  PREINSTALLED_USER_DATA,
  QEMU_GA_USER_DATA,
  releaseArtifact,
  serveRelease,
  syncUntilReady,
  withLocale,
} from "../fixtures/cloud/vm.ts";
import { which } from "../../scripts/guest/build.ts";

/** Failure guards only: on a loaded machine a TCG boot through cloud-init takes minutes. */
const BOOT_TIMEOUT_MS = 600_000;
const RESTART_TIMEOUT_MS = 60_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Where the time to the first reply went, in guest seconds since the kernel started. */
interface BootTimeline {
  /** QEMU start → the kernel's clock starts (firmware, kernel and initrd loading). */
  beforeKernel: number;
  /** The agent port's device unit became active (udev saw the port). */
  port: number;
  /** cloud-final.service (runcmd) started. */
  cloudFinal: number;
  /** The agent's unit started its process. */
  unitStart: number;
  /** The first reply. */
  firstReply: number;
  /** `systemd-analyze`'s summary, when boot had finished. */
  analyze: string;
  /** The agent unit's journal of this boot. */
  journal: string;
}

/** What one boot observed. */
interface Observed {
  bootSeconds: number;
  timeline: BootTimeline;
  /** `<agent> --version` in the guest: the program's own start-up, seconds. */
  versionSeconds: number;
  commands: string[];
  osinfo: Json;
  hostName: Json;
  timezone: Json;
  fsinfo: Json[];
  interfaces: Json[];
  users: Json;
  proxmox: Record<string, Json>;
  /** `systemctl restart` → the first answer from the new agent (host clock). */
  restartSeconds: number;
  /** The new agent's unit start → that answer (guest clock). */
  restartStartSeconds: number;
  /** The freeze → the first answer of the agent killed 2 s later and started again by systemd. */
  frozenRestartSeconds: number;
  /** guest-shutdown reboot → first reply, and the guest's uptime at that reply. */
  rebootSeconds: number;
  rebootUptime: number;
  /** denoga only: the fetch-by-URL example's setup script (fetch, unpack, install), seconds. */
  fetchInstallSeconds?: number;
}

/** Time since `from` (a `performance.now()`), as the traces print it. */
function elapsed(from: number): string {
  return `+${((performance.now() - from) / 1000).toFixed(1)} s`;
}

/**
 * A fresh connection that answers a sync (the agent may still be restarting); each connection
 * gets up to 10 s. `trace` collects when each connection was made and how it ended.
 */
async function reconnect(
  vm: CloudVm,
  timeoutMs: number,
  trace?: { from: number; lines: string[] },
): Promise<QgaClient> {
  const deadline = Date.now() + timeoutMs;
  const at = (): string => trace ? elapsed(trace.from) : "";
  for (;;) {
    const c = await openPort(vm);
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

/** Runs `path args` in the guest through guest-exec; returns stdout, or throws unless `ok`. */
async function guestRun(
  c: QgaClient,
  path: string,
  args: string[],
  timeoutMs = 30_000,
  ok: (code: number | undefined) => boolean = (code) => code === 0,
): Promise<string> {
  const saved = c.timeoutMs;
  c.timeoutMs = timeoutMs;
  try {
    const r = await guestExec(c, path, args, { maxPollMs: 100 });
    const out = dec.decode(r.stdout);
    assertOk(ok(r.exitcode), `${path} ${args.join(" ")}: exit ${r.exitcode}\n${out}`);
    return out;
  } finally {
    c.timeoutMs = saved;
  }
}

/** The guest's uptime in seconds. */
async function uptime(c: QgaClient): Promise<number> {
  return Number((await guestRun(c, "/usr/bin/cat", ["/proc/uptime"])).split(" ")[0]);
}

/** A unit property that is a monotonic time stamp, in seconds since the kernel started. */
async function monotonic(c: QgaClient, unit: string, property: string): Promise<number> {
  const v = await guestRun(c, "/usr/bin/systemctl", ["show", "-p", property, "--value", unit]);
  return Number(v.trim()) / 1e6;
}

/** The unit's main process id, as systemd reports it (`0` when none runs). */
async function mainPid(c: QgaClient, unit: string, timeoutMs?: number): Promise<string> {
  const args = ["show", "-p", "MainPID", "--value", unit];
  return (await guestRun(c, "/usr/bin/systemctl", args, timeoutMs)).trim();
}

/** Proxmox's framing: a new connection, 0xFF + guest-sync-delimited + the command in one write. */
async function proxmoxCall(vm: CloudVm, execute: string): Promise<Json> {
  const c = await openPort(vm);
  try {
    const id = crypto.getRandomValues(new Uint32Array(1))[0];
    const sync = JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } });
    await c.send(new Uint8Array([0xff, ...enc.encode(sync + JSON.stringify({ execute }))]));
    // Lines before the sync's reply (qemu-ga 7.2 reports the 0xFF as a parse error) are
    // skipped, as Proxmox's reply matching does; the reply follows its 0xFF (read as U+FFFD).
    let first = await c.readLine(10_000);
    while (!first.startsWith("\uFFFD")) first = await c.readLine(10_000);
    assertEquals(JSON.parse(first.slice(1)), { return: id });
    return JSON.parse(await c.readLine(10_000));
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

/** Where the guest spent the time to `firstReplyAt` (host `performance.now()`). */
async function timeline(
  c: QgaClient,
  vm: CloudVm,
  firstReplyAt: number,
): Promise<BootTimeline> {
  const up = await uptime(c);
  const firstReply = up - (performance.now() - firstReplyAt) / 1000;
  return {
    beforeKernel: (firstReplyAt - vm.startedAt) / 1000 - firstReply,
    port: await monotonic(c, PORT_DEVICE_UNIT, "ActiveEnterTimestampMonotonic"),
    cloudFinal: await monotonic(c, "cloud-final.service", "InactiveExitTimestampMonotonic"),
    unitStart: await monotonic(c, CLOUD_UNITS[vm.agent], "ExecMainStartTimestampMonotonic"),
    firstReply,
    // Exits non-zero while boot has not finished (cloud-final may still run).
    analyze: (await guestRun(c, "/usr/bin/systemd-analyze", [], 30_000, () => true)).trim(),
    journal: (await guestRun(c, "/usr/bin/journalctl", [
      ...["-b", "-o", "short-monotonic", "--no-pager", "-u", CLOUD_UNITS[vm.agent]],
    ])).trimEnd(),
  };
}

function formatTimeline(t: BootTimeline): string {
  const s = (x: number) => `${x.toFixed(1)} s`;
  return `before the kernel ${s(t.beforeKernel)}; then (guest clock) port device ${
    s(t.port)
  }, cloud-final ${s(t.cloudFinal)}, unit start ${s(t.unitStart)}, first reply ${
    s(t.firstReply)
  } (unit start → reply ${s(t.firstReply - t.unitStart)}); systemd-analyze: ${
    t.analyze.split("\n")[0]
  }\nthe unit's journal (without per-command lines):\n${
    t.journal.split("\n").filter((l) => !/ called\b/.test(l)).join("\n")
  }`;
}

/** The agent program each run starts (the installed launcher for denoga). */
const AGENT_PROGRAMS: Record<CloudAgent, string> = {
  "qemu-ga": "/usr/sbin/qemu-ga",
  denoga: `${DEFAULT_PREFIX}/sbin/denoga`,
};

/** What the denoga run adds: its image copy and the server of the fetch-by-URL example. */
interface DenogaRun {
  tarball: string;
  url: string;
  requests: () => string[];
}

async function scenario(
  image: CloudImage,
  agent: CloudAgent,
  userData: string,
  t: Deno.TestContext,
  denoga?: DenogaRun,
): Promise<Observed | undefined> {
  const dir = await cloudRunDir(agent);
  let root = image.root;
  if (denoga) {
    try {
      const built = await imageWithDenoga(image, denoga.tarball, dir);
      root = built.root;
      console.log(
        `[cloud denoga] image copy with \`denoga install --root … --no-enable\` in ` +
          `${built.seconds.toFixed(1)} s:\n  ${
            built.installLog.trimEnd().split("\n").join("\n  ")
          }`,
      );
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }
  const vm = await bootCloudGuest(image, agent, userData, dir, root);
  const unit = CLOUD_UNITS[agent];
  const seen: Partial<Observed> = {};
  let client: QgaClient | undefined;
  let failed = false;
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const ok = await t.step({ name: `${agent}: ${name}`, ignore: failed, fn });
    if (!ok) failed = true;
  };
  const c = (): QgaClient => client!;
  try {
    await step("boot through cloud-init to the first reply", async () => {
      client = await openPort(vm);
      await syncUntilReady(c(), vm, BOOT_TIMEOUT_MS);
      const firstReplyAt = performance.now();
      assertEquals(await c().request("guest-ping"), { return: {} });
      seen.bootSeconds = (firstReplyAt - vm.startedAt) / 1000;
      seen.timeline = await timeline(c(), vm, firstReplyAt);
      const version = await guestRun(c(), "/bin/sh", [
        "-c",
        `a=$(date +%s%N); ${AGENT_PROGRAMS[agent]} --version >/dev/null; b=$(date +%s%N); ` +
        "echo $((b - a))",
      ]);
      seen.versionSeconds = Number(version.trim()) / 1e9;
      console.log(
        `[cloud ${agent}] QEMU start → first reply: ${seen.bootSeconds.toFixed(1)} s: ` +
          `${formatTimeline(seen.timeline)}; \`${AGENT_PROGRAMS[agent]} --version\` in the ` +
          `guest: ${seen.versionSeconds.toFixed(2)} s`,
      );
    });

    await step("the agent runs as its systemd unit, enabled and active", async () => {
      const show = async (p: string) =>
        (await guestRun(c(), "/usr/bin/systemctl", ["show", "-p", p, "--value", unit])).trim();
      assertEquals(await show("ActiveState"), "active");
      if (agent === "qemu-ga") return;
      // Installed into the image by `denoga install --root`, enabled by the example user-data.
      assertEquals(await show("UnitFileState"), "enabled");
      assertEquals(await show("FragmentPath"), UNIT_PATH);
      assertEquals(await guestRun(c(), "/usr/bin/cat", [UNIT_PATH]), unitText(DEFAULT_PREFIX));
      assertEquals(await guestRun(c(), "/usr/bin/cat", [UDEV_RULE_PATH]), udevRuleText());
      const wants = await guestRun(c(), "/usr/bin/systemctl", [
        ...["show", "-p", "Wants", "--value", PORT_DEVICE_UNIT],
      ]);
      assertOk(wants.split(/\s+/).includes(unit), `${PORT_DEVICE_UNIT} wants: ${wants}`);
    });

    if (denoga) {
      await step(
        "the fetch-by-URL example's script fetches the release, `denoga install`",
        async () => {
          const script = exampleSetupScript(await Deno.readTextFile(EXAMPLE_USER_DATA), denoga.url);
          const before = await mainPid(c(), unit);
          const started = performance.now();
          const out = await guestRun(c(), "/bin/sh", ["-c", script], 300_000);
          seen.fetchInstallSeconds = (performance.now() - started) / 1000;
          assertEquals(denoga.requests().filter((r) => r.startsWith("GET ")).length, 1);
          // The same release as the image's: every file unchanged, the running agent left alone.
          assertOk(!/^(installed|removed) /m.test(out), out);
          assertOk(out.includes(`unchanged ${UNIT_PATH}`), out);
          assertEquals(await mainPid(c(), unit), before);
          console.log(
            `[cloud denoga] the fetch-by-URL example's script in the guest: ` +
              `${seen.fetchInstallSeconds.toFixed(1)} s (fetch, unpack, \`denoga install\`)`,
          );
        },
      );
    }

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
      const half = await openPort(vm);
      await half.send('{"execute":"guest-get-osi');
      half.close();
      client = await reconnect(vm, 30_000);
      assertEquals(await c().request("guest-ping"), { return: {} });
    });

    await step("systemctl restart of the agent through guest-exec, host reconnects", async () => {
      // A short deadline: a request the dying agent took with it gets no answer at all.
      const before = await mainPid(c(), unit, 3_000);
      assertOk(/^[1-9]\d*$/.test(before), `MainPID before: ${before}`);
      // Which agent answers, told without a guest-exec (the new agent's first one loads its
      // command family): a file handle lives only in the agent that opened it, and both agents
      // number handles on from a counter kept in their state, so a new agent does not know it.
      const handle = await c().call<number>("guest-file-open", { path: "/dev/zero", mode: "r" });
      const answeredByNew = async (): Promise<boolean> => {
        try {
          await c().call("guest-file-seek", { handle, offset: 0, whence: "set" }, 2_000);
          return false;
        } catch (e) {
          if (e instanceof QgaCommandError) return true;
          throw e;
        }
      };
      const sentAt = performance.now();
      // The agent may die before its reply to guest-exec leaves; either outcome is fine.
      await c().send(JSON.stringify({
        execute: "guest-exec",
        arguments: { path: "/usr/bin/systemctl", arg: ["restart", unit] },
      }));
      await c().readLine(2_000).catch(() => {});
      c().close();
      client = undefined;
      // Until systemd has stopped it the old agent may still answer: ask again, on a new
      // connection each time, until the answer comes from a new agent.
      const trace = { from: sentAt, lines: [] as string[] };
      const deadline = Date.now() + RESTART_TIMEOUT_MS;
      let newAt: number | undefined;
      while (newAt === undefined) {
        assertOk(
          Date.now() < deadline,
          `${unit}: no new agent answered:\n${trace.lines.join("\n")}`,
        );
        try {
          client = await reconnect(vm, Math.max(0, deadline - Date.now()), trace);
          if (await answeredByNew()) {
            newAt = performance.now();
            trace.lines.push(`a new agent at ${elapsed(sentAt)}`);
          } else {
            trace.lines.push(`the old agent at ${elapsed(sentAt)}`);
          }
        } catch (e) {
          trace.lines.push(`${e instanceof Error ? e.message : e} at ${elapsed(sentAt)}`);
        }
        if (newAt === undefined) {
          client?.close();
          client = undefined;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      seen.restartSeconds = (newAt - sentAt) / 1000;
      // The new agent's own start, on the guest's clock as for the boot.
      const started = await monotonic(c(), unit, "ExecMainStartTimestampMonotonic");
      const answered = await uptime(c()) - (performance.now() - newAt) / 1000;
      seen.restartStartSeconds = answered - started;
      const after = await mainPid(c(), unit, 3_000);
      assertOk(/^[1-9]\d*$/.test(after) && after !== before, `MainPID ${before} → ${after}`);
      assertEquals(await c().request("guest-ping"), { return: {} });
      console.log(
        `[cloud ${agent}] restart → a new agent answers: ${seen.restartSeconds.toFixed(1)} s ` +
          `(its unit start → reply ${seen.restartStartSeconds.toFixed(1)} s; MainPID ${before} → ` +
          `${after}):\n  ${trace.lines.join("\n  ")}`,
      );
    });

    await step("killed while the guest is frozen, the agent comes back and thaws it", async () => {
      // As a crash would leave it: every filesystem frozen, `/` among them, and systemd
      // starting the agent again. A start that writes to `/` would block, and nothing could
      // thaw the guest any more. The kill is a shell builtin, armed before the freeze.
      const pid = await mainPid(c(), unit, 3_000);
      assertOk(/^[1-9]\d*$/.test(pid), `MainPID: ${pid}`);
      await c().call("guest-exec", { path: "/bin/sh", arg: ["-c", `sleep 2; kill -KILL ${pid}`] });
      const frozen = await c().call<number>("guest-fsfreeze-freeze");
      assertOk(frozen >= 1, `froze ${frozen}`);
      const frozenAt = performance.now();
      // Past the kill: whatever answers now is the new agent.
      await new Promise((r) => setTimeout(r, 2_500));
      c().close();
      client = undefined;
      client = await reconnect(vm, RESTART_TIMEOUT_MS);
      seen.frozenRestartSeconds = (performance.now() - frozenAt) / 1000;
      assertEquals(await c().call("guest-fsfreeze-status"), "frozen");
      assertEquals(await c().call<number>("guest-fsfreeze-thaw"), frozen);
      assertEquals(await c().call("guest-fsfreeze-status"), "thawed");
      const after = await mainPid(c(), unit, 10_000);
      assertOk(/^[1-9]\d*$/.test(after) && after !== pid, `MainPID ${pid} → ${after}`);
      console.log(
        `[cloud ${agent}] killed while frozen (${frozen} filesystem(s)): the new agent ` +
          `answered ${seen.frozenRestartSeconds.toFixed(1)} s after the freeze, reported ` +
          `"frozen" and thawed them (MainPID ${pid} → ${after})`,
      );
    });

    await step(
      "guest reboot by guest-shutdown; the host keeps its connection and resyncs",
      async () => {
        const bootId = (ms: number) =>
          guestRun(c(), "/usr/bin/cat", ["/proc/sys/kernel/random/boot_id"], ms).then((s) =>
            s.trim()
          );
        const before = await bootId(30_000);
        const sentAt = performance.now();
        // On success neither agent replies to guest-shutdown: a reply is its error.
        await c().send(
          JSON.stringify({ execute: "guest-shutdown", arguments: { mode: "reboot" } }),
        );
        const reply = await c().readLine(20_000).catch((e) => {
          if (e instanceof QgaTimeoutError) return undefined;
          throw e;
        });
        assertEquals(reply, undefined, "guest-shutdown answered");
        // Until the old agent is stopped it may still answer: resync until the boot id changes.
        const deadline = Date.now() + BOOT_TIMEOUT_MS;
        let answeredAt = 0;
        let lastError: unknown;
        for (let now = before; now === before;) {
          assertOk(
            Date.now() < deadline && !vm.hasExited(),
            `no answer after reboot (${lastError})`,
          );
          try {
            await syncUntilReady(c(), vm, Math.max(0, deadline - Date.now()));
            answeredAt = performance.now();
            now = await bootId(3_000);
          } catch (e) {
            // The dying agent may time out or lose a guest-exec between two requests.
            lastError = e;
          }
        }
        seen.rebootSeconds = (answeredAt - sentAt) / 1000;
        seen.rebootUptime = (await uptime(c())) - (performance.now() - answeredAt) / 1000;
        assertEquals(await c().request("guest-ping"), { return: {} });
        const state = await guestRun(c(), "/usr/bin/systemctl", [
          ...["show", "-p", "ActiveState", "--value", unit],
        ]);
        assertEquals(state.trim(), "active");
        const started = await monotonic(c(), unit, "ExecMainStartTimestampMonotonic");
        console.log(
          `[cloud ${agent}] guest-shutdown reboot → first reply on the same connection: ` +
            `${seen.rebootSeconds.toFixed(1)} s (guest uptime then ${
              seen.rebootUptime.toFixed(1)
            } s, unit started at ${started.toFixed(1)} s by udev/systemd)`,
        );
      },
    );
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
  const s = (x: number) => `${x.toFixed(1)} s`;
  console.log(
    `[cloud] QEMU start → first reply: qemu-ga ${s(ref.bootSeconds)}, denoga ` +
      `${s(dut.bootSeconds)} (unit start → reply: qemu-ga ` +
      `${s(ref.timeline.firstReply - ref.timeline.unitStart)}, denoga ` +
      `${s(dut.timeline.firstReply - dut.timeline.unitStart)}; cloud-final → unit start: ` +
      `qemu-ga ${s(ref.timeline.unitStart - ref.timeline.cloudFinal)}, denoga ` +
      `${s(dut.timeline.unitStart - dut.timeline.cloudFinal)}); reboot → first reply: ` +
      `qemu-ga ${s(ref.rebootSeconds)} (uptime ${s(ref.rebootUptime)}), denoga ` +
      `${s(dut.rebootSeconds)} (uptime ${
        s(dut.rebootUptime)
      }); restart → a new agent answers: qemu-ga ` +
      `${s(ref.restartSeconds)} (its unit start → reply ${s(ref.restartStartSeconds)}), denoga ` +
      `${s(dut.restartSeconds)} (${s(dut.restartStartSeconds)}); killed while frozen → a new ` +
      `agent answers: qemu-ga ${s(ref.frozenRestartSeconds)}, denoga ` +
      `${s(dut.frozenRestartSeconds)}; --version in the guest: ` +
      `qemu-ga ${ref.versionSeconds.toFixed(2)} s, denoga ${dut.versionSeconds.toFixed(2)} s; ` +
      `the fetch-by-URL example's script (fetch, unpack, install): ` +
      `${s(dut.fetchInstallSeconds ?? NaN)}`,
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
    let release: string | undefined;
    await t.step("image: Debian 12 from mmdebstrap; the release tarball", async () => {
      image = await buildCloudImage({ log: (m) => console.log(`[cloud] ${m}`) });
      console.log(
        `[cloud] image: ${image.cached ? "reused" : `built in ${image.buildSeconds} s`}, ` +
          `kernel ${image.kernelRelease}, rootfs ${(image.rootfsBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      const r = await releaseArtifact();
      release = r.path;
      console.log(
        `[cloud] release ${r.path}: ${
          r.cached ? "reused" : `built in ${r.buildSeconds.toFixed(1)} s`
        }, ${((await Deno.stat(r.path)).size / 2 ** 20).toFixed(0)} MiB`,
      );
    });
    assertOk(image !== undefined && release !== undefined, "no image");
    const ref = await scenario(image, "qemu-ga", await Deno.readTextFile(QEMU_GA_USER_DATA), t);
    const server = serveRelease(release);
    let dut: Observed | undefined;
    try {
      const userData = withLocale(await Deno.readTextFile(PREINSTALLED_USER_DATA));
      dut = await scenario(image, "denoga", userData, t, {
        tarball: release,
        url: server.url,
        requests: () => server.requests,
      });
    } finally {
      await server.close();
    }
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
    const denoga = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      const example = await Deno.readTextFile(EXAMPLE_USER_DATA);
      await Deno.writeTextFile(denoga, denogaUserData(example, "http://10.0.2.2:8000/x.tar.gz"));
      for (const file of [QEMU_GA_USER_DATA, PREINSTALLED_USER_DATA, denoga]) {
        const out = await new Deno.Command(which("cloud-init")!, {
          args: ["schema", "--config-file", file],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assertOk(out.success, `${file}: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`);
      }
    } finally {
      await Deno.remove(denoga);
    }
  },
});
