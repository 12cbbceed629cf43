/**
 * `denoga client` (lib/client) against real agents on a unix socket: denoga, and the newest
 * qemu-ga for the handshake and the same subcommands (the client must work with both). The
 * handshake's skipping of stale input and foreign ids is checked against a scripted peer.
 */

import assert from "node:assert/strict";
import { assertEquals } from "../assert.ts";
import { QgaClient, QgaCommandError, QgaTimeoutError } from "../../lib/client/connection.ts";
import { readGuestText } from "../../lib/client/transfer.ts";
import { agentUsage, parseStatCpuTicks, parseStatusRssKiB } from "../../lib/client/usage.ts";
import { AGENT_RUN_FLAGS } from "../../scripts/agent_flags.ts";
import { hasLoopSupport, withLoopFs } from "../fixtures/loopfs.ts";
import {
  type Impl,
  isRoot,
  needQemuGaNewest,
  realTest,
  REPO_ROOT,
  type Requirement,
  startAgent,
} from "./harness.ts";

const dec = new TextDecoder();

function assertIncludes(text: string, part: string): void {
  assert.ok(text.includes(part), `${JSON.stringify(text)} lacks ${JSON.stringify(part)}`);
}

interface Run {
  code: number;
  stdout: Uint8Array<ArrayBuffer>;
  out: string;
  err: string;
}

/** Runs `main.ts client ARGS` as a host would. */
async function client(args: string[], stdin?: Uint8Array): Promise<Run> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", ...AGENT_RUN_FLAGS, `${REPO_ROOT}/main.ts`, "client", ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  const proc = cmd.spawn();
  if (stdin) {
    const w = proc.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const r = await proc.output();
  return { code: r.code, stdout: r.stdout, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b)).toHex();
}

const IMPLS: { impl: Impl; newest: boolean; reqs: Requirement[] }[] = [
  { impl: "denoga", newest: false, reqs: [] },
  { impl: "qemu-ga", newest: true, reqs: [needQemuGaNewest()] },
];

