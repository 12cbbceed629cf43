/**
 * guest-get-osinfo, guest-get-users and guest-get-timezone keep their parsed files between polls
 * while inotify says nothing changed (lib/platform/watch.ts). This drives every way those files
 * change — rewritten in place, replaced by rename, a symlink retargeted, deleted, created, a
 * bind mount over the file, a tmpfs over its directory — and asks denoga and the newest qemu-ga
 * (which reads os-release and utmp anew each time, and the zone when the name /etc/localtime
 * stands for changes) after each change: the replies must be the same, and change exactly where
 * qemu-ga's do.
 *
 * Each agent runs in a private mount namespace of its own (`unshare -m`), so the mounts are the
 * test's: utmp is a tmpfs laid over `/run` in that namespace, written through /proc/PID/root,
 * and `/etc` a directory of the test's holding only `localtime`, a symlink into the test's own
 * `zoneinfo/`. (With TZ set, GLib loads the zone once and keeps it while TZ stays the same, so
 * qemu-ga never sees a zone file change then; tests/unit/host_test.ts covers that.)
 */

import { assertEquals, assertOk } from "../assert.ts";
import {
  type Agent,
  type Impl,
  type Json,
  needLoop,
  needQemuGaNewest,
  needRoot,
  RawClient,
  realTest,
  startAgent,
} from "./harness.ts";
import { utmpBytes } from "../fixtures/utmp/build.ts";
import { utmpLayout } from "../../lib/system/utmp.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const enc = new TextEncoder();
const USER_PROCESS = 7;

