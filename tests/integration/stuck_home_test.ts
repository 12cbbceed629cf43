/**
 * "Never deaf": a user whose home directory stops answering. The home is a bindfs (FUSE) mount
 * whose daemon is stopped with SIGSTOP, as a hung NFS server or a wedged FUSE daemon would leave
 * it; guest-ssh-get-authorized-keys for that user then blocks in open(2) until the daemon runs
 * again.
 *
 * qemu-ga goes deaf for that whole time (its one thread is in the kernel). denoga keeps reading:
 * after the host resyncs with 0xFF + guest-sync-delimited the stuck request is left behind and
 * the sync and a ping are answered at once (README, "Safer while frozen").
 *
 * The daemon is always continued (SIGCONT) before the unmount: a process blocked on a stopped
 * FUSE daemon cannot be killed, and neither can the unmount.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { run } from "../fixtures/loopfs.ts";
import { canManageUsers, createThrowawayUser, throwawayName } from "../fixtures/users/throwaway.ts";
import {
  type Impl,
  needQemuGaNewest,
  needRoot,
  RawClient,
  realTest,
  type Requirement,
  startAgent,
} from "./harness.ts";

const dec = new TextDecoder("latin1");
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStuck stuck@host";

function hasBindfs(): boolean {
  for (const p of ["/usr/bin/bindfs", "/dev/fuse"]) {
    try {
      Deno.statSync(p);
    } catch {
      return false;
    }
  }
  return true;
}

const reqs: Requirement[] = [
  needQemuGaNewest(),
  needRoot(),
  { what: "useradd/userdel", present: canManageUsers() },
  { what: "bindfs and /dev/fuse", present: hasBindfs() },
];

/** Reads reply lines until one contains `fragment`; returns every line read. */
async function readUntil(c: RawClient, fragment: string, timeoutMs: number): Promise<string[]> {
  const lines: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no reply containing ${fragment} (got ${lines.join(" | ")})`);
    const line = dec.decode(await c.recvLine(left)).replace(/^\xff/, "<FF>");
    lines.push(line);
    if (line.includes(fragment)) return lines;
  }
}

async function isMounted(path: string): Promise<boolean> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  return info.split("\n").some((l) => l.split(" ")[4] === path);
}

async function stuckHomeScenario(impl: Impl): Promise<string[]> {
  const transcript: string[] = [];
  const base = await Deno.makeTempDir({ prefix: "denoga-stuck-home-" });
  const backing = `${base}/backing`;
  const mnt = `${base}/mnt`;
  await Deno.mkdir(`${backing}/.ssh`, { recursive: true });
  await Deno.writeTextFile(`${backing}/.ssh/authorized_keys`, `${KEY}\n`);
  await Deno.mkdir(mnt);
  const user = await createThrowawayUser(throwawayName(), mnt);
  const bindfs = new Deno.Command("bindfs", {
    args: ["-f", backing, mnt],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let stopped = false;
  try {
    for (let i = 0; !(await isMounted(mnt)); i++) {
      if (i > 500) throw new Error("bindfs did not mount");
      await new Promise((r) => setTimeout(r, 10));
    }
    const agent = await startAgent({ impl, newest: true });
    const c = await RawClient.connect(agent.socketPath);
    const get = (id: string) =>
      `{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"${user.name}"},"id":"${id}"}`;
    try {
      await c.send(get("ok"));
      transcript.push(`# before: ${(await readUntil(c, '"id": "ok"', 10_000)).at(-1)}`);
      Deno.kill(bindfs.pid, "SIGSTOP");
      stopped = true;
      await c.send(get("stuck"));
      // The host gives up on the request and resyncs, then checks the agent is alive.
      const t0 = Date.now();
      await c.send(`\xff{"execute":"guest-sync-delimited","arguments":{"id":4242}}`);
      await c.send(`{"execute":"guest-ping","id":"p"}`);
      try {
        transcript.push(...await readUntil(c, '"id": "p"', 3_000));
        transcript.push(`# answered within 2 s: ${Date.now() - t0 < 2_000}`);
      } catch {
        transcript.push("# deaf while the home directory is stuck");
      }
      Deno.kill(bindfs.pid, "SIGCONT");
      stopped = false;
      await c.send(`{"execute":"guest-ping","id":"after"}`);
      transcript.push(`# after release: ${(await readUntil(c, '"id": "after"', 30_000)).at(-1)}`);
    } finally {
      if (stopped) Deno.kill(bindfs.pid, "SIGCONT");
      stopped = false;
      c.close();
      await agent.stop();
    }
  } finally {
    if (stopped) Deno.kill(bindfs.pid, "SIGCONT");
    await run("fusermount", ["-u", mnt]).catch(() => {});
    await bindfs.status;
    await user.remove();
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
  return transcript;
}

realTest(
  "a home directory on a stopped FUSE daemon: denoga answers a resync at once",
  reqs,
  async () => {
    const t = await stuckHomeScenario("denoga");
    // The stuck request's reply and the parse-error reply queued behind it were left behind.
    assertEquals(t, [
      `# before: {"return": {"keys": ["${KEY}"]}, "id": "ok"}`,
      '<FF>{"return": 4242}',
      '{"return": {}, "id": "p"}',
      "# answered within 2 s: true",
      '# after release: {"return": {}, "id": "after"}',
    ]);
  },
);

realTest(
  "a home directory on a stopped FUSE daemon: qemu-ga goes deaf (the contrast)",
  reqs,
  async () => {
    const t = await stuckHomeScenario("qemu-ga");
    assertEquals(t[0], `# before: {"return": {"keys": ["${KEY}"]}, "id": "ok"}`);
    assertEquals(t[1], "# deaf while the home directory is stuck");
    // Once the daemon runs again, qemu-ga works through the backlog.
    assertOk(t[2].includes('"id": "after"'), t[2]);
  },
);
