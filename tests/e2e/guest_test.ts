/**
 * End to end in a real guest: QEMU/TCG boots Debian's kernel with a busybox initramfs running the
 * agent on its virtio-serial port (scripts/guest/build.ts), and the test drives the port from the
 * host through QEMU's chardev socket with raw bytes. The same scenario runs for qemu-ga (the
 * reference) and for denoga: sync, ping, guest-info, file I/O on the guest's ext4 disk, freeze
 * (proved by a gap in the guest's tick writer), freeze-list, a host reconnect with a half-sent
 * request in between, and guest-shutdown (no reply, QEMU exits).
 *
 * Skipped, with the reason in its name, when QEMU, busybox, qemu-ga or the kernel package are
 * unavailable; with `DENOGA_REQUIRE_REAL=1` it fails instead.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { requireReal } from "../fixtures/loopfs.ts";
import { QgaClient, QgaTimeoutError } from "../../lib/client/connection.ts";
import { readGuestText } from "../../lib/client/transfer.ts";
import { SEED_COMMANDS } from "../integration/harness.ts";
import {
  bootGuest,
  guestImage,
  type GuestVm,
  missingGuestPrerequisite,
} from "../fixtures/guest/vm.ts";
import { DISK_MOUNT, type GuestAgent, TICKS_FILE } from "../../scripts/guest/build.ts";

/** Failure guards only: TCG boots take 5–15 s. */
const BOOT_TIMEOUT_MS = 120_000;
const SYNC_RETRY_MS = 5_000;
/** How long the disk stays frozen. */
const FROZEN_MS = 2_500;
/** Bound on how stale the newest tick read before the freeze can be (write period + latency). */
const TICK_STALENESS_S = 0.6;

const enc = new TextEncoder();

function hostSeconds(): number {
  return performance.now() / 1000;
}

/**
 * Connects to the port's chardev (waiting for QEMU to create it) and sends syncs, a new id every
 * few seconds, until the newest one is answered.
 */
async function connectWhenReady(vm: GuestVm, timeoutMs: number): Promise<QgaClient> {
  const client = await QgaClient.connect({ unix: vm.socket }, {
    timeoutMs: SYNC_RETRY_MS,
    waitForSocket: true,
    noSync: true,
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.sync(SYNC_RETRY_MS);
      return client;
    } catch (e) {
      if (!(e instanceof QgaTimeoutError) || Date.now() > deadline || vm.hasExited()) {
        client.close();
        throw e;
      }
    }
  }
}

function parseTicks(text: string): number[] {
  return text.split("\n").filter((l) => /^\d+\.\d+$/.test(l)).map(Number);
}

