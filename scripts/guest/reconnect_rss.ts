/**
 * `deno run -A scripts/guest/reconnect_rss.ts [--agent=denoga|qemu-ga] [--count=10000]`: boots
 * the test guest (QEMU/TCG, scripts/guest/build.ts) and reconnects to the agent's virtio-serial
 * chardev `count` times from the host, each time sending half a request and hanging up. Every
 * 10 % it resyncs (0xFF + guest-sync-delimited) and reads the agent's own `/proc/self/stat` and
 * `/proc/self/status` through guest-file-open/read to report its RSS and CPU time in the guest
 * (issue #3: "RSS after 10 000 host reconnects with half-sent requests must stay flat"). A
 * measurement, not a test.
 *
 * `--half-request=false` only connects and closes; `--monitor=N` boots the guest with
 * `denoga.monitor=N` (the port's virtio state and the agent's threads on the console every N s,
 * printed with the console when a resync fails).
 *
 * ## Why a resync may need a second connection (both agents)
 * QEMU tells the guest about host connects and disconnects with control messages on a 32-entry
 * queue and silently drops a message when the guest has not yet handed the buffers back
 * (hw/char/virtio-serial-bus.c: "host to guest notifications can get dropped if the queue fills
 * up"). A host that connects and disconnects faster than the guest drains that queue can leave
 * the guest kernel believing no host is attached while one is: the agent reads the resync and
 * has its reply ready, but the port refuses writes (EAGAIN, POLLHUP) until the next host
 * connect delivers a fresh port-open message. Seen with denoga (a mostly idle guest lets the host
 * reconnect ~110 times/s) and with qemu-ga when no bytes are sent; qemu-ga with half requests
 * spins its write loop (100 % guest CPU), which slows QEMU down to ~45 reconnects/s and hides
 * the race. So a resync that gets no answer within 10 s is retried on a new connection, as a
 * host would, and the number of retries is reported; the reply the agent had queued arrives
 * on the new connection (skipped by id).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bootGuest, guestImage } from "../../tests/fixtures/guest/vm.ts";
import { QgaClient, QgaTimeoutError } from "../../lib/client/connection.ts";
import { agentUsage, USER_HZ } from "../../lib/client/usage.ts";
import type { GuestAgent } from "./build.ts";

const { values } = parseArgs({
  options: {
    agent: { type: "string", default: "denoga" },
    count: { type: "string", default: "10000" },
    monitor: { type: "string" },
    "half-request": { type: "string", default: "true" },
  },
});
const agent: GuestAgent = values.agent === "qemu-ga" ? "qemu-ga" : "denoga";
const count = Number(values.count);
const half = values["half-request"] !== "false";
const RESYNC_TIMEOUT_MS = 10_000;
const RESYNC_ATTEMPTS = 5;

/** The agent's VmRSS and CPU time (user + system) in the guest, read by the agent itself. */
async function usage(c: QgaClient): Promise<string> {
  const { rssKiB, cpuTicks } = await agentUsage(c);
  return `RSS ${(rssKiB / 1024).toFixed(1)} MiB, CPU ${(cpuTicks / USER_HZ).toFixed(2)} s`;
}

/** Resyncs, retrying on a new connection after a timeout; the client and the retries needed. */
async function resync(socket: string): Promise<[QgaClient, number]> {
  for (let attempt = 0;; attempt++) {
    try {
      const c = await QgaClient.connect({ unix: socket }, {
        timeoutMs: RESYNC_TIMEOUT_MS,
        waitForSocket: true,
      });
      return [c, attempt];
    } catch (e) {
      if (!(e instanceof QgaTimeoutError) || attempt + 1 >= RESYNC_ATTEMPTS) throw e;
    }
  }
}

const vm = await bootGuest(await guestImage(agent), {
  append: values.monitor ? [`denoga.monitor=${values.monitor}`] : [],
});
try {
  let [c] = await resync(vm.socket);
  console.log(`[${agent}] 0 reconnects: ${await usage(c)}`);
  c.close();
  const t0 = performance.now();
  const step = Math.max(1, Math.floor(count / 10));
  let retries = 0;
  for (let i = 1; i <= count; i++) {
    const h = await QgaClient.connect({ unix: vm.socket }, { noSync: true });
    if (half) await h.send('{"execute":"guest-pi');
    h.close();
    if (i % step === 0) {
      const rate = i / ((performance.now() - t0) / 1000);
      const [r, n] = await resync(vm.socket);
      c = r;
      retries += n;
      console.log(
        `[${agent}] ${i} reconnects (${rate.toFixed(0)}/s): ${await usage(c)}` +
          (n > 0 ? `, resync needed ${n + 1} connections` : ""),
      );
      c.close();
    }
  }
  console.log(
    `[${agent}] ${count} reconnects in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `resyncs retried on a new connection: ${retries}`,
  );
} catch (e) {
  console.log(`[${agent}] failed: ${(e as Error).message}\nguest console:\n${vm.console()}`);
  throw e;
} finally {
  await vm.dispose();
}
