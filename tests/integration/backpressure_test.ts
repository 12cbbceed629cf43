/**
 * Backpressure and memory that comes back (README, "Backpressure"): a host that writes requests
 * but does not read the replies must not make the agent queue them without limit, every reply
 * still arrives, in order, once the host reads, and the memory of such a burst is returned once
 * the agent is idle again.
 *
 * Each scenario runs against denoga and, when installed, qemu-ga 7.2; the peak (VmHWM) and
 * settled RSS of both are printed side by side.
 */

import { assertEquals, assertOk as assert } from "../assert.ts";
import { hasQemuGa, type Impl, realTest, startAgent } from "./harness.ts";
import { parseMessages } from "../../lib/protocol/streamer.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");
const MiB = 1024 * 1024;
/** How long the host does not read after sending. */
const HOLD_MS = 3000;
/** How long after the last reply the agent has to give its memory back. */
const SETTLE_MS = 10_000;
/** Peak bound for denoga, absolute (qemu-ga 7.2 needs about 140 MB for the file scenario). */
const PEAK_LIMIT = 400 * MiB;
/** Settled RSS may exceed the idle RSS by this (the goal is 10 MiB; a wide margin). */
const SETTLE_MARGIN = 20 * MiB;

/** VmRSS and VmHWM of a process, in bytes. */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)![1]);
  return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
}

/** A client that reads raw reply lines only when told to, keeping only each line's tail. */
class Host {
  readonly #conn: Deno.UnixConn;
  #partialTail = "";
  #queued: string[] = [];
  #eof = false;

  constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  static async connect(path: string): Promise<Host> {
    return new Host(await Deno.connect({ transport: "unix", path }));
  }

  async send(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.#conn.write(data.subarray(off));
  }

