/**
 * isa-serial (lib/channels/isa_serial.ts, ffi/termios.ts) on a pty pair: the channel opens the
 * slave as it would /dev/ttyS0, the test plays the host on the master. Raw mode as qemu-ga sets
 * it (§6), bytes pass untranslated both ways, EOF (master closed = hang-up) ends the connection
 * and the next one idles without spinning.
 */

import { tcgetattr, TERMIOS, VMIN, VTIME } from "../../ffi/termios.ts";
import { openIsaSerial } from "../../lib/channels/isa_serial.ts";
import { assertEquals, assertOk } from "../assert.ts";
import {
  closeFd,
  cpuTicks,
  delay,
  openPty,
  readExactly,
  readSyncOnce,
  writeSyncAll,
} from "./channels_helpers.ts";

function readNow(fd: number): number {
  return readSyncOnce(fd)?.length ?? -1;
}

const dec = new TextDecoder();

Deno.test("isa-serial: raw mode at 38400 baud, VMIN 1 / VTIME 0, bytes untranslated", async () => {
  const { master, slavePath } = openPty();
  const channel = openIsaSerial(slavePath);
  const t = tcgetattr(channel.stream.fd);
  const v = new DataView(t.buffer);
  assertEquals(v.getUint32(TERMIOS.lflag, true), 0, "c_lflag");
  assertEquals(v.getUint32(TERMIOS.oflag, true), 0, "c_oflag");
  assertEquals(v.getUint32(TERMIOS.iflag, true) & 0o2400, 0, "ICRNL and IXON cleared");
  assertEquals(v.getUint32(TERMIOS.cflag, true) & 0o10017, 0o17, "CBAUD = B38400");
  assertEquals(v.getUint32(TERMIOS.cflag, true) & 0o60, 0o60, "CS8");
  assertEquals(t[TERMIOS.cc + VMIN], 1);
  assertEquals(t[TERMIOS.cc + VTIME], 0);
  assertEquals(v.getUint32(56, true), 0o17, "c_ospeed");

  const conn = await channel.accept();
  assertOk(conn);
  const buf = new Uint8Array(256);
  const pending = conn.read(buf);
  // Reply while the read is pending; \n must not become \r\n (no OPOST).
  await conn.writeAll(new TextEncoder().encode('{"return": {}}\n'));
  assertEquals(dec.decode(await readExactly(master, 15)), '{"return": {}}\n');
  // \r must not become \n (no ICRNL), no echo back to the host (no ECHO).
  writeSyncAll(master, '{"execute":"guest-ping"}\r');
  const n = await pending;
  assertEquals(dec.decode(buf.subarray(0, n ?? 0)), '{"execute":"guest-ping"}\r');
  // Nothing came back to the host: no echo.
  await delay(20);
  assertEquals(readNow(master), 0);
  channel.close();
  closeFd(master);
});

Deno.test("isa-serial: hang-up ends the connection; the next one idles at ~0 CPU", async () => {
  const { master, slavePath } = openPty();
  const channel = openIsaSerial(slavePath);
  const conn = await channel.accept();
  assertOk(conn);
  const buf = new Uint8Array(256);
  writeSyncAll(master, "abc");
  assertEquals(await conn.read(buf), 3);
  closeFd(master); // the line hangs up: reads on the slave return 0
  assertEquals(await conn.read(buf), null);
  conn.close();
  assertOk(channel.stream.fd >= 0, "the tty stays open");
  const next = await channel.accept();
  assertOk(next);
  let settled = false;
  next.read(buf).then(() => (settled = true), () => (settled = true));
  await delay(100);
  const t0 = cpuTicks();
  await delay(1000);
  const ticks = cpuTicks() - t0;
  console.log(`isa-serial idle after hang-up: ${ticks} ticks in 1 s`);
  assertOk(ticks <= 5, `spinning: ${ticks} ticks`);
  assertEquals(settled, false, "the idle connection waits");
  channel.close();
  await delay(20);
  assertEquals(settled, true);
});
