/**
 * The channel seam: a transport hands the agent one host connection at a time. unix-listen
 * yields one connection per client; virtio-serial yields the port once and keeps it open for
 * the agent's whole life. Everything above this seam is transport-agnostic.
 *
 * @module
 */

/** One host connection: bytes in, bytes out. */
export interface Connection {
  /** Reads into `buf`; resolves the byte count, or null at end of stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes all of `data`. */
  writeAll(data: Uint8Array): Promise<void>;
  /** Closes this connection (not the channel). */
  close(): void;
}

/** A transport that produces host connections one after another. */
export interface Channel {
  /** The next connection, or null once the channel is closed. */
  accept(): Promise<Connection | null>;
  /** Stops accepting. */
  close(): void;
}

/** The parts of a Deno stream resource (Deno.Conn, Deno.FsFile) a connection needs. */
export interface StreamResource {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Wraps a Deno stream resource as a Connection. */
export function connectionOf(conn: StreamResource): Connection {
  return {
    read: (buf) => conn.read(buf),
    writeAll(data) {
      // One write nearly always takes all of a reply: no async function around it then.
      return conn.write(data).then((n) => n < data.length ? writeRest(conn, data, n) : undefined);
    },
    close() {
      try {
        conn.close();
      } catch {
        // already closed
      }
    },
  };
}

async function writeRest(conn: StreamResource, data: Uint8Array, off: number): Promise<void> {
  while (off < data.length) off += await conn.write(data.subarray(off));
}
