/**
 * `deno run -A scripts/reconnect_rss.ts [--count=10000] [--impl=denoga|qemu-ga]`: connects to a
 * fresh agent on a unix socket `count` times, each time sending half a request and hanging up,
 * and prints the agent's RSS every 10 % of the way; at the end a host resync (0xFF +
 * guest-sync-delimited) must still be answered. The RSS must stay flat (issue #3, "RSS after
 * 10 000 host reconnects with half-sent requests"). A measurement, not a test: it asserts only
 * that the agent survives and resyncs. qemu-ga 7.2 often exits (status 0) within its first few
 * such reconnects; the script then says after how many, and the next connect fails.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { QgaClient } from "../lib/client/connection.ts";
import { parseStatusRssKiB } from "../lib/client/usage.ts";
import { AGENT_RUN_FLAGS } from "./agent_flags.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "10000" },
    impl: { type: "string", default: "denoga" },
  },
});
const count = Number(values.count);
const impl = values.impl === "qemu-ga" ? "qemu-ga" : "denoga";
const root = new URL("..", import.meta.url).pathname;

function rssKiB(pid: number): number {
  return parseStatusRssKiB(Deno.readTextFileSync(`/proc/${pid}/status`));
}

const dir = await Deno.makeTempDir({ prefix: "denoga-reconnect-" });
await Deno.mkdir(`${dir}/state`);
const sock = `${dir}/qga.sock`;
const agentArgs = ["-m", "unix-listen", "-p", sock, "-t", `${dir}/state`];
const argv = impl === "qemu-ga" ? ["/usr/sbin/qemu-ga", ...agentArgs] : [
  Deno.execPath(),
  "run",
  ...AGENT_RUN_FLAGS,
  ...(Deno.env.get("DENOGA_V8_FLAGS") ? [`--v8-flags=${Deno.env.get("DENOGA_V8_FLAGS")}`] : []),
  `${root}main.ts`,
  ...agentArgs,
];
const child = new Deno.Command(argv[0], {
  args: argv.slice(1),
  stdin: "null",
  stdout: "null",
  stderr: "inherit",
}).spawn();
let done = 0;
try {
  // The agent creates its socket once started.
  const opts = { timeoutMs: 10_000, noSync: true, waitForSocket: true, retryMs: 1 };
  (await QgaClient.connect({ unix: sock }, opts)).close();
  const samples: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i <= count; i++) {
    if (i % Math.max(1, Math.floor(count / 10)) === 0) {
      samples.push(
        `${String(i).padStart(6)} reconnects: ${(rssKiB(child.pid) / 1024).toFixed(1)} MiB`,
      );
    }
    if (i === count) break;
    const c = await QgaClient.connect({ unix: sock }, opts);
    await c.send('{"execute":"guest-pi');
    c.close();
    done = i + 1;
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  // The host's resync recipe (0xFF + guest-sync-delimited, lib/client) must still work after
  // all that.
  (await QgaClient.connect({ unix: sock }, { timeoutMs: 30_000 })).close();
  console.log(samples.join("\n"));
  console.log(`${impl}: ${count} reconnects in ${seconds} s; resync after them answered`);
} finally {
  let gone = false;
  try {
    child.kill("SIGTERM");
  } catch {
    gone = true; // exited on its own: say how, and keep the error that says what failed
  }
  const status = await child.status;
  // qemu-ga 7.2 may end its main loop (exit status 0) after a client hangs up mid-request.
  if (gone) {
    console.log(
      `${impl} exited on its own after ${done} reconnects: ${
        status.signal ?? `code ${status.code}`
      }`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}
