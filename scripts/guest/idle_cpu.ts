/**
 * `deno run -A scripts/guest/idle_cpu.ts [--agent=denoga|qemu-ga] [--seconds=30]`: boots the test
 * guest (QEMU/TCG, scripts/guest/build.ts), lets the agent sit with no host attached for
 * `seconds`, and reports the CPU time it used meanwhile, read by the agent itself from
 * `/proc/self/stat` before and after (issue #3: "idle CPU of the agent with no host attached must
 * be ~0%"). With no host attached a virtio-serial read returns EOF at once; both agents sleep
 * 100 ms between reads. A measurement, not a test.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bootGuest, guestImage } from "../../tests/fixtures/guest/vm.ts";
import { QgaClient } from "../../lib/client/connection.ts";
import { readGuestText } from "../../lib/client/transfer.ts";
import { agentCpuTicks, USER_HZ } from "../../lib/client/usage.ts";
import type { GuestAgent } from "./build.ts";

const { values } = parseArgs({
  options: {
    agent: { type: "string", default: "denoga" },
    seconds: { type: "string", default: "30" },
  },
});
const agent: GuestAgent = values.agent === "qemu-ga" ? "qemu-ga" : "denoga";
const seconds = Number(values.seconds);
/** The agent's CPU time (user + system, clock ticks of 10 ms) and the guest's uptime. */
async function sample(socket: string): Promise<{ ticks: number; uptime: number }> {
  const c = await QgaClient.connect({ unix: socket }, { timeoutMs: 120_000, waitForSocket: true });
  try {
    const ticks = await agentCpuTicks(c);
    const uptime = Number((await readGuestText(c, "/proc/uptime")).split(" ")[0]);
    return { ticks, uptime };
  } finally {
    c.close();
  }
}

const vm = await bootGuest(await guestImage(agent));
try {
  const a = await sample(vm.socket);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = await sample(vm.socket);
  const cpu = (b.ticks - a.ticks) / USER_HZ;
  const wall = b.uptime - a.uptime;
  console.log(
    `[${agent}] no host for ${wall.toFixed(1)} s (guest clock): ${cpu.toFixed(2)} s of CPU ` +
      `(${((cpu / wall) * 100).toFixed(2)} % of one vCPU, including one sample's requests)`,
  );
} finally {
  await vm.dispose();
}
