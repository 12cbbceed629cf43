import { assertEquals } from "../assert.ts";
import { execTable, guestExec, guestExecStatus, MAX_UNQUERIED } from "../../lib/commands/exec.ts";
import type { Agent } from "../../lib/agent.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { Policy } from "../../lib/policy.ts";
import type { ExecOutcome, ExecRequest } from "../../lib/platform/exec.ts";

const none = { data: new Uint8Array(0), truncated: false };

/** An agent whose exec facet hands out pids 100, 101, ... that finish when told to. */
function fakeAgent() {
  const finishers: ((o: ExecOutcome) => void)[] = [];
  const requests: ExecRequest[] = [];
  let next = 100;
  const agent = {
    log: { debug() {} },
    policy: new Policy({}, fakePlatform({}).os),
    platform: fakePlatform({
      exec: {
        spawn: (req: ExecRequest) => {
          requests.push(req);
          const finished = new Promise<ExecOutcome>((r) => finishers.push(r));
          return Promise.resolve({ pid: next++, finished });
        },
      },
    }),
  } as unknown as Agent;
  return { agent, finishers, requests };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("exec: capture-output forms map to modes", async () => {
  const { agent, requests } = fakeAgent();
  const forms = [
    undefined,
    { branch: "scalar", value: true },
    { branch: "scalar", value: false },
    { branch: "enum", value: "merged" },
  ] as const;
  for (const co of forms) await guestExec.run({ path: "x", "capture-output": co }, agent);
  assertEquals(requests.map((r) => r.capture), ["none", "separated", "none", "merged"]);
});

Deno.test("exec: running, finished once, then unknown", async () => {
  const { agent, finishers } = fakeAgent();
  await guestExec.run({ path: "x" }, agent);
  assertEquals(await guestExecStatus.run({ pid: 100n }, agent), { exited: false });
  finishers[0]({ exitcode: 0, out: { data: Uint8Array.of(65), truncated: false }, err: none });
  await tick();
  const done = await guestExecStatus.run({ pid: 100n }, agent) as Record<string, unknown>;
  assertEquals(done.exited, true);
  assertEquals(done["out-truncated"], false);
  assertEquals(done["err-data"], undefined);
  let text = "";
  try {
    await guestExecStatus.run({ pid: 100n }, agent);
  } catch (e) {
    text = (e as Error).message;
  }
  assertEquals(text, "PID ld does not exist");
});

Deno.test("exec: finished unqueried records are bounded, oldest dropped, running kept", async () => {
  const { agent, finishers } = fakeAgent();
  const n = MAX_UNQUERIED + 3;
  for (let i = 0; i < n; i++) await guestExec.run({ path: "x" }, agent);
  // The first child keeps running; all others finish.
  for (let i = 1; i < n; i++) finishers[i]({ exitcode: i, out: none, err: none });
  await tick();
  assertEquals(execTable(agent).size, MAX_UNQUERIED + 1);
  assertEquals(await guestExecStatus.run({ pid: 100n }, agent), { exited: false });
  let text = "";
  try {
    await guestExecStatus.run({ pid: 101n }, agent);
  } catch (e) {
    text = (e as Error).message;
  }
  assertEquals(text, "PID ld does not exist");
  const last = await guestExecStatus.run({ pid: BigInt(100 + n - 1) }, agent);
  assertEquals((last as Record<string, unknown>).exitcode, n - 1);
});
