/**
 * virtio-serial (§6), first cut: the port is opened once and yielded as a single connection
 * that lasts for the agent's life. While no host client is attached the port reads EOF at
 * once; we back off 100 ms like qemu-ga instead of spinning, and never close the port.
 *
 * Known limit, replaced by the FFI/poll transport of issue #3: replies use a synchronous
 * write, because an async write on the same Deno file would queue behind the pending read.
 *
 * @module
 */

import type { Channel, Connection } from "./channel.ts";

const EOF_BACKOFF_MS = 100;

/**
 * Opens the virtio-serial port at `path`.
 *
 * @example
 * ```ts
 * const channel = openVirtioSerial("/dev/virtio-ports/org.qemu.guest_agent.0");
 * ```
 */
export function openVirtioSerial(path: string): Channel {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write: true });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/ \(os error \d+\).*$/s, "");
    throw new Error(`error opening channel '${path}': ${msg}`);
  }
  let handedOut = false;
  let closed = false;
  const conn: Connection = {
    async read(buf) {
      for (;;) {
        if (closed) return null;
        const n = await file.read(buf);
        if (n !== null && n > 0) return n;
        await new Promise((r) => setTimeout(r, EOF_BACKOFF_MS));
      }
    },
    writeAll(data) {
      let off = 0;
      while (off < data.length) off += file.writeSync(data.subarray(off));
      return Promise.resolve();
    },
    close() {},
  };
  return {
    accept() {
      if (handedOut || closed) return Promise.resolve(null);
      handedOut = true;
      return Promise.resolve(conn);
    },
    close() {
      closed = true;
    },
  };
}
