/**
 * systemd socket activation (§5.1) end to end: `systemd-socket-activate` (systemd's own test
 * launcher) binds the listening socket, execs a child as fd 3 with LISTEN_FDS/LISTEN_PID set, and
 * the child runs the channel code of lib/channels/mod.ts on it. One client at a time, each echoed
 * back, LISTEN_* removed from the child's environment; two fds are counted (main refuses them
 * with `qemu-ga only supports listening on one socket`); a TCP fd is `unsupported listen fd type`.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { requireReal } from "../fixtures/loopfs.ts";

const MOD = new URL("../../lib/channels/mod.ts", import.meta.url).href;
const LISTEN = new URL("../../lib/channels/listen_fd.ts", import.meta.url).href;

const CHILD = `
import { FIRST_SOCKET_ACTIVATION_FD, openChannel, socketActivation } from "${MOD}";
import { listenFdMethod } from "${LISTEN}";
const n = await socketActivation();
const method = listenFdMethod(FIRST_SOCKET_ACTIVATION_FD);
console.log(JSON.stringify({ n, method, env: Deno.env.get("LISTEN_FDS") ?? null }));
// main.ts refuses more than one fd ("qemu-ga only supports listening on one socket").
if (n !== 1) Deno.exit(0);
const log = { critical: console.error, warning: console.error, info: console.error };
let ch;
try {
  ch = await openChannel({ method: "virtio-serial", listenFd: FIRST_SOCKET_ACTIVATION_FD, log });
} catch (e) {
  console.log(JSON.stringify({ error: e.message }));
  Deno.exit(1);
}
for (let i = 0; i < 2; i++) {
  const c = await ch.accept();
  if (!c) break;
  const buf = new Uint8Array(100);
  for (let r; (r = await c.read(buf)) !== null;) await c.writeAll(buf.slice(0, r));
  c.close();
}
ch.close();
console.log(JSON.stringify({ done: true }));
`;

function haveActivate(): boolean {
  try {
    return new Deno.Command("systemd-socket-activate", { args: ["--help"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Launches the child under systemd-socket-activate listening on `listen` (one or more). */
function launch(dir: string, listen: string[]): Deno.ChildProcess {
  const child = `${dir}/child.ts`;
  Deno.writeTextFileSync(child, CHILD);
  return new Deno.Command("systemd-socket-activate", {
    args: [...listen.flatMap((l) => ["-l", l]), Deno.execPath(), "run", "-A", child],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function waitForFile(path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`${path} never appeared`);
}

async function echo(path: string, text: string): Promise<string> {
  const c = await Deno.connect({ transport: "unix", path });
  await c.write(new TextEncoder().encode(text));
  await c.closeWrite();
  let out = "";
  const buf = new Uint8Array(100);
  for (let n; (n = await c.read(buf)) !== null;) {
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
  c.close();
  return out;
}

function lines(out: Uint8Array): Record<string, unknown>[] {
  return new TextDecoder().decode(out).trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test({
  name: "socket activation: an inherited unix listener is served one client at a time",
  // Needs systemd's launcher (Debian: package systemd; .ci/run installs it if missing).
  ignore: !haveActivate() && !requireReal(),
  async fn() {
    const dir = Deno.makeTempDirSync();
    const sock = `${dir}/qga.sock`;
    const proc = launch(dir, [sock]);
    await waitForFile(sock);
    assertEquals(await echo(sock, '{"execute":"guest-ping"}'), '{"execute":"guest-ping"}');
    assertEquals(await echo(sock, "second"), "second");
    const out = await proc.output();
    assertEquals(lines(out.stdout), [
      { n: 1, method: "unix-listen", env: null },
      { done: true },
    ], new TextDecoder().decode(out.stderr));
    Deno.removeSync(dir, { recursive: true });
  },
});

Deno.test({
  name: "socket activation: two fds are counted; a TCP fd is an unsupported listen fd type",
  ignore: !haveActivate() && !requireReal(),
  async fn() {
    const dir = Deno.makeTempDirSync();
    const a = `${dir}/a.sock`;
    let proc = launch(dir, [a, `${dir}/b.sock`]);
    await waitForFile(a);
    const c = await Deno.connect({ transport: "unix", path: a });
    c.close();
    let out = await proc.output();
    const first = lines(out.stdout)[0];
    assertEquals(first.n, 2);

    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    proc = launch(dir, [`127.0.0.1:${port}`]);
    let conn: Deno.Conn | undefined;
    for (let i = 0; i < 200 && conn === undefined; i++) {
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    assertOk(conn);
    out = await proc.output();
    conn.close();
    assertEquals(lines(out.stdout), [
      { n: 1, method: null, env: null },
      { error: "unsupported listen fd type" },
    ]);
    assertEquals(out.code, 1);
    Deno.removeSync(dir, { recursive: true });
  },
});
