/**
 * The freezer under faults, on throw-away loop-device filesystems only (never `/`; every freeze
 * names a mount point created here): the fsfreeze-timeout watchdog, SIGKILL while frozen and a
 * restart (side by side with qemu-ga), and SIGTERM right after a client leaves while the agent
 * is still busy.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { assertOwnLoopMount, kernelFrozen, realTest, withLoopFs } from "../fixtures/loopfs.ts";
import {
  exec,
  hasQemuGa,
  type Impl,
  normalizeQemuGaLine,
  RawClient,
  realTest as realAgentTest,
  startAgent,
  withTimeout,
} from "./harness.ts";

const dec = new TextDecoder("latin1");

async function ask(c: RawClient, req: string): Promise<string> {
  await c.send(req);
  return dec.decode(await c.recvLine());
}

realTest(
  "fsfreeze-timeout: no host thaw in time, the agent thaws and logs once, only after the thaw",
  ["ext4"],
  async () => {
    await withLoopFs("ext4", async (mnt) => {
      assertOwnLoopMount(mnt);
      // The log file lives on the filesystem being frozen: one write to it while frozen would
      // block the agent, and ping below would go unanswered.
      const logPath = `${mnt}/agent.log`;
      const agent = await startAgent({
        impl: "denoga",
        logfile: false,
        args: ["-v", "-l", logPath, "--fsfreeze-timeout", "2"],
      });
      try {
        const c = await RawClient.connect(agent.socketPath);
        const frozeAt = Date.now() / 1000;
        const freeze = exec("guest-fsfreeze-freeze-list", `{"mountpoints":["${mnt}"]}`);
        assertEquals(await ask(c, freeze), '{"return": 1}');
        const sizeWhenFrozen = (await Deno.stat(logPath)).size;
        assertEquals(await ask(c, exec("guest-ping")), '{"return": {}}');
        assertEquals(await ask(c, exec("guest-fsfreeze-status")), '{"return": "frozen"}');
        assertOk(await kernelFrozen(mnt), "frozen in the kernel");
        assertEquals((await Deno.stat(logPath)).size, sizeWhenFrozen, "log written while frozen");
        // No host thaw: the watchdog's turn.
        const deadline = Date.now() + 15_000;
        let status = "";
        while (Date.now() < deadline) {
          status = await ask(c, exec("guest-fsfreeze-status"));
          if (status !== '{"return": "frozen"}') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assertEquals(status, '{"return": "thawed"}');
        assertOk(Date.now() / 1000 - frozeAt >= 1.9, "thawed before the timeout");
        assertEquals(await kernelFrozen(mnt), false);
        c.close();
        await agent.stop();
        const lines = (await Deno.readTextFile(logPath)).split("\n");
        const auto = lines.filter((l) => l.includes("fsfreeze-timeout"));
        assertEquals(auto.length, 1, lines.join("\n"));
        assertOk(
          /^\d+\.\d{6}: error: no guest-fsfreeze-thaw within fsfreeze-timeout \(2 s\): thawed [01] filesystems?$/
            .test(auto[0]),
          auto[0],
        );
        assertOk(Number(auto[0].split(":")[0]) >= frozeAt + 1.9, auto[0]);
      } finally {
        await agent.dispose();
      }
    });
  },
);

realTest("fsfreeze-timeout off (the default): frozen stays frozen", ["ext4"], async () => {
  await withLoopFs("ext4", async (mnt) => {
    assertOwnLoopMount(mnt);
    const agent = await startAgent({ impl: "denoga" });
    try {
      const c = await RawClient.connect(agent.socketPath);
      const freeze = exec("guest-fsfreeze-freeze-list", `{"mountpoints":["${mnt}"]}`);
      assertEquals(await ask(c, freeze), '{"return": 1}');
      await new Promise((r) => setTimeout(r, 2500));
      assertEquals(await ask(c, exec("guest-fsfreeze-status")), '{"return": "frozen"}');
      // (The count is not asserted: other tests on this host may thaw every mount meanwhile.)
      assertOk(/^\{"return": \d+\}$/.test(await ask(c, exec("guest-fsfreeze-thaw"))));
      assertEquals(await ask(c, exec("guest-fsfreeze-status")), '{"return": "thawed"}');
      c.close();
    } finally {
      await agent.dispose();
    }
  });
});

/** Freeze with one agent, SIGKILL it, start another on the same statedir, thaw with it. */
async function killedWhileFrozen(impl: Impl, mnt: string): Promise<string[]> {
  const t: string[] = [];
  const statedir = await Deno.makeTempDir({ prefix: "denoga-it-state-" });
  try {
    const first = await startAgent({ impl, statedir });
    try {
      const c = await RawClient.connect(first.socketPath);
      const freeze = exec("guest-fsfreeze-freeze-list", `{"mountpoints":["${mnt}"]}`);
      t.push(await ask(c, freeze));
      c.close();
      first.kill("SIGKILL");
      await withTimeout(first.exited, 10_000, "exit after SIGKILL");
    } finally {
      await first.dispose();
    }
    t.push(`# marker left: ${await exists(`${statedir}/qga.state.isfrozen`)}`);
    t.push(`# kernel frozen: ${await kernelFrozen(mnt)}`);
    const second = await startAgent({ impl, statedir });
    try {
      const c = await RawClient.connect(second.socketPath);
      t.push(await ask(c, exec("guest-fsfreeze-status")));
      t.push(await ask(c, exec("guest-get-time")));
      // A thaw after a frozen start walks every mount: other tests' frozen loop filesystems on
      // this host may be counted too, so only "at least ours" is asserted.
      const thawed = /^\{"return": (\d+)\}$/.exec(await ask(c, exec("guest-fsfreeze-thaw")));
      t.push(`# thaw counted ours: ${thawed !== null && Number(thawed[1]) >= 1}`);
      t.push(await ask(c, exec("guest-fsfreeze-status")));
      t.push(`# marker left: ${await exists(`${statedir}/qga.state.isfrozen`)}`);
      t.push(`# kernel frozen: ${await kernelFrozen(mnt)}`);
      c.close();
      t.push(`# exit ${await second.stop()}`);
    } finally {
      await second.dispose();
    }
  } finally {
    await Deno.remove(statedir, { recursive: true }).catch(() => {});
  }
  return t;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

for (const fs of ["ext4", "xfs"] as const) {
  realTest(`SIGKILL while frozen, restart: starts frozen-aware and a thaw works (${fs})`, [
    fs,
  ], async () => {
    const impls: Impl[] = hasQemuGa() ? ["qemu-ga", "denoga"] : ["denoga"];
    const results: string[][] = [];
    for (const impl of impls) {
      const t = await withLoopFs(fs, (mnt) => killedWhileFrozen(impl, mnt));
      // qemu-ga 7.2's texts as the newest qemu-ga (denoga's reference) words them.
      results.push(impl === "qemu-ga" ? t.map(normalizeQemuGaLine) : t);
    }
    const expected = [
      '{"return": 1}',
      "# marker left: true",
      "# kernel frozen: true",
      '{"return": "frozen"}',
      '{"error": {"class": "CommandNotFound", "desc": "Command guest-get-time has been disabled: the command is not allowed"}}',
      "# thaw counted ours: true",
      '{"return": "thawed"}',
      "# marker left: false",
      "# kernel frozen: false",
      "# exit 0",
    ];
    for (const r of results) assertEquals(r, expected);
  });
}

realAgentTest(
  "SIGTERM while busy right after a client closes: a clean exit every time (50 runs)",
  [],
  async () => {
    const runs = 50;
    const failures: string[] = [];
    for (let i = 0; i < runs; i++) {
      const agent = await startAgent({ impl: "denoga", logfile: false });
      try {
        const c = await RawClient.connect(agent.socketPath);
        // Work that is still running when the client goes: the fsinfo walk, file I/O and a
        // long pipelined backlog.
        const reqs = [
          exec("guest-get-fsinfo"),
          exec("guest-file-open", `{"path":"${agent.dir}/f${i}","mode":"w"}`),
          ...Array.from({ length: 200 }, (_, k) => exec("guest-sync", `{"id":${k}}`)),
        ];
        await c.send(reqs.join(""));
        c.close();
        agent.kill("SIGTERM");
        const st = await withTimeout(agent.exited, 10_000, `exit ${i} after SIGTERM`);
        const out = agent.output();
        if (st.code !== 0 || st.signal !== null || /error|panic|uncaught/i.test(out)) {
          failures.push(`run ${i}: code ${st.code} signal ${st.signal}: ${out}`);
        }
      } finally {
        await agent.dispose();
      }
    }
    assertEquals(failures, []);
  },
);

realTest("SIGTERM while frozen is deferred; an auto-thaw then ends the agent cleanly", [
  "xfs",
], async () => {
  await withLoopFs("xfs", async (mnt) => {
    assertOwnLoopMount(mnt);
    const agent = await startAgent({ impl: "denoga", args: ["--fsfreeze-timeout=2"] });
    try {
      const c = await RawClient.connect(agent.socketPath);
      const freeze = exec("guest-fsfreeze-freeze-list", `{"mountpoints":["${mnt}"]}`);
      const frozeAt = Date.now();
      assertEquals(await ask(c, freeze), '{"return": 1}');
      agent.kill("SIGTERM");
      // Still serving while frozen: the exit waits for the thaw.
      assertEquals(await ask(c, exec("guest-fsfreeze-status")), '{"return": "frozen"}');
      assertEquals(agent.hasExited(), false);
      const st = await withTimeout(agent.exited, 15_000, "exit after the auto-thaw");
      assertEquals([st.code, st.signal], [0, null]);
      assertOk(Date.now() - frozeAt >= 1900, "exited before the auto-thaw");
      assertEquals(await kernelFrozen(mnt), false);
      assertOk(!(await exists(`${agent.statedir}/qga.state.isfrozen`)), "marker left behind");
      c.close();
    } finally {
      await agent.dispose();
    }
  });
});
