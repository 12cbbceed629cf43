/**
 * lib/channels/mod.ts: qemu-ga's error texts for methods and paths (§5.1), vsock address
 * parsing (util/qemu-sockets.c), socket-activation checks and the family of a listening fd,
 * and `-r/--retry-path` (§6) reopening a channel with qemu-ga's log lines.
 */

import { listenFdMethod, parseVsockAddress } from "../../lib/channels/listen_fd.ts";
import { openChannel, socketActivation } from "../../lib/channels/mod.ts";
import { assertEquals, assertOk, assertRejects, assertThrows } from "../assert.ts";
import { closeFd, delay, openPty, socketPair, writeSyncAll } from "./channels_helpers.ts";

const enc = new TextEncoder();

function memoryLog() {
  const lines: string[] = [];
  return {
    lines,
    critical: (m: string) => lines.push(`critical: ${m}`),
    warning: (m: string) => lines.push(`warning: ${m}`),
    info: (m: string) => lines.push(`info: ${m}`),
  };
}

function rejectsText(fn: () => Promise<unknown>, text: string): Promise<void> {
  return assertRejects(fn, (e) => {
    assertEquals((e as Error).message, text);
    return true;
  });
}

function throwsText(fn: () => unknown, text: string): void {
  assertThrows(fn, (e) => {
    assertEquals((e as Error).message, text);
    return true;
  });
}

Deno.test("openChannel: qemu-ga's texts for bad methods and missing paths", async () => {
  const log = memoryLog();
  await rejectsText(
    () => openChannel({ method: "tcp", log }),
    "unsupported channel method/type: tcp",
  );
  await rejectsText(
    () => openChannel({ method: "unix-listen", log }),
    "must specify a path for this channel",
  );
  await rejectsText(
    () => openChannel({ method: "vsock-listen", log }),
    "must specify a path for this channel",
  );
  await rejectsText(
    () => openChannel({ method: "virtio-serial", path: "/nonexistent/port", log }),
    "error opening channel '/nonexistent/port': No such file or directory",
  );
  await rejectsText(
    () => openChannel({ method: "isa-serial", path: "/nonexistent/tty", log }),
    "error opening channel '/nonexistent/tty': No such file or directory",
  );
  // Configuration errors are thrown even with --retry-path.
  await rejectsText(
    () => openChannel({ method: "bogus", retryPath: true, log }),
    "unsupported channel method/type: bogus",
  );
  assertEquals(log.lines, []);
});

Deno.test("vsock address syntax: qemu-ga's texts", async () => {
  assertEquals(parseVsockAddress("3:1234"), { cid: 3, port: 1234 });
  assertEquals(parseVsockAddress("4294967295:4294967295"), { cid: 0xffffffff, port: 0xffffffff });
  throwsText(() => parseVsockAddress("1234"), "error parsing address '1234'");
  throwsText(() => parseVsockAddress(":1234"), "error parsing address ':1234'");
  throwsText(() => parseVsockAddress("3:"), "error parsing address '3:'");
  throwsText(() => parseVsockAddress("3:4,x"), "trailing characters in address '3:4,x'");
  throwsText(() => parseVsockAddress("x:4"), "Failed to parse cid 'x'");
  throwsText(() => parseVsockAddress("-1:4"), "Failed to parse cid '-1'");
  throwsText(() => parseVsockAddress("3:4294967296"), "Failed to parse port '4294967296'");
  throwsText(() => parseVsockAddress("3:4:5"), "Failed to parse port '4:5'");
  const log = memoryLog();
  await rejectsText(
    () => openChannel({ method: "vsock-listen", path: "nope", log }),
    "error parsing address 'nope'",
  );
});

