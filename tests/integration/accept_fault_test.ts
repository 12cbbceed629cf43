/**
 * accept() failing on the unix-listen socket: with its descriptor limit lowered below what it
 * holds (`prlimit --pid`), the agent cannot accept a waiting client (EMFILE). qemu-ga warns and
 * keeps listening; so must denoga (it used to take any accept error for "channel closed" and
 * exit). Once the limit is raised again the waiting client is served without reconnecting.
 *
 * @module
 */

import { assertEquals, assertOk as assert } from "../assert.ts";
import {
  type Impl,
  needQemuGa,
  needQemuGaNewest,
  parseReply,
  RawClient,
  realTest,
  startAgent,
} from "./harness.ts";

/** Sets the soft descriptor limit only: raising a hard limit needs CAP_SYS_RESOURCE. */
async function prlimit(pid: number, nofile: number): Promise<void> {
  const out = await new Deno.Command("prlimit", {
    args: ["--pid", String(pid), `--nofile=${nofile}:`],
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`prlimit: ${new TextDecoder().decode(out.stderr)}`);
}

async function scenario(impl: Impl, newest: boolean): Promise<void> {
  // Warnings reach the log only with -v, as in qemu-ga.
  const agent = await startAgent({ impl, newest, args: ["-v"] });
  try {
    const first = await RawClient.connect(agent.socketPath);
    assertEquals(await first.request('{"execute":"guest-ping"}'), { return: {} });
    first.close();
    await new Promise((r) => setTimeout(r, 200)); // the agent is back in accept()
    await prlimit(agent.proc.pid, 3);
    let raised = false;
    try {
      // The kernel completes the connection in the backlog; the agent cannot take it.
      const waiting = await RawClient.connect(agent.socketPath);
      await waiting.send('{"execute":"guest-ping"}');
      await waiting.expectSilence(700);
      assert(!agent.hasExited(), `${impl} exited when accept() failed: ${agent.output()}`);
      await prlimit(agent.proc.pid, 1024);
      raised = true;
      assertEquals(parseReply(await waiting.recvLine(5000)), { return: {} });
      waiting.close();
    } finally {
      if (!raised) await prlimit(agent.proc.pid, 1024).catch(() => {});
    }
    const log = await Deno.readTextFile(agent.logPath);
    assert(
      log.includes("error converting fd to gsocket: Too many open files"),
      `${impl} log lacks the accept warning:\n${log}\n${agent.output()}`,
    );
    assertEquals(await agent.stop(), 0);
  } finally {
    await agent.dispose();
  }
}

realTest("accept() fails (EMFILE): denoga warns, keeps listening, serves the waiting client", [
  needQemuGa(),
], () => scenario("denoga", false));

realTest("accept() fails (EMFILE): qemu-ga 10.2.50 does the same (reference)", [
  needQemuGaNewest(),
], () => scenario("qemu-ga", true));
