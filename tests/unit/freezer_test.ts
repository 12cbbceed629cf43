/**
 * lib/freezer.ts over a fake OS whose FIFREEZE can be held "stuck in the kernel": a thaw that
 * comes in meanwhile is honoured once the freeze returns, and the fsfreeze-timeout watchdog
 * thaws what the agent froze, logging only after the thaw.
 */

import { assertEquals, assertOk } from "../assert.ts";
import type { FreezeOutcome, FreezeSyscalls } from "../../ffi/fsfreeze.ts";
import type { OsPath } from "../../ffi/libc.ts";
import { Freezer } from "../../lib/freezer.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { StateDir } from "../../lib/state.ts";
import type { MountEntry } from "../../lib/system/mounts.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A kernel model: which mount points are frozen; freezes of `stuck` wait for release(). */
class FakeKernel implements FreezeSyscalls {
  readonly frozen = new Set<string>();
  readonly calls: string[] = [];
  #stuck: Set<string>;
  #release: (() => void)[] = [];
  #entered: (() => void) | undefined;
  readonly entered: Promise<void>;

  constructor(stuck: string[] = []) {
    this.#stuck = new Set(stuck);
    this.entered = new Promise((r) => (this.#entered = r));
  }

  async freeze(mountpoint: OsPath): Promise<FreezeOutcome> {
    const p = dec.decode(mountpoint as Uint8Array);
    this.calls.push(`freeze ${p}`);
    if (this.#stuck.has(p)) {
      this.#entered?.();
      await new Promise<void>((r) => this.#release.push(r));
    }
    this.frozen.add(p);
    return { ok: true };
  }

  thaw(mountpoint: OsPath): Promise<boolean> {
    const p = dec.decode(mountpoint as Uint8Array);
    this.calls.push(`thaw ${p}`);
    return Promise.resolve(this.frozen.delete(p));
  }

  release(): void {
    for (const r of this.#release.splice(0)) r();
  }
}

function mount(path: string): MountEntry {
  return { dirname: path, path: enc.encode(path), devtype: "ext4", devmajor: 7, devminor: 0 };
}

/** Log lines as written (not as held while frozen), and whether the marker existed then. */
interface Written {
  line: string;
  markerPresent: boolean;
}

async function withFreezer(
  opts: { kernel: FakeKernel; mounts: string[]; timeoutSeconds?: number; frozen?: boolean },
  fn: (f: Freezer, written: Written[], state: StateDir) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const state = new StateDir(dir);
    if (opts.frozen) state.createFrozenMarker();
    const written: Written[] = [];
    const markerPresent = () => {
      try {
        Deno.statSync(state.frozenMarkerPath);
        return true;
      } catch {
        return false;
      }
    };
    const log = new Logger({
      verbose: false,
      sink: { write: (line) => written.push({ line, markerPresent: markerPresent() }) },
    });
    const freezer = new Freezer({
      log,
      state,
      platform: fakePlatform({
        freeze: opts.kernel,
        mounts: () => Promise.resolve(opts.mounts.map(mount)),
        run: () => Promise.resolve(),
      }),
      timeoutSeconds: opts.timeoutSeconds,
      frozen: opts.frozen,
    });
    await fn(freezer, written, state);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves once `cond` holds (polled), or rejects after `ms`. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("a thaw during a stuck freeze waits for it, stops it, then thaws what got frozen", async () => {
  // Freeze order is reverse mount order: /b (stuck) first, then /a.
  const kernel = new FakeKernel(["/b"]);
  await withFreezer({ kernel, mounts: ["/a", "/b"] }, async (f) => {
    const freezing = f.freeze(undefined);
    await kernel.entered;
    assertOk(f.frozen);
    let thawReply: number | undefined;
    const thawing = f.thaw().then((n) => (thawReply = n));
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(thawReply, undefined, "the thaw waits for the freeze in the kernel");
    assertOk(f.frozen);
    kernel.release();
    await thawing;
    // The freeze returned, froze nothing further (/a), and /b was thawed.
    assertEquals(await freezing, 1);
    assertEquals(kernel.calls, ["freeze /b", "thaw /a", "thaw /b"]);
    assertEquals(thawReply, 1);
    assertEquals([...kernel.frozen], []);
    assertEquals(f.frozen, false);
  });
});

Deno.test("without a thaw, a freeze that was stuck freezes the rest and stays frozen", async () => {
  const kernel = new FakeKernel(["/b"]);
  await withFreezer({ kernel, mounts: ["/a", "/b"] }, async (f) => {
    const freezing = f.freeze(undefined);
    await kernel.entered;
    kernel.release();
    assertEquals(await freezing, 2);
    assertOk(f.frozen);
    assertEquals(await f.thaw(), 2);
  });
});

Deno.test("fsfreeze-timeout: thaws only what the agent froze, logs once after the thaw", async () => {
  const kernel = new FakeKernel();
  await withFreezer(
    { kernel, mounts: ["/a", "/b", "/c"], timeoutSeconds: 0.05 },
    async (f, written, state) => {
      kernel.frozen.add("/c"); // frozen by someone else
      assertEquals(await f.freeze(["/a"]), 1);
      assertOk(f.frozen);
      await until(() => written.some((w) => w.line.includes("fsfreeze-timeout")), "the log line");
      assertEquals(f.frozen, false);
      assertEquals([...kernel.frozen], ["/c"]);
      assertEquals(kernel.calls, ["freeze /a", "thaw /a"]);
      const lines = written.filter((w) => w.line.includes("fsfreeze-timeout"));
      assertEquals(lines.length, 1);
      assertOk(
        /: error: no guest-fsfreeze-thaw within fsfreeze-timeout \(0\.05 s\): thawed 1 filesystem$/
          .test(lines[0].line.trimEnd()),
        lines[0].line,
      );
      // Nothing was written while the marker said frozen.
      assertEquals(written.filter((w) => w.markerPresent), []);
      assertOk(!state.frozenMarkerExists());
    },
  );
});

Deno.test("fsfreeze-timeout: a host thaw in time disarms the watchdog", async () => {
  const kernel = new FakeKernel();
  await withFreezer({ kernel, mounts: ["/a"], timeoutSeconds: 0.05 }, async (f, written) => {
    assertEquals(await f.freeze(["/a"]), 1);
    assertEquals(await f.thaw(), 1);
    await new Promise((r) => setTimeout(r, 150));
    assertEquals(written.filter((w) => w.line.includes("fsfreeze-timeout")), []);
    assertEquals(kernel.calls, ["freeze /a", "thaw /a"]);
  });
});

Deno.test("fsfreeze-timeout: a stuck freeze is thawed once it returns", async () => {
  const kernel = new FakeKernel(["/a"]);
  await withFreezer({ kernel, mounts: ["/a"], timeoutSeconds: 0.05 }, async (f, written) => {
    const freezing = f.freeze(["/a"]);
    await kernel.entered;
    await new Promise((r) => setTimeout(r, 120));
    assertOk(f.frozen, "still frozen: the freeze has not returned");
    kernel.release();
    assertEquals(await freezing, 1);
    await until(() => !f.frozen, "the auto-thaw");
    assertEquals([...kernel.frozen], []);
    await until(() => written.some((w) => w.line.includes("thawed 1 filesystem")), "log line");
  });
});

Deno.test("fsfreeze-timeout after a frozen start: everything is thawed, as a host thaw would", async () => {
  const kernel = new FakeKernel();
  kernel.frozen.add("/a");
  await withFreezer(
    { kernel, mounts: ["/a", "/b"], timeoutSeconds: 0.05, frozen: true },
    async (f, written, state) => {
      assertOk(f.frozen);
      await until(() => !f.frozen, "the auto-thaw");
      assertEquals(kernel.calls, ["thaw /a", "thaw /b"]);
      assertOk(!state.frozenMarkerExists());
      await until(() => written.some((w) => w.line.includes("thawed 1 filesystem")), "log line");
    },
  );
});

Deno.test("no fsfreeze-timeout: frozen stays frozen (qemu-ga)", async () => {
  const kernel = new FakeKernel();
  await withFreezer({ kernel, mounts: ["/a"] }, async (f, written) => {
    let left = 0;
    f.onThawed = () => left++;
    assertEquals(await f.freeze(["/a"]), 1);
    await new Promise((r) => setTimeout(r, 100));
    assertOk(f.frozen);
    assertEquals(written, []);
    assertEquals(await f.thaw(), 1);
    assertEquals(left, 1);
  });
});

Deno.test("onLeft comes as frozen state is left, onThawed only after the thaw hook", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const events: string[] = [];
    const kernel = new FakeKernel();
    const f = new Freezer({
      log: new Logger({ verbose: true, sink: { write: (l) => events.push(`log ${l.trim()}`) } }),
      state: new StateDir(dir),
      platform: fakePlatform({
        freeze: kernel,
        mounts: () => Promise.resolve([mount("/a")]),
        run: (argv) => {
          events.push(`hook ${argv[1]}`);
          return Promise.resolve();
        },
      }),
      hook: "/hook",
    });
    f.onLeft = () => events.push("left");
    f.onThawed = () => events.push("thawed");
    assertEquals(await f.freeze(undefined), 1);
    events.length = 0;
    assertEquals(await f.thaw(), 1);
    const order = events.map((e) =>
      e.replace(/^log \S+ (\w+): .*?(re-enabled)?.*$/, "log $1 $2").trim()
    );
    assertEquals(order.indexOf("left"), 0);
    assertOk(order.indexOf("hook thaw") < order.indexOf("thawed"), order.join(" | "));
    assertEquals(order.at(-1), "thawed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