for (const { impl, newest, reqs } of IMPLS) {
  const name = newest ? "qemu-ga 10.2.50" : impl;

  realTest(
    `client (${name}): raw commands, ping, info, osinfo, ifconfig, fsinfo`,
    reqs,
    async () => {
      const agent = await startAgent({ impl, newest });
      try {
        const s = ["--socket", agent.socketPath];
        assertEquals((await client([...s, "ping"])).code, 0);
        // An id beyond 2^53 comes back digit for digit.
        const sync = await client([...s, "guest-sync", '{"id": 1234567890123456789}']);
        assertEquals([sync.code, sync.out, sync.err], [0, "1234567890123456789\n", ""]);

        const info = await client([...s, "info"]);
        assertEquals(info.code, 0, info.err);
        assert.match(info.out, /^version: \d+\.\d+\.\d+\nCOMMAND +ENABLED +SUCCESS-RESPONSE\n/);
        assert.match(info.out, /\nguest-ping +yes +yes\n/);
        const infoJson = JSON.parse((await client([...s, "--json", "info"])).out);
        assertEquals(info.out.split("\n")[0], `version: ${infoJson.version}`);

        const os = JSON.parse((await client([...s, "--json", "osinfo"])).out);
        const osTable = await client([...s, "osinfo"]);
        assert.match(osTable.out, new RegExp(`^id: +${os.id}$`, "m"));

        const ifs = JSON.parse((await client([...s, "--json", "ifconfig"])).out);
        const ifTable = (await client([...s, "ifconfig"])).out;
        assert.match(ifTable, /^INTERFACE +HARDWARE-ADDRESS +TYPE +ADDRESS\n/);
        assert.match(ifTable, /^lo +\S+ +ipv4 +127\.0\.0\.1\/8$/m);
        assert.ok(ifs.some((i: { name: string }) => i.name === "lo"));

        const fs = JSON.parse((await client([...s, "--json", "fsinfo"])).out);
        const fsTable = (await client([...s, "fsinfo"])).out;
        assert.match(fsTable, /^MOUNTPOINT +TYPE +DEVICE +USED +TOTAL +DISKS\n/);
        // Other mounts may come and go between the two calls (parallel tests); / stays.
        const root = fs.find((f: { mountpoint: string }) => f.mountpoint === "/");
        assert.match(fsTable, new RegExp(`^/ +${root.type} +${root.name} `, "m"));
      } finally {
        await agent.stop();
      }
    },
  );

  realTest(
    `client (${name}): exec prints output and exits with the guest's code`,
    reqs,
    async () => {
      const agent = await startAgent({ impl, newest });
      try {
        const s = ["--socket", agent.socketPath];
        const ok = await client([...s, "exec", "sh", "-c", "printf 'a\\nb'; echo oops >&2"]);
        assertEquals([ok.code, ok.out, ok.err], [0, "a\nb", "oops\n"]);
        const three = await client([...s, "exec", "sh", "-c", "exit 3"]);
        assertEquals([three.code, three.out, three.err], [3, "", ""]);
        const killed = await client([...s, "exec", "sh", "-c", "kill -9 $$"]);
        assertEquals(killed.code, 128 + 9);
        // Options after the program belong to it.
        const ls = await client([...s, "exec", "ls", "-d", "/"]);
        assertEquals([ls.code, ls.out], [0, "/\n"]);
      } finally {
        await agent.stop();
      }
    },
  );

  realTest(`client (${name}): put and cat round-trip 10 MiB of random bytes`, reqs, async () => {
    const agent = await startAgent({ impl, newest });
    const dir = await Deno.makeTempDir({ prefix: "denoga-client-" });
    try {
      const s = ["--socket", agent.socketPath];
      const data = new Uint8Array(10 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 65536) {
        crypto.getRandomValues(data.subarray(i, i + 65536));
      }
      await Deno.writeFile(`${dir}/src`, data);
      const put = await client([...s, "put", `${dir}/src`, `${dir}/guest`]);
      assertEquals([put.code, put.err], [0, ""]); // no progress bar when stderr is no tty
      assertEquals(await sha256(await Deno.readFile(`${dir}/guest`)), await sha256(data));
      const cat = await client([...s, "cat", `${dir}/guest`]);
      assertEquals([cat.code, cat.err], [0, ""]);
      assertEquals(cat.stdout.length, data.length);
      assertEquals(await sha256(cat.stdout), await sha256(data));
      // stdin as the source
      const small = new TextEncoder().encode("from stdin\n");
      assertEquals((await client([...s, "put", "-", `${dir}/stdin`], small)).code, 0);
      assertEquals(await Deno.readTextFile(`${dir}/stdin`), "from stdin\n");
      const missing = await client([...s, "cat", `${dir}/absent`]);
      assertEquals(missing.code, 1);
      assert.match(missing.err, /^denoga client: guest-file-open: .*absent.*\n$/);
    } finally {
      await agent.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  const loop = isRoot() && hasLoopSupport(["ext4"]);
  realTest(
    `client (${name}): freeze, status and thaw a loop-mounted ext4`,
    [...reqs, { what: "root and loop devices", present: loop }],
    async () => {
      const agent = await startAgent({ impl, newest });
      try {
        const s = ["--socket", agent.socketPath];
        await withLoopFs("ext4", async (mnt) => {
          const frozen = await client([...s, "freeze", mnt]);
          try {
            assertEquals([frozen.code, frozen.out], [0, "frozen 1 filesystem(s)\n"], frozen.err);
            assertEquals((await client([...s, "status"])).out, "frozen\n");
          } finally {
            // Thaw counts every frozen filesystem of the host, parallel tests' ones too.
            const thawed = await client([...s, "thaw"]);
            assertEquals(thawed.code, 0, thawed.err);
            assert.match(thawed.out, /^thawed [1-9]\d* filesystem\(s\)\n$/);
          }
          assertEquals((await client([...s, "status"])).out, "thawed\n");
          assertEquals((await client([...s, "--json", "status"])).out, '"thawed"\n');
        });
      } finally {
        await agent.stop();
      }
    },
  );

  realTest(`client (${name}): a disabled command is one readable line`, reqs, async () => {
    const agent = await startAgent({ impl, newest, args: ["-b", "guest-exec,guest-get-osinfo"] });
    try {
      const s = ["--socket", agent.socketPath];
      const exec = await client([...s, "exec", "true"]);
      assertEquals(exec.code, 1);
      assertEquals(
        exec.err,
        "denoga client: guest-exec: Command guest-exec has been disabled: the command is not " +
          "allowed (CommandNotFound)\n",
      );
      const os = await client([...s, "osinfo"]);
      assertEquals(os.code, 1);
      assertIncludes(os.err, "guest-get-osinfo has been disabled");
    } finally {
      await agent.stop();
    }
  });
}

for (const { impl, newest, reqs } of IMPLS) {
  const name = newest ? "qemu-ga 10.2.50" : impl;
  realTest(`QgaClient (${name}): agentUsage is the agent's own /proc/self`, reqs, async () => {
    const agent = await startAgent({ impl, newest });
    const c = await QgaClient.connect({ unix: agent.socketPath });
    try {
      const pid = agent.proc.pid;
      const hostTicks = async () => parseStatCpuTicks(await Deno.readTextFile(`/proc/${pid}/stat`));
      const hostRss = async () => parseStatusRssKiB(await Deno.readTextFile(`/proc/${pid}/status`));
      const [ticksBefore, rssBefore] = [await hostTicks(), await hostRss()];
      const usage = await agentUsage(c);
      const [ticksAfter, rssAfter] = [await hostTicks(), await hostRss()];
      assert.ok(
        ticksBefore <= usage.cpuTicks && usage.cpuTicks <= ticksAfter,
        `${usage.cpuTicks} ticks outside the host's [${ticksBefore}, ${ticksAfter}]`,
      );
      // Wide margin: the agent's memory moves a little while it serves the reads.
      const lo = Math.min(rssBefore, rssAfter) - 8192;
      const hi = Math.max(rssBefore, rssAfter) + 8192;
      assert.ok(lo <= usage.rssKiB && usage.rssKiB <= hi, `${usage.rssKiB} KiB vs ${lo}..${hi}`);
      const ownStatus = await readGuestText(c, `/proc/${pid}/status`);
      assert.match(ownStatus, /^Name:\t/);
    } finally {
      c.close();
      await agent.stop();
    }
  });
}

realTest(
  "QgaClient raw layer: exact line bytes, the unterminated rest, a late socket",
  [],
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-client-" });
    const path = `${dir}/late.sock`;
    const enc = new TextEncoder();
    let go: () => void = () => {};
    const released = new Promise<void>((r) => go = r);
    let listener: Deno.UnixListener | undefined;
    const peer = (async () => {
      await new Promise((r) => setTimeout(r, 200)); // the socket appears only now
      listener = Deno.listen({ transport: "unix", path });
      const conn = await listener.accept();
      await released;
      await conn.write(new Uint8Array([0xff, ...enc.encode('{"return": 1}\n{"par')]));
      conn.close();
    })();
    try {
      const absent = await QgaClient.connect({ unix: path }, { noSync: true }).catch((e) => e);
      assertEquals(absent.message, `cannot connect to ${path}: No such file or directory`);
      const c = await QgaClient.connect({ unix: path }, {
        noSync: true,
        waitForSocket: true,
        timeoutMs: 30_000,
      });
      assertEquals(await c.waitForInput(50), false);
      go();
      assertEquals(await c.waitForInput(30_000), true);
      assertEquals(
        await c.readLineBytes(30_000),
        new Uint8Array([0xff, ...enc.encode('{"return": 1}')]),
      );
      assertEquals(await c.readLineBytes(30_000), null);
      assertEquals(c.eof, true);
      assertEquals(dec.decode(c.pendingBytes()), '{"par');
      c.close();
      await peer;
    } finally {
      listener?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

realTest("client: a missing socket is one line and exit 1", [], async () => {
  const dir = await Deno.makeTempDir({ prefix: "denoga-client-" });
  try {
    const r = await client(["--socket", `${dir}/absent.sock`, "ping"]);
    assertEquals([r.code, r.out], [1, ""]);
    assertEquals(
      r.err,
      `denoga client: cannot connect to ${dir}/absent.sock: No such file or directory\n`,
    );
    const usage = await client(["ping"]);
    assertEquals(usage.code, 2);
    assertIncludes(usage.err, "--socket PATH or --vsock CID:PORT is required");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

realTest("client: an agent that does not answer times out after --timeout", [], async () => {
  const dir = await Deno.makeTempDir({ prefix: "denoga-client-" });
  const path = `${dir}/deaf.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c); // reads nothing, answers nothing
  })();
  try {
    const t0 = Date.now();
    const r = await client(["--socket", path, "--timeout", "1", "ping"]);
    const elapsed = Date.now() - t0;
    assertEquals(r.code, 1);
    assertEquals(r.err, `denoga client: no answer to guest-sync-delimited at ${path} within 1 s\n`);
    assert.ok(elapsed >= 1000, `gave up after ${elapsed} ms`);
  } finally {
    listener.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

realTest("QgaClient: sync gives up on time when the port stops taking bytes", [], async () => {
  // A guest that is not reading its port (booting, hung) leaves the host's writes blocked once
  // the buffers are full; a waiting host's resyncs must still time out rather than hang.
  const dir = await Deno.makeTempDir({ prefix: "denoga-client-" });
  const path = `${dir}/full.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c); // reads nothing
  })();
  const c = await QgaClient.connect({ unix: path }, { noSync: true, timeoutMs: 300 });
  try {
    await assert.rejects(c.send(new Uint8Array(32 * 1024 * 1024), 300), QgaTimeoutError);
    for (let k = 0; k < 3; k++) {
      const t0 = Date.now();
      await assert.rejects(c.sync(300), QgaTimeoutError);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 5000, `sync gave up after ${elapsed} ms`);
    }
  } finally {
    c.close();
    listener.close();
    for (const h of held) h.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

realTest("client: a vsock address nobody serves is one line", [], async () => {
  const r = await client(["--vsock", "1:9", "--timeout", "1", "ping"]);
  assertEquals(r.code, 1);
  assertEquals(r.err.split("\n").length, 2, r.err);
  assert.match(r.err, /^denoga client: cannot connect to vsock:1:9: /);
});

/**
 * A scripted peer: answers the handshake with stale bytes, a stale 0xFF reply of another id and
 * then the right one, so the client must skip to the 0xFF that precedes its own id.
 */
realTest("QgaClient.sync skips input up to the 0xFF before the reply with its id", [], async () => {
  const dir = await Deno.makeTempDir({ prefix: "denoga-client-" });
  const path = `${dir}/peer.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const peer = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    let got = "";
    while (!got.includes("}}")) got += dec.decode(buf.subarray(0, await conn.read(buf) ?? 0));
    const id = /"id":(\d+)/.exec(got)![1];
    assertEquals(got.charCodeAt(0), 0xfffd); // the leading 0xFF
    const enc = new TextEncoder();
    await conn.write(enc.encode('{"return": "stale"}\n{"ret'));
    await conn.write(new Uint8Array([0xff, ...enc.encode(`{"return": ${Number(id) ^ 1}}\n`)]));
    await conn.write(new Uint8Array([0xff, ...enc.encode(`{"return": ${id}}\n`)]));
    // then a normal request
    while (!got.includes("guest-ping")) {
      got += dec.decode(buf.subarray(0, await conn.read(buf) ?? 0));
    }
    await conn.write(enc.encode('{"error": {"class": "GenericError", "desc": "no"}}\n'));
    return conn;
  })();
  try {
    const c = await QgaClient.connect({ unix: path }, { timeoutMs: 5000 });
    const e = await c.call("guest-ping").catch((e) => e);
    assert.ok(e instanceof QgaCommandError);
    assertEquals([e.errorClass, e.desc], ["GenericError", "no"]);
    c.close();
    (await peer).close();
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