async function sh(...argv: string[]): Promise<void> {
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Runs `argv` in the agent's mount namespace. */
const inNamespace = (a: Agent, ...argv: string[]) =>
  sh("nsenter", "-t", String(a.proc.pid), "-m", "--", ...argv);

/** One agent of a side-by-side pair, with its connection. */
interface Side {
  agent: Agent;
  client: RawClient;
}

/**
 * Starts qemu-ga 10.2.50 and denoga, each in a private mount namespace with a tmpfs /run of its
 * own that `prepare` then finishes, and connects to both; they go into `into` as they start, so
 * {@link stopBoth} can stop whatever started.
 */
async function startBoth(
  into: Map<Impl, Side>,
  prepare: (a: Agent) => Promise<void>,
  env?: Record<string, string>,
): Promise<void> {
  for (const impl of ["qemu-ga", "denoga"] as const) {
    const agent = await startAgent({
      impl,
      newest: true,
      ...(env ? { env } : {}),
      wrap: ["unshare", "-m", "--propagation", "private"],
    });
    await inNamespace(agent, "mount", "-t", "tmpfs", "denoga-test", "/run");
    await prepare(agent);
    into.set(impl, { agent, client: await RawClient.connect(agent.socketPath) });
  }
}

async function stopBoth(agents: Map<Impl, Side>): Promise<void> {
  for (const { agent, client } of agents.values()) {
    client.close();
    await agent.stop();
  }
}

async function eachAgent(agents: Map<Impl, Side>, fn: (a: Agent) => Promise<void>) {
  for (const { agent } of agents.values()) await fn(agent);
}

/**
 * A test's steps: each makes a change, then `ask` answers for both agents; the answer must
 * differ from the last one, or with `changes` false stay the same (GLib keeps what it loaded).
 */
function stepper(ask: () => Promise<string>, first: string) {
  const s = {
    last: first,
    async step(what: string, change: () => Promise<void>, changes = true): Promise<void> {
      await change();
      const answer = await ask();
      assertOk((answer !== s.last) === changes, `${what}: the replies changed: ${!changes}`);
      s.last = answer;
    },
  };
  return s;
}

const osRelease = (name: string) => enc.encode(`ID=${name}\nNAME="${name} linux"\nVERSION_ID=1\n`);

function utmp(users: string[]): Uint8Array {
  return utmpBytes(
    utmpLayout(Deno.build.arch),
    users.map((user, i) => ({ type: USER_PROCESS, user, sec: 1_700_000_000 + i, usec: 0 })),
  );
}

realTest(
  "change cache: osinfo, users and timezone follow every change as qemu-ga does",
  [needRoot(), needQemuGaNewest()],
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-change-" });
    const release = `${dir}/os-release`;
    await Deno.writeFile(release, osRelease("first"));
    const zones = `${dir}/zoneinfo`;
    for (const zone of ["Europe_Berlin", "Asia_Kolkata"]) {
      await Deno.mkdir(`${zones}/${zone.split("_")[0]}`, { recursive: true });
      await Deno.copyFile(`${FIXTURES}/tzif/${zone}`, `${zones}/${zone.replace("_", "/")}`);
    }
    await Deno.mkdir(`${dir}/etc`);
    await Deno.symlink(`${zones}/Europe/Berlin`, `${dir}/etc/localtime`);
    const agents = new Map<Impl, Side>();
    try {
      // An empty utmp on the namespace's own /run, and the test's /etc.
      await startBoth(
        agents,
        (agent) => inNamespace(agent, "mount", "--bind", `${dir}/etc`, "/etc"),
        { QGA_OS_RELEASE: release },
      );
      const ask = async () => {
        const replies = new Map<Impl, Json[]>();
        for (const [impl, { client }] of agents) {
          const got: Json[] = [];
          for (const cmd of ["guest-get-osinfo", "guest-get-users", "guest-get-timezone"]) {
            // Twice: the second answer comes from the cache where there is one.
            await client.request(`{"execute":"${cmd}"}`);
            got.push(await client.request(`{"execute":"${cmd}"}`));
          }
          replies.set(impl, got);
        }
        assertEquals(replies.get("denoga"), replies.get("qemu-ga"));
        return JSON.stringify(replies.get("denoga"));
      };
      const { step } = stepper(ask, await ask());
      await step("rewritten in place", () => Deno.writeFile(release, osRelease("second")));
      await step("replaced by rename", async () => {
        await Deno.writeFile(`${dir}/new`, osRelease("third"));
        await Deno.rename(`${dir}/new`, release);
      });
      await step("made a symlink", async () => {
        await Deno.writeFile(`${dir}/a`, osRelease("link-a"));
        await Deno.writeFile(`${dir}/b`, osRelease("link-b"));
        await Deno.remove(release);
        await Deno.symlink(`${dir}/a`, release);
      });
      await step("symlink retargeted", async () => {
        await Deno.symlink(`${dir}/b`, `${dir}/link`);
        await Deno.rename(`${dir}/link`, release);
      });
      await step(
        "symlink target rewritten",
        () => Deno.writeFile(`${dir}/b`, osRelease("link-b2")),
      );
      await step("bind mount over the file", async () => {
        await Deno.writeFile(`${dir}/mounted`, osRelease("mounted"));
        await eachAgent(
          agents,
          (a) => inNamespace(a, "mount", "--bind", `${dir}/mounted`, release),
        );
      });
      await step("unmounted", () => eachAgent(agents, (a) => inNamespace(a, "umount", release)));
      await step("deleted", () => Deno.remove(release));
      await step("created", () => Deno.writeFile(release, osRelease("again")));
      await step("utmp created", async () => {
        await eachAgent(
          agents,
          (a) => Deno.writeFile(`/proc/${a.proc.pid}/root/run/utmp`, utmp(["ann"])),
        );
      });
      await step("utmp appended", async () => {
        await eachAgent(
          agents,
          (a) => Deno.writeFile(`/proc/${a.proc.pid}/root/run/utmp`, utmp(["ann", "bob"])),
        );
      });
      await step(
        "utmp under a new tmpfs",
        () =>
          eachAgent(agents, (a) => inNamespace(a, "mount", "-t", "tmpfs", "denoga-test2", "/run")),
      );
      await step("localtime retargeted", async () => {
        await Deno.symlink(`${zones}/Asia/Kolkata`, `${dir}/etc/localtime.new`);
        await Deno.rename(`${dir}/etc/localtime.new`, `${dir}/etc/localtime`);
      });
      // GLib reloads the local zone only when the name /etc/localtime stands for changes.
      await step("zone file rewritten", async () => {
        const data = await Deno.readFile(`${FIXTURES}/tzif/America_New_York`);
        await Deno.writeFile(`${zones}/Asia/Kolkata`, data);
      }, false);
      await step("zone file replaced", async () => {
        await Deno.copyFile(`${FIXTURES}/tzif/Australia_Sydney`, `${dir}/zone.new`);
        await Deno.rename(`${dir}/zone.new`, `${zones}/Asia/Kolkata`);
      }, false);
      await step("localtime retargeted to another name", async () => {
        await Deno.mkdir(`${zones}/Australia`);
        await Deno.copyFile(`${FIXTURES}/tzif/Australia_Sydney`, `${zones}/Australia/Sydney`);
        await Deno.symlink(`${zones}/Australia/Sydney`, `${dir}/etc/localtime.new`);
        await Deno.rename(`${dir}/etc/localtime.new`, `${dir}/etc/localtime`);
      });
      await step("localtime a plain file, no /etc/timezone: UTC", async () => {
        await Deno.remove(`${dir}/etc/localtime`);
        await Deno.copyFile(`${FIXTURES}/tzif/Asia_Kolkata`, `${dir}/etc/localtime`);
      });
      await step(
        "and /etc/timezone names it",
        () => Deno.writeFile(`${dir}/etc/timezone`, enc.encode("Asia/Kolkata\n")),
      );
    } finally {
      await stopBoth(agents);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** `major:minor` of the filesystem mounted at `/`, from the test's own mount table. */
async function rootDevice(): Promise<string> {
  for (const line of (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")) {
    const f = line.split(" ");
    if (f[4] === "/") return f[2];
  }
  throw new Error("no / in /proc/self/mountinfo");
}

/** Whether the device at `/sys/dev/block/<dev>` is a real one (qemu-ga reads its udev entry). */
async function isRealDevice(dev: string): Promise<boolean> {
  return !(await Deno.readLink(`/sys/dev/block/${dev}`)).includes("/devices/virtual/");
}

const rootIsReal = await rootDevice().then(isRealDevice, () => false);

realTest(
  "change cache: fsinfo follows a udev database change announced by a uevent, and mounts",
  [needRoot(), needQemuGaNewest(), {
    what: "/ on a real block device (its udev entry is reported)",
    present: rootIsReal,
  }, ...needLoop(["ext4"])],
  async () => {
    const dev = await rootDevice();
    const dir = await Deno.makeTempDir({ prefix: "denoga-change-fsinfo-" });
    const image = `${dir}/fs.img`;
    await sh("truncate", "-s", "4M", image);
    await sh("mkfs.ext4", "-q", "-F", image);
    await Deno.mkdir(`${dir}/mnt`);
    const agents = new Map<Impl, Side>();
    try {
      // A udev database of the namespace's own: /run/udev/data on its tmpfs.
      await startBoth(agents, (agent) => inNamespace(agent, "mkdir", "-p", "/run/udev/data"));
      const ask = async () => {
        const replies = new Map<Impl, Json>();
        for (const [impl, { client }] of agents) {
          // Twice: the second answer comes from the cache where there is one.
          await client.request(`{"execute":"guest-get-fsinfo"}`);
          replies.set(impl, await client.request(`{"execute":"guest-get-fsinfo"}`));
        }
        // Sizes of live filesystems move between two requests: compare the rest.
        const shape = (r: Json | undefined) =>
          JSON.stringify(r, (k, v) => k.endsWith("-bytes") ? undefined : v);
        assertEquals(shape(replies.get("denoga")), shape(replies.get("qemu-ga")));
        return shape(replies.get("denoga"));
      };
      const udevEntry = (a: Agent) => `/proc/${a.proc.pid}/root/run/udev/data/b${dev}`;
      // Tells every uevent listener that the root disk changed, as udevd's `change` does.
      const announce = () => Deno.writeTextFile(`/sys/dev/block/${dev}/uevent`, "change");
      const steps = stepper(ask, await ask());
      const { step } = steps;
      await step("udev entry written, then announced", async () => {
        await eachAgent(
          agents,
          (a) => Deno.writeTextFile(udevEntry(a), "E:ID_SERIAL=denoga-test-serial\n"),
        );
        await announce();
      });
      assertOk(steps.last.includes('"serial":"denoga-test-serial"'), steps.last);
      await step("a loop filesystem mounted", async () => {
        await eachAgent(
          agents,
          (a) => inNamespace(a, "mount", "-o", "loop,ro", image, `${dir}/mnt`),
        );
      });
      assertOk(steps.last.includes(`"mountpoint":"${dir}/mnt"`), steps.last);
      await step("unmounted", async () => {
        await eachAgent(agents, (a) => inNamespace(a, "umount", `${dir}/mnt`));
      });
      await step("udev entry removed, then announced", async () => {
        await eachAgent(agents, (a) => Deno.remove(udevEntry(a)));
        await announce();
      });
      assertOk(!steps.last.includes("denoga-test-serial"), steps.last);
    } finally {
      await stopBoth(agents);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
