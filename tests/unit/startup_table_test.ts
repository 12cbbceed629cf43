/**
 * The table the agent starts with (lib/commands/startup.ts): the sync family at once, every
 * other family when a request first needs it. Requests that need a family
 * wait their turn for it; nothing is answered out of order or as "not found" too early.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import type { Channel, Connection } from "../../lib/channels/channel.ts";
import { COMMANDS } from "../../lib/commands/mod.ts";
import { startupTable } from "../../lib/commands/startup.ts";
import { syncCommands } from "../../lib/commands/sync.ts";
import { SCHEMA_ORDER } from "../../lib/commands/order.ts";
import { type Command, CommandTable } from "../../lib/dispatch/table.ts";
import { Router, Session } from "../../lib/dispatch/router.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { JsonMessageParser } from "../../lib/protocol/streamer.ts";
import { Server } from "../../lib/serve.ts";
import { StateDir } from "../../lib/state.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

/** A table of the sync family whose rest arrives when the test says (or fails). */
function heldTable() {
  let settle!: { load: (c: readonly Command[]) => void; fail: (e: Error) => void };
  let loads = 0;
  const table = new CommandTable(syncCommands, SCHEMA_ORDER, () => {
    loads++;
    return new Promise((load, fail) => (settle = { load, fail }));
  });
  return { table, settle: () => settle, loads: () => loads };
}

async function agentWith(table: CommandTable) {
  const dir = await Deno.makeTempDir();
  const state = new StateDir(dir);
  state.load(false);
  const agent = new Agent({
    table,
    options: { blockedRpcs: [] },
    state,
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({}),
  });
  return { agent, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

function connect(agent: Agent) {
  const router = new Router(agent);
  const parser = new JsonMessageParser((ev) => router.handle(ev));
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
    text: () => writes.join(""),
    send(text: string) {
      parser.feed(enc.encode(text));
      session.flush();
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("the startup table holds the sync family, then every command in schema order", async () => {
  const table = startupTable();
  assertEquals(table.commands.map((c) => c.name), [
    "guest-sync-delimited",
    "guest-sync",
    "guest-ping",
  ]);
  const loading = table.rest();
  assertOk(loading, "the rest is still to load");
  assertOk(table.rest() === loading, "loaded once");
  await loading;
  assertEquals(table.commands.map((c) => c.name), COMMANDS.map((c) => c.name));
  assertEquals(table.commands.length, 43);
  assertEquals(table.rest(), undefined);
  assertOk(table.get("guest-get-fsinfo") !== undefined);
});

Deno.test("a request for a command not loaded yet waits its turn; later ones stay behind it", async () => {
  const held = heldTable();
  const { agent, cleanup } = await agentWith(held.table);
  try {
    const c = connect(agent);
    c.send('{"execute":"guest-sync","arguments":{"id":1}}');
    await c.session.drained();
    assertEquals(c.text(), '{"return": 1}\n', "the sync family answers at once");
    assertEquals(held.loads(), 0, "nothing asked for the rest yet");

    c.send(
      '{"execute":"guest-info","id":"i"}{"execute":"guest-nope","id":"n"}' +
        '{"execute":"guest-ping","id":"p"}',
    );
    await tick();
    assertEquals(held.loads(), 1);
    assertEquals(c.text(), '{"return": 1}\n', "nothing overtakes the waiting request");
    held.settle().load(COMMANDS);
    await c.session.idle();
    await c.session.drained();
    const lines = c.text().trimEnd().split("\n");
    assertEquals(lines.length, 4, c.text());
    const info = JSON.parse(lines[1]);
    assertEquals(info.id, "i");
    assertEquals(info.return.supported_commands.length, 43);
    assertEquals(
      lines[2],
      '{"id": "n", "error": {"class": "CommandNotFound", "desc": "The command guest-nope has not been found"}}',
    );
    assertEquals(lines[3], '{"return": {}, "id": "p"}');
    assertEquals(held.loads(), 1);
  } finally {
    await cleanup();
  }
});

Deno.test("a failed load of the rest is a GenericError for what needed it; the agent goes on", async () => {
  const held = heldTable();
  const { agent, cleanup } = await agentWith(held.table);
  try {
    const c = connect(agent);
    c.send('{"execute":"guest-get-time","id":1}');
    await tick();
    held.settle().fail(new Error("Module not found: mod-X.js"));
    await c.session.idle();
    c.send('{"execute":"guest-info","id":2}{"execute":"guest-sync","arguments":{"id":3}}');
    await c.session.idle();
    await c.session.drained();
    assertEquals(
      c.text(),
      '{"id": 1, "error": {"class": "GenericError", "desc": "Module not found: mod-X.js"}}\n' +
        '{"id": 2, "error": {"class": "GenericError", "desc": "Module not found: mod-X.js"}}\n' +
        '{"return": 3}\n',
    );
    assertEquals(held.loads(), 1, "a failed load is not retried per request");
  } finally {
    await cleanup();
  }
});

Deno.test("a server that has only answered syncs and pings has not loaded the rest", async () => {
  const held = heldTable();
  const { agent, cleanup } = await agentWith(held.table);
  let input: ((data: Uint8Array | null) => void) | undefined;
  const written: string[] = [];
  const conn: Connection = {
    read: (buf) =>
      new Promise((resolve) => {
        input = (data) => {
          if (data === null) return resolve(null);
          buf.set(data);
          resolve(data.length);
        };
      }),
    writeAll: (data) => {
      written.push(dec.decode(data));
      return Promise.resolve();
    },
    close() {},
  };
  let accepted = false;
  const channel: Channel = {
    accept: () => {
      if (accepted) return Promise.resolve(null);
      accepted = true;
      return Promise.resolve(conn);
    },
    close() {},
  };
  try {
    const served = new Server(agent, channel).run();
    while (!input) await tick();
    assertEquals(held.loads(), 0, "not before the first request");
    input(Uint8Array.from([
      0xff,
      ...enc.encode(
        '{"execute":"guest-sync-delimited","arguments":{"id":9}}\n{"execute":"guest-ping"}\n',
      ),
    ]));
    while (!written.join("").includes('{"return": {}}')) await tick();
    // qemu-ga answers the 0xFF itself with a parse error, as hosts expect.
    assertEquals(written.join("").split("\n").slice(1), [
      '\xff{"return": 9}',
      '{"return": {}}',
      "",
    ]);
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(held.loads(), 0, "idle after a handshake and a ping: nothing more loaded");
    input(enc.encode('{"execute":"guest-info"}\n'));
    while (held.loads() === 0) await tick();
    held.settle().load(COMMANDS);
    await held.table.rest();
    assertEquals(held.table.commands.length, 43);
    while (!written.join("").includes('"supported_commands"')) await tick();
    input(null);
    await served;
  } finally {
    await cleanup();
  }
});
