/**
 * Hosts that hang up at the worst moment: 10 000 reconnects each leaving half a request behind
 * (the agent's RSS stays flat and the next host's resync is answered at once), and a host that disconnects
 * in the middle of a large reply (the agent survives, drops the rest and serves the next host).
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { QgaClient } from "../../lib/client/connection.ts";
import { parseStatusRssKiB } from "../../lib/client/usage.ts";
import { bytes, exec, needQemuGa, RawClient, realTest, showBytes, startAgent } from "./harness.ts";

const enc = new TextEncoder();

async function rssKiB(pid: number): Promise<number> {
  return parseStatusRssKiB(await Deno.readTextFile(`/proc/${pid}/status`));
}

async function halfRequests(path: string, n: number): Promise<void> {
  const half = enc.encode('{"execute":"guest-sync","arguments":{"id":12');
  for (let i = 0; i < n; i++) {
    // Retried while the one-deep backlog is full.
    const c = await QgaClient.connect({ unix: path }, { noSync: true, retryMs: 1 });
    await c.send(half);
    c.close();
  }
}

realTest("10 000 reconnects with half-sent requests: RSS flat, next host served", [
  needQemuGa(),
], async () => {
  const agent = await startAgent({ impl: "denoga" });
  try {
    await halfRequests(agent.socketPath, 1000); // warm: code paths compiled, pools grown
    const before = await rssKiB(agent.proc.pid);
    await halfRequests(agent.socketPath, 10_000);
    const client = await RawClient.connect(agent.socketPath);
    const t0 = performance.now();
    // The parser keeps the last half request across connections, as qemu-ga's does: the host
    // resynchronises the documented way, and the delimited reply follows the parse error.
    await client.send(bytes(0xff, exec("guest-sync-delimited", '{"id":5}')));
    assertEquals(
      (await client.recvReplies(2)).map(showBytes),
      [
        `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\\uFFFD'"}}`,
        String.raw`\xff{"return": 5}`,
      ],
    );
    const answeredMs = performance.now() - t0;
    client.close();
    const after = await rssKiB(agent.proc.pid);
    console.log(
      `RSS ${before} KiB → ${after} KiB after 10 000 reconnects; resync ${answeredMs} ms`,
    );
    // Wide margin: a leak of even 2 KiB per connection would add 20 MiB.
    assertOk(after - before < 16 * 1024, `RSS grew from ${before} to ${after} KiB`);
    assertOk(answeredMs < 2000, `the next host waited ${answeredMs} ms`);
    assertEquals(await agent.stop(), 0);
  } finally {
    await agent.dispose();
  }
});

realTest("a host that disconnects mid-reply: the agent survives and serves the next host", [
  needQemuGa(),
], async () => {
  const agent = await startAgent({ impl: "denoga" });
  try {
    const big = `${agent.dir}/big`;
    await Deno.writeFile(big, new Uint8Array(32 << 20).fill(0x61));
    for (let round = 0; round < 3; round++) {
      const c = await RawClient.connect(agent.socketPath);
      const open = await c.request(exec("guest-file-open", JSON.stringify({ path: big }))) as {
        return: number;
      };
      // A 32 MiB read is a ~43 MiB reply line: hang up while the agent is writing it.
      await c.send(exec("guest-file-read", `{"handle":${open.return},"count":${32 << 20}}`));
      await new Promise((r) => setTimeout(r, 100 * (round + 1)));
      c.close();
      const next = await RawClient.connect(agent.socketPath);
      assertEquals(await next.request(exec("guest-sync", `{"id":${round}}`)), { return: round });
      // The handle outlives the connection, as in qemu-ga.
      assertEquals(
        await next.request(exec("guest-file-close", `{"handle":${open.return}}`)),
        { return: {} },
      );
      next.close();
    }
    assertOk(!agent.hasExited(), "the agent exited");
    assertEquals(await agent.stop(), 0);
  } finally {
    await agent.dispose();
  }
});
