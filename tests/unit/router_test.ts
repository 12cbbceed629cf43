/**
 * The router with the real protocol engine and command table, over a fake OS whose freeze
 * can be held "stuck in the kernel" as long as a test likes.
 */

import { assertEquals, assertOk } from "../assert.ts";
import type { FreezeOutcome, FreezeSyscalls } from "../../ffi/fsfreeze.ts";
import type { OsPath } from "../../ffi/libc.ts";
import { Agent } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { RESYNC_GRACE_MS, Router, Session } from "../../lib/dispatch/router.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { JsonMessageParser } from "../../lib/protocol/streamer.ts";
import { StateDir } from "../../lib/state.ts";

/** A freeze that does not return until the test releases it. */
class StuckFreeze implements FreezeSyscalls {
  calls: string[] = [];
  #release: (() => void) | undefined;
  readonly entered: Promise<void>;
  #entered!: () => void;

  constructor() {
    this.entered = new Promise((r) => (this.#entered = r));
  }

  freeze(mountpoint: OsPath): Promise<FreezeOutcome> {
    this.calls.push(`freeze ${String(mountpoint)}`);
    this.#entered();
    return new Promise((resolve) => (this.#release = () => resolve({ ok: true })));
  }

  thaw(mountpoint: OsPath): Promise<boolean> {
    this.calls.push(`thaw ${String(mountpoint)}`);
    return Promise.resolve(false);
  }

  release(): void {
    this.#release?.();
  }
}

async function harness(freeze: FreezeSyscalls) {
  const dir = await Deno.makeTempDir();
  const state = new StateDir(dir);
  state.load(false);
  const agent = new Agent({
    table: commandTable(),
    options: { blockedRpcs: [] },
    state,
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({
      freeze,
      mounts: () =>
        Promise.resolve([{
          dirname: "/fake",
          path: new TextEncoder().encode("/fake"),
          devtype: "ext4",
          devmajor: 8,
          devminor: 1,
        }]),
      run: () => Promise.resolve(),
      isExecutable: () => false,
    }),
  });
  const router = new Router(agent);
  const parser = new JsonMessageParser((ev) => router.handle(ev));
  const enc = new TextEncoder();
  const dec = new TextDecoder("latin1");

  function connect() {
    const writes: string[] = [];
    const session = new Session({
      writeAll(data) {
        writes.push(dec.decode(data));
        return Promise.resolve();
      },
    });
    router.attach(session);
    return {
      session,
      writes,
      send(text: string) {
        parser.feed(enc.encode(text));
        session.flush();
      },
      text: () => writes.join(""),
      async waitFor(fragment: string) {
        while (!writes.join("").includes(fragment)) await new Promise((r) => setTimeout(r, 5));
      },
    };
  }
  return { agent, connect, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

/** Runs `fn` against a fresh agent whose freezes stick until released, then cleans up. */
async function withStuckFreeze(
  fn: (h: Awaited<ReturnType<typeof harness>>, freeze: StuckFreeze) => Promise<void>,
): Promise<void> {
  const freeze = new StuckFreeze();
  const h = await harness(freeze);
  try {
    await fn(h, freeze);
  } finally {
    await h.cleanup();
  }
}

Deno.test("pipelined requests are answered in order, coalesced into one write", async () => {
  await withStuckFreeze(async (h) => {
    const c = h.connect();
    c.send('{"execute":"guest-ping","id":1}{"execute":"guest-sync","arguments":{"id":2}}nul}');
    await c.session.drained();
    assertEquals(c.writes, [
      '{"return": {}, "id": 1}\n{"return": 2}\n' +
      '{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword \'nul\'"}}\n' +
      '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}\n',
    ]);
  });
});

Deno.test("while a freeze is stuck in the kernel, later replies wait their turn", async () => {
  await withStuckFreeze(async (h, freeze) => {
    const c = h.connect();
    c.send('{"execute":"guest-fsfreeze-freeze","id":"f"}{"execute":"guest-ping","id":"p"}');
    await freeze.entered;
    assertEquals(c.text(), "");
    assertOk(h.agent.freezer.frozen, "frozen state is entered before the first ioctl");
    freeze.release();
    await c.waitFor('"id": "p"');
    assertEquals(c.text(), '{"return": 1, "id": "f"}\n{"return": {}, "id": "p"}\n');
  });
});

Deno.test("a resync leaves a stuck freeze behind and is answered", async () => {
  await withStuckFreeze(async (h, freeze) => {
    const c = h.connect();
    c.send('{"execute":"guest-fsfreeze-freeze","id":"f"}');
    await freeze.entered;
    const t0 = performance.now();
    c.send('\xff{"execute":"guest-sync-delimited","arguments":{"id":7}}');
    c.send('{"execute":"guest-fsfreeze-status"}');
    await c.waitFor('"return": "frozen"');
    assertOk(performance.now() - t0 >= RESYNC_GRACE_MS - 50, "the grace period was honoured");
    // The parse-error reply for 0xFF was queued behind the freeze and was dropped with it.
    assertEquals(c.text(), '\xff{"return": 7}\n{"return": "frozen"}\n');
    // The freeze finishing later does not reorder or add replies.
    freeze.release();
    c.send('{"execute":"guest-fsfreeze-thaw"}');
    await c.waitFor('{"return": 0}');
    assertEquals(c.text(), '\xff{"return": 7}\n{"return": "frozen"}\n{"return": 0}\n');
    assertEquals(h.agent.freezer.frozen, false);
  });
});

Deno.test("a command that finishes within the grace period keeps its reply", async () => {
  await withStuckFreeze(async (h, freeze) => {
    const c = h.connect();
    c.send('{"execute":"guest-fsfreeze-freeze"}');
    await freeze.entered;
    c.send('{"execute":"guest-sync","arguments":{"id":3}}');
    freeze.release();
    await c.waitFor('"return": 3');
    assertEquals(c.text(), '{"return": 1}\n{"return": 3}\n');
    c.send('{"execute":"guest-fsfreeze-thaw"}');
    await c.waitFor('"return": 0');
  });
});

Deno.test("a new connection is not held up by the old connection's stuck command", async () => {
  await withStuckFreeze(async (h, freeze) => {
    const old = h.connect();
    old.send('{"execute":"guest-fsfreeze-freeze"}');
    await freeze.entered;
    old.session.close();
    const c = h.connect();
    c.send('{"execute":"guest-ping"}{"execute":"guest-fsfreeze-status"}');
    await c.session.drained();
    assertEquals(c.text(), '{"return": {}}\n{"return": "frozen"}\n');
    freeze.release();
    c.send('{"execute":"guest-fsfreeze-thaw"}');
    await c.waitFor('"return": 0');
    assertEquals(old.text(), "");
  });
});

Deno.test("frozen state disables everything but the allow-list", async () => {
  await withStuckFreeze(async (h, freeze) => {
    const c = h.connect();
    c.send('{"execute":"guest-fsfreeze-freeze"}');
    await freeze.entered;
    freeze.release();
    await c.waitFor('{"return": 1}');
    c.send(
      '{"execute":"guest-file-open","arguments":{"path":"/x"}}{"execute":"guest-fsfreeze-freeze"}',
    );
    await c.session.drained();
    assertEquals(
      c.text(),
      '{"return": 1}\n' +
        '{"error": {"class": "CommandNotFound", "desc": "Command guest-file-open has been disabled: the command is not allowed"}}\n' +
        '{"error": {"class": "CommandNotFound", "desc": "Command guest-fsfreeze-freeze has been disabled: the command is not allowed"}}\n',
    );
  });
});

Deno.test("a repeated request is checked against the agent's state each time", async () => {
  await withStuckFreeze(async (h, freeze) => {
    const c = h.connect();
    // The same bytes each time: the second and third arrive as the remembered message.
    const read = '{"execute":"guest-file-read","arguments":{"handle":5},"id":5}';
    c.send(read + read);
    await c.session.drained();
    const notFound =
      '{"id": 5, "error": {"class": "GenericError", "desc": "handle \'5\' has not been found"}}\n';
    c.send('{"execute":"guest-fsfreeze-freeze"}');
    await freeze.entered;
    freeze.release();
    await c.waitFor('{"return": 1}');
    c.send(read);
    await c.session.drained();
    assertEquals(
      c.text(),
      notFound + notFound + '{"return": 1}\n' +
        '{"id": 5, "error": {"class": "CommandNotFound", "desc": "Command guest-file-read has been disabled: the command is not allowed"}}\n',
    );
  });
});
