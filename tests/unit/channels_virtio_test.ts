/**
 * The virtio-serial machinery (lib/channels/virtio_serial.ts over ffi/fdio.ts) against
 * stand-ins for the port: a socketpair (the host end is the peer), a FIFO read end with no
 * writer (reads 0 at once, like a port with no host attached, clients-and-peers.md §4.4), and a
 * pty master whose slave is gone (read error EIO). What must hold (§6, issue #3): reads and
 * writes interleave, a write never waits behind a pending read, a stuck peer does not block the
 * event loop, EOF backs off without spinning and without ending the connection (so the parser
 * above the seam keeps its state), a read error ends the channel, close() releases the fd.
 */

import { O_CLOEXEC, O_NONBLOCK, O_RDONLY } from "../../ffi/libc.ts";
import { virtioChannelOnFd } from "../../lib/channels/virtio_serial.ts";
import { JsonMessageParser, type MessageEvent } from "../../lib/protocol/streamer.ts";
import { assertEquals, assertOk } from "../assert.ts";
import {
  closeFd,
  cpuTicks,
  delay,
  fdOpen,
  openPty,
  openRaw,
  readExactly,
  socketPair,
  writeSyncAll,
} from "./channels_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("virtio: a write completes while a read is pending (no queueing behind the read)", async () => {
  const [agentFd, hostFd] = socketPair();
  const channel = virtioChannelOnFd(agentFd);
  const conn = await channel.accept();
  assertOk(conn);
  const buf = new Uint8Array(4096);
  const pendingRead = conn.read(buf);
  let readDone = false;
  pendingRead.then(() => (readDone = true));
  await conn.writeAll(enc.encode('{"return": {}}\n'));
  assertEquals(readDone, false, "the read must still be pending");
  assertEquals(dec.decode(await readExactly(hostFd, 15)), '{"return": {}}\n');
  writeSyncAll(hostFd, '{"execute":"guest-ping"}');
  const n = await pendingRead;
  assertEquals(dec.decode(buf.subarray(0, n ?? 0)), '{"execute":"guest-ping"}');
  channel.close();
  closeFd(hostFd);
});

Deno.test("virtio: a peer that does not drain blocks neither the event loop nor reads", async () => {
  const [agentFd, hostFd] = socketPair();
  const channel = virtioChannelOnFd(agentFd);
  const conn = await channel.accept();
  assertOk(conn);
  const big = new Uint8Array(8 * 1024 * 1024).fill(0x61);
  let written = false;
  const w = conn.writeAll(big).then(() => (written = true));
  // Timers fire while the write waits for POLLOUT on a pool thread.
  const t0 = performance.now();
  await delay(20);
  assertOk(performance.now() - t0 < 500, "event loop stalled");
  assertEquals(written, false);
  // And a read is served meanwhile.
  writeSyncAll(hostFd, "x");
  const buf = new Uint8Array(16);
  assertEquals(await conn.read(buf), 1);
  // Drain: the write then completes, every byte in order.
  const got = await readExactly(hostFd, big.length, 20000);
  await w;
  assertOk(got.every((b) => b === 0x61));
  channel.close();
  closeFd(hostFd);
});

Deno.test("virtio: writes issued together go out whole and in order", async () => {
  const [agentFd, hostFd] = socketPair();
  const channel = virtioChannelOnFd(agentFd);
  const conn = await channel.accept();
  assertOk(conn);
  const a = new Uint8Array(300_000).fill(0x41);
  const b = new Uint8Array(300_000).fill(0x42);
  const done = Promise.all([conn.writeAll(a), conn.writeAll(b)]);
  const got = await readExactly(hostFd, 600_000, 20000);
  await done;
  assertOk(got.subarray(0, 300_000).every((x) => x === 0x41));
  assertOk(got.subarray(300_000).every((x) => x === 0x42));
  channel.close();
  closeFd(hostFd);
});

