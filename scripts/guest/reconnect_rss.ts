/**
 * `deno run -A scripts/guest/reconnect_rss.ts [--agent=denoga|qemu-ga] [--count=10000]`: boots
 * the test guest (QEMU/TCG, scripts/guest/build.ts) and reconnects to the agent's virtio-serial
 * chardev `count` times from the host, each time sending half a request and hanging up. Every
 * 10 % it resyncs (0xFF + guest-sync-delimited) and reads the agent's own `/proc/self/status`
 * through guest-file-open/read to report its RSS in the guest (issue #3: "RSS after 10 000 host
 * reconnects with half-sent requests must stay flat"). A measurement, not a test.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bootGuest, guestImage } from "../../tests/fixtures/guest/vm.ts";
import { QgaRawClient } from "../../tests/fixtures/guest/qga_client.ts";
import type { GuestAgent } from "./build.ts";

const { values } = parseArgs({
  options: {
    agent: { type: "string", default: "denoga" },
    count: { type: "string", default: "10000" },
  },
});
const agent: GuestAgent = values.agent === "qemu-ga" ? "qemu-ga" : "denoga";
const count = Number(values.count);

/** The agent's VmRSS in the guest, read by the agent itself. */
async function guestRss(c: QgaRawClient): Promise<string> {
  const h = await c.call<number>("guest-file-open", { path: "/proc/self/status" });
  const r = await c.call<{ "buf-b64": string }>("guest-file-read", { handle: h, count: 8192 });
  await c.call("guest-file-close", { handle: h });
  const text = new TextDecoder().decode(Uint8Array.fromBase64(r["buf-b64"]));
  const kib = Number(/VmRSS:\s+(\d+)/.exec(text)?.[1]);
  return `${(kib / 1024).toFixed(1)} MiB`;
}

async function resync(socket: string, id: number): Promise<QgaRawClient> {
  const c = await QgaRawClient.connect(socket);
  await c.syncDelimited(id, 60_000);
  return c;
}

const vm = await bootGuest(await guestImage(agent));
try {
  let c = await resync(vm.socket, 1);
  console.log(`[${agent}] 0 reconnects: ${await guestRss(c)}`);
  c.close();
  const t0 = performance.now();
  const step = Math.max(1, Math.floor(count / 10));
  for (let i = 1; i <= count; i++) {
    const h = await QgaRawClient.connect(vm.socket);
    await h.send('{"execute":"guest-pi');
    h.close();
    if (i % step === 0) {
      c = await resync(vm.socket, i + 1);
      console.log(`[${agent}] ${i} reconnects: ${await guestRss(c)}`);
      c.close();
    }
  }
  console.log(
    `[${agent}] ${count} reconnects in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
} catch (e) {
  console.log(`[${agent}] failed: ${(e as Error).message}\nguest console:\n${vm.console()}`);
  throw e;
} finally {
  await vm.dispose();
}