async function scenario(agent: GuestAgent, t: Deno.TestContext): Promise<void> {
  const image = await guestImage(agent);
  console.log(
    `[${agent}] image: ${(image.initrdBytes / 2 ** 20).toFixed(1)} MiB ${image.compression} ` +
      `(cpio ${(image.cpioBytes / 2 ** 20).toFixed(1)} MiB), ` +
      (image.cached ? "reused" : `built in ${image.buildSeconds} s`) +
      `, kernel ${image.kernelRelease}`,
  );
  const vm = await bootGuest(image);
  let client: QgaClient | undefined;
  let failed = false;
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const ok = await t.step({ name, ignore: failed, fn });
    if (!ok && !failed) failed = true;
  };
  try {
    await step("boot and first guest-sync-delimited", async () => {
      client = await connectWhenReady(vm, BOOT_TIMEOUT_MS);
      const ready = (performance.now() - vm.startedAt) / 1000;
      console.log(
        `[${agent}] boot-to-agent-ready: ${ready.toFixed(2)} s (QEMU start → first sync)`,
      );
    });
    const c = (): QgaClient => client!;

    await step("guest-ping", async () => {
      assertEquals(await c().request("guest-ping"), { return: {} });
    });

    await step("guest-info", async () => {
      const info = await c().call<{
        version: string;
        supported_commands: { name: string; enabled: boolean }[];
      }>("guest-info");
      assertOk(typeof info.version === "string" && info.version !== "", "version");
      const enabled = new Set(info.supported_commands.filter((x) => x.enabled).map((x) => x.name));
      assertEquals(SEED_COMMANDS.filter((n) => !enabled.has(n)), []);
      console.log(
        `[${agent}] guest-info version ${info.version}, ${enabled.size} commands enabled`,
      );
    });

    await step("guest-file-open/write/read/close on the guest disk", async () => {
      const path = `${DISK_MOUNT}/e2e-${agent}.txt`;
      const text = `written by the host to ${agent}\n`;
      const w = await c().call<number>("guest-file-open", { path, mode: "w" });
      assertOk(Number.isInteger(w), "handle");
      const wr = await c().call<{ count: number; eof: boolean }>("guest-file-write", {
        handle: w,
        "buf-b64": enc.encode(text).toBase64(),
      });
      assertEquals(wr.count, enc.encode(text).length);
      assertEquals(await c().call("guest-file-close", { handle: w }), {});
      assertEquals(await readGuestText(c(), path), text);
    });

    let frozenCount = 0;
    await step("guest-fsfreeze-freeze blocks writes until guest-fsfreeze-thaw", async () => {
      assertEquals(await c().call("guest-fsfreeze-status"), "thawed");
      // Wait until the writer runs steadily (≥ 5 ticks in its last second), else a gap proves
      // nothing.
      let before: number[] = [];
      let readAt = 0;
      const steady = Date.now() + 30_000;
      for (;;) {
        before = parseTicks(await readGuestText(c(), TICKS_FILE));
        readAt = hostSeconds();
        if (before.filter((u) => u > before.at(-1)! - 1).length >= 5) break;
        assertOk(Date.now() < steady, `tick writer not steady: ${before.slice(-10)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // guest uptime ≈ host time + offset; the newest tick is at most TICK_STALENESS_S old.
      const offset = before.at(-1)! - readAt;
      const recent = before.filter((u) => u > before.at(-1)! - 2).length;
      frozenCount = await c().call<number>("guest-fsfreeze-freeze");
      const frozenAt = hostSeconds();
      assertOk(frozenCount >= 1, `freeze count ${frozenCount}`);
      assertEquals(await c().call("guest-fsfreeze-status"), "frozen");
      await new Promise((r) => setTimeout(r, FROZEN_MS));
      const thawAt = hostSeconds();
      assertEquals(await c().call<number>("guest-fsfreeze-thaw"), frozenCount);
      assertEquals(await c().call("guest-fsfreeze-status"), "thawed");
      // Window (guest uptime) certainly inside the frozen interval whatever the offset error.
      const lo = frozenAt + offset + TICK_STALENESS_S;
      const hi = thawAt + offset;
      let ticks: number[] = [];
      const guard = Date.now() + 20_000;
      while (Date.now() < guard) {
        ticks = parseTicks(await readGuestText(c(), TICKS_FILE));
        if (ticks.some((u) => u > hi)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assertOk(ticks.some((u) => u > hi), "no tick after the thaw: the writer did not resume");
      const inside = ticks.filter((u) => u > lo && u < hi);
      let gap = 0;
      for (let i = 1; i < ticks.length; i++) {
        if (ticks[i] > lo) {
          gap = ticks[i] - ticks[i - 1];
          if (inside.length <= 1 && ticks[i] >= hi) break;
        }
      }
      console.log(
        `[${agent}] freeze: ${frozenCount} fs; window ${(hi - lo).toFixed(2)} s of guest time; ` +
          `${inside.length} tick(s) inside (≤ 1 = the write in flight when frozen), ` +
          `${recent} in the 2 s before; widest gap ${gap.toFixed(2)} s`,
      );
      assertOk(recent >= 3, `tick writer too slow to prove anything (${recent} ticks in 2 s)`);
      // A write started just before the freeze carries a timestamp from inside the window.
      assertOk(inside.length <= 1, `${inside.length} ticks written while frozen: ${inside}`);
    });

    await step("guest-fsfreeze-freeze-list [/mnt/disk] then thaw", async () => {
      assertEquals(await c().call("guest-fsfreeze-freeze-list", { mountpoints: [DISK_MOUNT] }), 1);
      assertEquals(await c().call("guest-fsfreeze-status"), "frozen");
      assertEquals(await c().call("guest-fsfreeze-thaw"), 1);
      assertEquals(await c().call("guest-fsfreeze-status"), "thawed");
    });

    await step("host reconnects after a half-sent request", async () => {
      await c().send('{"execute":"guest-pi');
      c().close();
      client = await connectWhenReady(vm, 30_000);
      assertEquals(await c().request("guest-ping"), { return: {} });
    });

    await step("guest-shutdown: no reply, QEMU exits", async () => {
      const sentAt = performance.now();
      await c().send(JSON.stringify({ execute: "guest-shutdown" }));
      let line: Uint8Array | null = null;
      try {
        line = await c().readLineBytes(15_000, "EOF after guest-shutdown");
      } catch (e) {
        if (!(e instanceof QgaTimeoutError)) throw e;
      }
      assertEquals(line, null, "guest-shutdown must not reply");
      assertEquals(c().pendingBytes().length, 0, "guest-shutdown must not reply");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        vm.exited,
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), 15_000)),
      ]);
      clearTimeout(timer);
      assertOk(status !== "timeout", "QEMU still running 15 s after guest-shutdown");
      console.log(
        `[${agent}] guest-shutdown → QEMU exit: ${
          ((performance.now() - sentAt) / 1000).toFixed(2)
        } s ` +
          `(status ${status.code})`,
      );
      assertEquals(status.code, 0);
    });
  } finally {
    client?.close();
    if (failed) {
      console.log(
        `[${agent}] guest console:\n${vm.console()}\n[${agent}] QEMU stderr:\n${vm.qemuStderr()}`,
      );
    } else {
      const lines = vm.console().split("\n").filter((l) => l.includes("GUEST-INIT:"));
      console.log(`[${agent}] guest console (init lines):\n  ${lines.join("\n  ")}`);
    }
    await vm.dispose();
  }
}

// Deno.test is called here rather than through loopfs.ts's realTestIf (same skip rules): deno
// files a test under the module that called Deno.test and its steps under this one, and
// scripts/test.ts matches steps to their parent within one JUnit suite.
for (const agent of ["qemu-ga", "denoga"] as const) {
  const missing = missingGuestPrerequisite(agent);
  const name = `guest e2e (${agent} in a QEMU/TCG guest)`;
  if (missing !== undefined && !requireReal()) {
    console.warn(
      `guest e2e: skipping ${agent}: ${missing} (set DENOGA_REQUIRE_REAL=1 to fail instead)`,
    );
  }
  Deno.test({
    name: missing === undefined || requireReal() ? name : `${name} [SKIPPED: ${missing}]`,
    ignore: missing !== undefined && !requireReal(),
    fn: async (t) => {
      if (missing !== undefined) {
        throw new Error(`prerequisite missing (DENOGA_REQUIRE_REAL=1): ${missing}`);
      }
      await scenario(agent, t);
    },
  });
}
