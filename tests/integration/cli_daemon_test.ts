/**
 * `-d/--daemonize` with `-f` (§5.1): the parent exits 0 once the child serves, the pidfile holds
 * the child's pid (locked: a second instance cannot take it), the child runs in its own session
 * with cwd `/`, umask 077 and stdio on /dev/null, and SIGTERM removes the pidfile. Channel errors
 * still reach the terminal with exit status 1 (newest qemu-ga daemonizes after channel init).
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { agentCommand, RawClient, withTimeout } from "./harness.ts";

const dec = new TextDecoder();

async function run(args: string[], cwd: string) {
  const argv = agentCommand("denoga", args);
  const out = await withTimeout(
    new Deno.Command(argv[0], { args: argv.slice(1), cwd, stdin: "null" }).output(),
    30_000,
    `denoga ${args.join(" ")}`,
  );
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "-d: parent exits 0, child serves, pidfile locked, SIGTERM removes it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-daemon-" });
    let pid = 0;
    try {
      const sock = `${dir}/sock`;
      const pidfile = `${dir}/qga.pid`;
      const args = ["-d", "-m", "unix-listen", "-p", sock, "-t", dir, "-f", pidfile];
      const r = await run(args, dir);
      assertEquals(r, { code: 0, stdout: "", stderr: "" });
      pid = Number((await Deno.readTextFile(pidfile)).trim());
      assertOk(pid > 0 && alive(pid), `pid ${pid}`);
      assertOk((await Deno.readTextFile(pidfile)).endsWith("\n"));
      assertEquals((await Deno.stat(pidfile)).mode! & 0o777, 0o600);
      const client = await RawClient.connect(sock);
      assertEquals(await client.request('{"execute":"guest-ping"}'), { return: {} });
      client.close();
      // A daemon: own session, cwd /, umask 077, stdio on /dev/null.
      const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
      assertEquals(Number(stat[3]), pid, "session id"); // field 6 (session)
      assertEquals(await Deno.readLink(`/proc/${pid}/cwd`), "/");
      assertOk(/Umask:\s+0077/.test(await Deno.readTextFile(`/proc/${pid}/status`)));
      for (const fd of [0, 1, 2]) {
        assertEquals(await Deno.readLink(`/proc/${pid}/fd/${fd}`), "/dev/null");
      }
      // A second instance cannot take the locked pidfile; the file is left alone.
      const second = await run(
        ["-d", "-m", "unix-listen", "-p", `${dir}/sock2`, "-t", dir, "-f", pidfile],
        dir,
      );
      assertEquals(second.code, 1);
      assertOk(
        /critical: Cannot lock pid file: Resource temporarily unavailable\n$/.test(second.stderr),
        second.stderr,
      );
      assertEquals(Number((await Deno.readTextFile(pidfile)).trim()), pid);
      Deno.kill(pid, "SIGTERM");
      await waitFor(() => !alive(pid), "daemon exit");
      pid = 0;
      let exists = true;
      try {
        await Deno.stat(pidfile);
      } catch {
        exists = false;
      }
      assertEquals(exists, false, "pidfile removed at exit");
    } finally {
      if (pid && alive(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "-d: channel errors reach the terminal and the parent exits 1",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-daemon-" });
    try {
      const r = await run(
        ["-d", "-m", "unix-listen", "-p", `${dir}/no/such/dir/sock`, "-t", dir, "-f", `${dir}/p`],
        dir,
      );
      assertEquals(r.code, 1);
      assertOk(/critical: failed to initialize guest agent channel\n$/.test(r.stderr), r.stderr);
      let exists = true;
      try {
        await Deno.stat(`${dir}/p`);
      } catch {
        exists = false;
      }
      assertEquals(exists, false, "no pidfile");
      const bad = await run(["-d", "-m", "bogus", "-p", "x", "-t", dir, "-f", `${dir}/p`], dir);
      assertEquals(bad.code, 1);
      assertOk(bad.stderr.includes(": critical: unsupported channel method/type: bogus\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
