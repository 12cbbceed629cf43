/** guest-info: the reply follows the enabled states; a kept reply is never stale. */

import { assertEquals } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { guestInfo } from "../../lib/commands/info.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import type { ReplyValue } from "../../lib/protocol/value.ts";
import { StateDir } from "../../lib/state.ts";

function agentWith(blockedRpcs: string[]): Agent {
  return new Agent({
    table: commandTable(),
    options: { blockedRpcs },
    state: new StateDir("/nonexistent"),
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({}),
  });
}

const info = (agent: Agent) => toJson(guestInfo.run({}, agent) as unknown as ReplyValue);
const enabledOf = (text: string, name: string) =>
  new RegExp(
    `"name": "${name}", [^}]*"enabled": (true|false)|"enabled": (true|false)[^}]*"name": "${name}"`,
  )
    .exec(text)!.slice(1).find((v) => v !== undefined);

Deno.test("guest-info: the same text while nothing changes; freeze and thaw show at once", () => {
  const agent = agentWith(["guest-get-time"]);
  const first = info(agent);
  assertEquals(info(agent), first);
  assertEquals(enabledOf(first, "guest-get-time"), "false");
  assertEquals(enabledOf(first, "guest-ping"), "true");
  assertEquals(enabledOf(first, "guest-file-open"), "true");
  agent.freezer.enterFrozen();
  const frozen = info(agent);
  assertEquals(enabledOf(frozen, "guest-file-open"), "false");
  assertEquals(enabledOf(frozen, "guest-ping"), "true");
  assertEquals(info(agent), frozen);
  agent.freezer.leaveFrozen();
  assertEquals(info(agent), first);
  // Another agent with other lists has its own reply
  const other = info(agentWith([]));
  assertEquals(enabledOf(other, "guest-get-time"), "true");
  assertEquals(info(agent), first);
});