Deno.test("socket activation: LISTEN_PID/LISTEN_FDS checks and environment cleanup", async () => {
  const env = (vars: Record<string, string>) => {
    const m = new Map(Object.entries(vars));
    return { m, get: (k: string) => m.get(k), delete: (k: string) => void m.delete(k) };
  };
  assertEquals(await socketActivation(env({}), 42), 0);
  assertEquals(await socketActivation(env({ LISTEN_PID: "41", LISTEN_FDS: "1" }), 42), 0);
  assertEquals(await socketActivation(env({ LISTEN_PID: "42x", LISTEN_FDS: "1" }), 42), 0);
  assertEquals(await socketActivation(env({ LISTEN_PID: "42" }), 42), 0);
  // LISTEN_FDS 0: accepted, and the variables are removed (no fcntl on unknown fds).
  const e = env({ LISTEN_PID: "42", LISTEN_FDS: "0", LISTEN_FDNAMES: "x" });
  assertEquals(await socketActivation(e, 42), 0);
  assertEquals([...e.m.keys()], [], "LISTEN_* removed");
  // An fd that is not open: qemu-ga's text.
  await rejectsText(
    () => socketActivation(env({ LISTEN_PID: "42", LISTEN_FDS: "1000" }), 42),
    `Socket activation failed: invalid file descriptor fd = ${firstClosedFd()}: Bad file descriptor`,
  );
});

/** The first fd from 3 up that is not open (socketActivation stops there). */
function firstClosedFd(): number {
  for (let fd = 3;; fd++) {
    try {
      Deno.readLinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return fd;
    }
  }
}

Deno.test("listen fd family: unix → unix-listen; pipes, ttys and TCP → unsupported", async () => {
  const [a, b] = socketPair();
  assertEquals(listenFdMethod(a), "unix-listen");
  const { master } = openPty();
  assertEquals(listenFdMethod(master), null);
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tcpFd = [...Deno.readDirSync("/proc/self/fd")]
    .map((e) => Number(e.name))
    .find((fd) => {
      try {
        return /^socket:/.test(Deno.readLinkSync(`/proc/self/fd/${fd}`)) &&
          listenFdMethod(fd) === null;
      } catch {
        return false;
      }
    });
  assertOk(tcpFd !== undefined, "an AF_INET socket fd");
  const log = memoryLog();
  await rejectsText(
    () => openChannel({ method: "virtio-serial", listenFd: master, log }),
    "unsupported listen fd type",
  );
  tcp.close();
  closeFd(a);
  closeFd(b);
  closeFd(master);
});

Deno.test("--retry-path: failed opens and ended channels are retried with qemu-ga's log lines", async () => {
  const dir = Deno.makeTempDirSync();
  const port = `${dir}/port`;
  const log = memoryLog();
  const channel = await openChannel({
    method: "virtio-serial",
    path: port,
    retryPath: true,
    log,
    retryIntervalMs: 100,
  });
  assertEquals(log.lines, [
    `critical: error opening channel '${port}': No such file or directory`,
    "critical: failed to create guest agent channel",
    "info: failed to initialize guest agent channel, will retry",
  ]);
  const accepting = channel.accept();
  await delay(150);
  // The port appears (a pty slave stands in for it through a symlink).
  const { master, slavePath } = openPty();
  Deno.symlinkSync(slavePath, port);
  const conn = await accepting;
  assertOk(conn);
  assertEquals(log.lines.slice(3, 8), [
    `critical: error opening channel '${port}': No such file or directory`,
    "critical: failed to create guest agent channel",
    "critical: failed to initialize guest agent channel",
    "warning: agent stopped unexpectedly, restarting...",
    "warning: waiting for channel path...",
  ]);
  const buf = new Uint8Array(64);
  writeSyncAll(master, "x\n"); // canonical mode: virtio-serial sets no termios
  assertEquals(await conn.read(buf), 2);
  await conn.writeAll(enc.encode("y"));
  // End the channel's main loop as serve does after a read error: close the connection.
  conn.close();
  const before = log.lines.length;
  const again = channel.accept(); // the ended channel is reopened after the interval
  const conn2 = await again;
  assertOk(conn2);
  assertEquals(log.lines.slice(before), [
    "warning: agent stopped unexpectedly, restarting...",
    "warning: waiting for channel path...",
  ]);
  channel.close();
  assertEquals(await channel.accept(), null);
  closeFd(master);
  Deno.removeSync(dir, { recursive: true });
});