Deno.test("virtio: EOF with no host attached waits for the port to change (no wake-ups, no spinning), keeps the connection and the parser state", async () => {
  const dir = Deno.makeTempDirSync();
  const fifo = `${dir}/port`;
  new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
  // A FIFO's read end with no writer reads 0 at once: the port with no host (§4.4).
  const channel = virtioChannelOnFd(openRaw(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  const conn = await channel.accept();
  assertOk(conn);
  const events: MessageEvent[] = [];
  const parser = new JsonMessageParser((ev) => events.push(ev));
  const buf = new Uint8Array(4096);
  let stop = false;
  const reader = (async () => {
    while (!stop) {
      const n = await conn.read(buf);
      if (n === null) return "null";
      parser.feed(buf.subarray(0, n));
    }
    return "stopped";
  })();

  // ~1 s with no host: CPU time of the whole process must stay small.
  await delay(100);
  const ticks0 = cpuTicks();
  const backoffs0 = channel.stream.eofBackoffs;
  const t0 = performance.now();
  await delay(1000);
  const ticks = cpuTicks() - ticks0;
  const secs = (performance.now() - t0) / 1000;
  const backoffs = channel.stream.eofBackoffs - backoffs0;
  console.log(
    `idle with no host: ${ticks} ticks CPU in ${secs.toFixed(2)} s, ${backoffs} backoffs`,
  );
  assertOk(ticks <= 2, `spinning: ${ticks} clock ticks of CPU in ~1 s`);
  // qemu-ga reads again every 100 ms; denoga waits for the next change of the port.
  assertOk(backoffs <= 1, `${backoffs} wake-ups in ~1 s with nothing changing`);

  // A host attaches, sends half a request, detaches; another sends the rest.
  let w = openRaw(fifo, 0o1 | O_NONBLOCK | O_CLOEXEC);
  writeSyncAll(w, '{"execute":');
  closeFd(w);
  await delay(300);
  assertEquals(events.length, 0);
  w = openRaw(fifo, 0o1 | O_NONBLOCK | O_CLOEXEC);
  writeSyncAll(w, '"guest-ping"}');
  closeFd(w);
  const sent = performance.now();
  for (let i = 0; i < 100 && events.length === 0; i++) await delay(10);
  assertEquals(events.length, 1);
  // Woken by the change itself, not by a timer (the safety net is 5 s).
  assertOk(performance.now() - sent < 500, "the attaching host's bytes were noticed late");
  const ev = events[0];
  assertOk(ev.kind === "value" && ev.value instanceof Map);
  assertEquals(ev.value.get("execute"), "guest-ping");

  stop = true;
  channel.close();
  assertEquals(await reader, "null", "close ends the pending read");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("virtio: a read error ends the channel (accept then resolves null) and closes the fd", async () => {
  const { master, slavePath } = openPty();
  const slave = openRaw(slavePath, 0o2 | O_NONBLOCK | O_CLOEXEC | 0o400);
  // Stand-in: the pty master reads EIO once its slave is closed.
  const channel = virtioChannelOnFd(master);
  const conn = await channel.accept();
  assertOk(conn);
  const buf = new Uint8Array(64);
  writeSyncAll(slave, "hi\n");
  const n = await conn.read(buf);
  assertOk(n !== null && n > 0);
  closeFd(slave);
  let err: unknown;
  try {
    for (;;) if ((await conn.read(buf)) === null) break;
  } catch (e) {
    err = e;
  }
  assertOk(err instanceof Error && /Input\/output error/.test(err.message), String(err));
  conn.close(); // what serve does after a failed read
  assertEquals(await channel.accept(), null);
  assertEquals(fdOpen(master), false);
});

Deno.test("virtio: close() during a pending read resolves it and releases the fd", async () => {
  const [agentFd, hostFd] = socketPair();
  const channel = virtioChannelOnFd(agentFd);
  const conn = await channel.accept();
  assertOk(conn);
  const pending = conn.read(new Uint8Array(16));
  await delay(20);
  assertOk(fdOpen(agentFd));
  channel.close();
  assertEquals(await pending, null);
  // The fd is closed once the pool thread's ppoll has returned (at once: the eventfd woke it).
  for (let i = 0; i < 50 && fdOpen(agentFd); i++) await delay(5);
  assertEquals(fdOpen(agentFd), false);
  assertEquals(await channel.accept(), null);
  closeFd(hostFd);
});
