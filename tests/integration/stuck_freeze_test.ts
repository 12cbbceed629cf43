/**
 * A freeze stuck in the kernel, for real: `inner` is an ext4 image stored on `outer`; with
 * `outer` frozen (util-linux fsfreeze, as an administrator or another tool would), FIFREEZE on
 * `inner` has to write `inner`'s dirty data through its loop device into `outer` and sleeps in
 * the kernel until `outer` thaws.
 *
 * qemu-ga goes deaf for that whole time. denoga keeps answering: after the host resyncs with
 * 0xFF + guest-sync-delimited the stuck freeze is left behind, and ping, status and the sync
 * itself are answered at once (README, "Safer while frozen").
 */

import { assertEquals, assertOk } from "../assert.ts";
import { assertOwnLoopMount, realTest, run, withLoopFs } from "../fixtures/loopfs.ts";
import { hasQemuGa, type Impl, RawClient, startAgent } from "./harness.ts";

const dec = new TextDecoder("latin1");

/** Reads reply lines until one contains `fragment`; returns every line read. */
async function readUntil(c: RawClient, fragment: string, timeoutMs: number): Promise<string[]> {
  const lines: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no reply containing ${fragment} (got ${lines.join(" | ")})`);
    const line = dec.decode(await c.recvLine(left));
    lines.push(line);
    if (line.includes(fragment)) return lines;
  }
}

/** Runs `body` with `inner` (on `outer`) holding dirty data and `outer` frozen. */
async function withStuckFreezeSetup(
  body: (outer: string, inner: string) => Promise<void>,
): Promise<void> {
  await withLoopFs("ext4", async (outer) => {
    await withLoopFs("ext4", async (inner) => {
      assertOwnLoopMount(outer);
      assertOwnLoopMount(inner);
      await Deno.writeFile(`${inner}/dirty`, new Uint8Array(4 << 20).fill(0x5a)); // no fsync
      await run("fsfreeze", ["-f", outer]);
      try {
        await body(outer, inner);
      } finally {
        // Outer first: inner's FIFREEZE (and its unmount) wait on it.
        await run("fsfreeze", ["-u", outer]).catch(() => {});
      }
    }, { parentDir: outer });
  });
}

async function stuckFreezeScenario(impl: Impl): Promise<string[]> {
  const transcript: string[] = [];
  await withStuckFreezeSetup(async (outer, inner) => {
    const agent = await startAgent({ impl });
    let c: RawClient | undefined;
    try {
      c = await RawClient.connect(agent.socketPath);
      await c.send(
        `{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["${inner}"]},"id":"stuck"}`,
      );
      // The host gives up on the freeze and resyncs, then asks what it needs to know.
      await c.send(`\xff{"execute":"guest-sync-delimited","arguments":{"id":4242}}`);
      await c.send(`{"execute":"guest-ping","id":"p"}{"execute":"guest-fsfreeze-status","id":"s"}`);
      try {
        const lines = await readUntil(c, '"id": "s"', 3_000);
        transcript.push(...lines.map((l) => l.replace(/^\xff/, "<FF>")));
      } catch {
        transcript.push("# deaf while the freeze is stuck");
      }
      // Release the kernel: outer thaws, inner's FIFREEZE completes, then thaw everything.
      await run("fsfreeze", ["-u", outer]);
      await c.send(`{"execute":"guest-fsfreeze-thaw","id":"t"}`);
      const after = await readUntil(c, '"id": "t"', 30_000);
      transcript.push(`# after release: ${after.at(-1)}`);
    } finally {
      c?.close();
      await run("fsfreeze", ["-u", inner]).catch(() => {});
      await agent.stop();
    }
  });
  return transcript;
}

realTest("a freeze stuck in the kernel: denoga answers a resync at once", ["ext4"], async () => {
  const t = await stuckFreezeScenario("denoga");
  // The freeze reply and the parse-error reply queued behind it were left behind.
  assertEquals(t, [
    '<FF>{"return": 4242}',
    '{"return": {}, "id": "p"}',
    '{"return": "frozen", "id": "s"}',
    '# after release: {"return": 1, "id": "t"}',
  ]);
});

realTest("a freeze stuck in the kernel: qemu-ga goes deaf (the contrast)", ["ext4"], async () => {
  if (!hasQemuGa()) {
    if (Deno.env.get("DENOGA_REQUIRE_REAL") === "1") throw new Error("qemu-ga is missing");
    console.warn("qemu-ga missing: contrast case not run");
    return;
  }
  const t = await stuckFreezeScenario("qemu-ga");
  assertEquals(t[0], "# deaf while the freeze is stuck");
  // Once the kernel lets go, qemu-ga works through the backlog and the thaw.
  assertOk(t[1].includes('"id": "t"'), t[1]);
});