  /**
   * Reads until `n` lines have arrived, handing each line's last 200 bytes (its id) to `each`,
   * in order.
   */
  async lines(n: number, each: (tail: string, index: number) => void): Promise<void> {
    const buf = new Uint8Array(1024 * 1024);
    let seen = 0;
    while (this.#queued.length > 0 && seen < n) each(this.#queued.shift()!, seen++);
    while (seen < n) {
      if (this.#eof) throw new Error(`connection closed after ${seen} of ${n} lines`);
      const r = await this.#conn.read(buf);
      if (r === null) {
        this.#eof = true;
        continue;
      }
      let start = 0;
      for (;;) {
        const nl = buf.subarray(start, r).indexOf(0x0a);
        if (nl < 0) break;
        const end = start + nl;
        const tail = this.#partialTail + dec.decode(buf.subarray(Math.max(start, end - 200), end));
        this.#partialTail = "";
        if (seen < n) each(tail.slice(-200), seen++);
        else this.#queued.push(tail.slice(-200));
        start = end + 1;
      }
      if (start < r) {
        this.#partialTail =
          (this.#partialTail + dec.decode(buf.subarray(Math.max(start, r - 200), r)))
            .slice(-200);
      }
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

interface Figures {
  idle: number;
  peak: number;
  settled: number;
}

/**
 * Starts `impl`, pings it, sends `input` without reading for {@link HOLD_MS}, then reads the
 * `expected` reply lines (checked by `each`), pings again and measures the RSS after
 * {@link SETTLE_MS}. `prepare` may send requests first and returns the input.
 */
async function scenario(
  impl: Impl,
  prepare: (host: Host, dir: string) => Promise<Uint8Array>,
  expected: number,
  each: (tail: string, index: number) => void,
): Promise<Figures> {
  const agent = await startAgent({ impl });
  const host = await Host.connect(agent.socketPath);
  try {
    const ping = (id: number) => enc.encode(`{"execute":"guest-ping","id":${id}}\n`);
    await host.send(ping(1));
    await host.lines(1, (t) => assertEquals(t, '{"return": {}, "id": 1}'));
    const input = await prepare(host, agent.dir);
    // Settled in the sense of "after startup and a first request"; measured before the burst.
    const idle = (await memoryOf(agent.proc.pid)).rss;
    const sending = host.send(input);
    await new Promise((r) => setTimeout(r, HOLD_MS));
    await host.lines(expected, each);
    await sending;
    // As soon as the host reads again, a ping is answered.
    const t0 = Date.now();
    await host.send(ping(2));
    await host.lines(1, (t) => assertEquals(t, '{"return": {}, "id": 2}'));
    const pingMs = Date.now() - t0;
    assert(pingMs < 5000, `ping took ${pingMs} ms`);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const { rss: settled, peak } = await memoryOf(agent.proc.pid);
    await host.send(ping(3)); // still alive and serving the same connection
    await host.lines(1, (t) => assertEquals(t, '{"return": {}, "id": 3}'));
    return { idle, peak, settled };
  } finally {
    host.close();
    await agent.stop();
  }
}

const fmt = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

/** Runs the scenario on denoga (and qemu-ga 7.2 when present) and checks denoga's figures. */
async function sideBySide(
  what: string,
  run: (impl: Impl) => Promise<Figures>,
): Promise<void> {
  const ours = await run("denoga");
  let line = `${what}: denoga idle ${fmt(ours.idle)}, peak ${fmt(ours.peak)}, settled ${
    fmt(ours.settled)
  }`;
  if (hasQemuGa()) {
    const theirs = await run("qemu-ga");
    line += ` | qemu-ga 7.2 idle ${fmt(theirs.idle)}, peak ${fmt(theirs.peak)}, settled ${
      fmt(theirs.settled)
    }`;
  }
  console.log(line);
  assert(ours.peak < PEAK_LIMIT, `peak ${fmt(ours.peak)} ≥ ${fmt(PEAK_LIMIT)}`);
  assert(
    ours.settled < ours.idle + SETTLE_MARGIN,
    `settled ${fmt(ours.settled)} not within ${fmt(SETTLE_MARGIN)} of idle ${fmt(ours.idle)}`,
  );
}

const FILE_SIZE = 48 * MiB;
const ROUNDS = 40;

realTest(
  "backpressure: 40 × 48 MiB guest-file-read, host not reading",
  [],
  () =>
    sideBySide("file reads", (impl) =>
      scenario(
        impl,
        async (host, dir) => {
          const path = `${dir}/big`;
          const f = await Deno.open(path, { write: true, create: true });
          await f.truncate(FILE_SIZE);
          f.close();
          await host.send(enc.encode(
            `{"execute":"guest-file-open","arguments":{"path":"${path}","mode":"r"},"id":0}\n`,
          ));
          let handle = -1;
          await host.lines(1, (t) => handle = Number(/"return": (\d+)/.exec(t)![1]));
          let text = "";
          for (let i = 0; i < ROUNDS; i++) {
            text += `{"execute":"guest-file-seek","arguments":{"handle":${handle},"offset":0,` +
              `"whence":"set"},"id":${2 * i + 10}}` +
              `{"execute":"guest-file-read","arguments":{"handle":${handle},"count":${FILE_SIZE}},` +
              `"id":${2 * i + 11}}`;
          }
          return enc.encode(text);
        },
        2 * ROUNDS,
        (tail, i) => {
          const id = i + 10;
          assert(tail.endsWith(`, "id": ${id}}`), `reply ${i}: ${tail.slice(-60)}`);
          if (i % 2 === 1) assert(tail.includes('"eof": false') || tail.includes('"eof": true'));
        },
      )),
);

/** Input of `reps` × `unit`, and the number of replies QEMU's streamer makes of it. */
function repeated(unit: string, reps: number): { input: Uint8Array; replies: number } {
  // The reply count per unit comes from our parser on a small sample; qemu-ga's count is
  // checked by the same assertion when it runs.
  const perUnit = parseMessages(unit.repeat(10)).length / 10;
  return { input: enc.encode(unit.repeat(reps)), replies: perUnit * reps };
}

realTest("backpressure: megabytes of `[],`, host not reading", [], () => {
  const { input, replies } = repeated("[],", Math.floor(6 * MiB / 3));
  return sideBySide(
    "[], flood",
    (impl) =>
      scenario(impl, () => Promise.resolve(input), replies, (tail, i) => {
        const want = i % 2 === 0 ? "QMP input must be a JSON object" : "JSON parse error";
        assert(tail.includes(want), `reply ${i}: ${tail}`);
      }),
  );
});

realTest("backpressure: one request of 3 M tokens, host not reading", [], () => {
  const input = enc.encode("[" + "1,".repeat(3_000_000 - 1) + "1]");
  // Token count limit after 2 Mi tokens, then every further token is a message of its own.
  const replies = parseMessages(input).length;
  assert(replies > 1_000_000);
  return sideBySide(
    "3 M tokens",
    (impl) =>
      scenario(impl, () => Promise.resolve(input), replies, (tail) => {
        assert(tail.startsWith('{"error": ') || tail.includes('"error"'), tail);
      }),
  );
});
