/**
 * Tests over the whole command table: whatever a family declares, every command refuses an
 * unexpected argument before it acts, is refused while frozen unless allow-listed, and is
 * registered in the newest qemu-ga's schema order.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { COMMANDS, commandTable, SCHEMA_ORDER } from "../../lib/commands/mod.ts";
import type { ArgType, Member } from "../../lib/dispatch/schema.ts";
import { Router } from "../../lib/dispatch/router.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import type { QDict, QValue } from "../../lib/protocol/value.ts";
import { StateDir } from "../../lib/state.ts";

/** qemu-ga's frozen-state allow-list (§1.2). */
const ALLOWED_WHILE_FROZEN = [
  "guest-ping",
  "guest-info",
  "guest-sync",
  "guest-sync-delimited",
  "guest-fsfreeze-status",
  "guest-fsfreeze-thaw",
];

/** A platform on which any use of the OS fails the test: commands must not get that far. */
function agent(frozen: boolean): Agent {
  return new Agent({
    table: commandTable(),
    options: { blockedRpcs: [] },
    state: new StateDir("/nonexistent"),
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({}),
    frozen,
  });
}

/** The smallest valid value of a declared argument type. */
function sample(type: ArgType): QValue {
  switch (type.kind) {
    case "int":
    case "uint64":
      return 0n;
    case "str":
      return "";
    case "bool":
      return false;
    case "number":
      return 0;
    case "enum":
      return type.values[0];
    case "list":
      return [];
    case "struct":
      return required(type.members);
    case "alternate":
      return type.scalar.kind === "int" ? 0n : false;
  }
}

function required(members: readonly Member[]): QDict {
  return new Map(members.filter((m) => !m.optional).map((m) => [m.name, sample(m.type)]));
}

async function reply(router: Router, request: QDict): Promise<string> {
  const r = await router.execute(request);
  return r === null ? "(no reply)" : typeof r === "string" ? r : new TextDecoder().decode(r);
}

Deno.test("every command refuses an unexpected argument before it acts", async () => {
  const router = new Router(agent(false));
  for (const cmd of COMMANDS) {
    const args = required(cmd.args);
    args.set("denoga-unexpected", 1n);
    const request = new Map<string, QValue>([["execute", cmd.name], ["arguments", args]]);
    const text = await reply(router, request);
    assertEquals(
      text,
      '{"error": {"class": "GenericError", "desc": "Parameter \'denoga-unexpected\' is unexpected"}}\n',
      cmd.name,
    );
  }
});

Deno.test("while frozen only the six allow-listed commands run; the rest are refused", async () => {
  const router = new Router(agent(true));
  for (const cmd of COMMANDS) {
    assertEquals(cmd.allowedWhileFrozen, ALLOWED_WHILE_FROZEN.includes(cmd.name), cmd.name);
    if (cmd.allowedWhileFrozen) continue;
    const request = new Map<string, QValue>([["execute", cmd.name]]);
    if (cmd.args.length > 0) request.set("arguments", required(cmd.args));
    assertEquals(
      await reply(router, request),
      `{"error": {"class": "CommandNotFound", "desc": "Command ${cmd.name} has been disabled: ` +
        'the command is not allowed"}}\n',
    );
  }
});

Deno.test("commands are registered in schema order; only suspend and shutdown stay silent", () => {
  assertEquals(new Set(SCHEMA_ORDER).size, 43);
  assertEquals(COMMANDS.length, 43, "every Linux command of the newest qemu-ga is registered");
  const names = COMMANDS.map((c) => c.name);
  assertEquals(names, SCHEMA_ORDER.filter((n) => names.includes(n)));
  for (const cmd of COMMANDS) {
    const silent = cmd.name === "guest-shutdown" || cmd.name.startsWith("guest-suspend-");
    assertEquals(cmd.successResponse, !silent, cmd.name);
    assertOk(cmd.summary.length > 0 && !cmd.summary.endsWith("."), cmd.name);
  }
  assertEquals(COMMANDS.filter((c) => c.resync).map((c) => c.name), [
    "guest-sync-delimited",
    "guest-sync",
  ]);
});

Deno.test("guest-info lists as enabled the ten commands KubeVirt requires", async () => {
  // KubeVirt marks an agent UnsupportedAgent unless all of these are enabled.
  const required = [
    "guest-ping",
    "guest-get-time",
    "guest-info",
    "guest-shutdown",
    "guest-network-get-interfaces",
    "guest-get-fsinfo",
    "guest-get-host-name",
    "guest-get-users",
    "guest-get-timezone",
    "guest-get-osinfo",
  ];
  const text = await reply(new Router(agent(false)), new Map([["execute", "guest-info"]]));
  for (const name of required) {
    assertOk(
      text.includes(`{"enabled": true, "name": "${name}", "success-response": `),
      `${name} enabled in ${text}`,
    );
  }
});
