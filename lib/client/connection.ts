/**
 * The host side of the QGA protocol: one connection to an agent's socket (unix, or vsock for
 * hosts such as Cloud Hypervisor), the `0xFF` + `guest-sync-delimited` handshake, and
 * request/reply with a deadline on every read. It imports nothing of the agent.
 *
 * @module
 */

import { type ByteConn, connectVsock } from "./vsock.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A JSON value as the client sees it; integers beyond 2^53 stay exact as `bigint`. */
export type Json = null | boolean | number | bigint | string | Json[] | { [member: string]: Json };

/** Where the agent listens. */
export type QgaAddress = { unix: string } | { vsock: { cid: number; port: number } };

/** The agent answered with an error object (e.g. CommandNotFound for a disabled command). */
export class QgaCommandError extends Error {
  /**
   * @param command the command that failed
   * @param errorClass the error's `class` member (GenericError, CommandNotFound, …)
   * @param desc the error's `desc` member, qemu-ga's exact text
   */
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`${command}: ${desc} (${errorClass})`);
    this.name = "QgaCommandError";
  }
}

/** The agent did not answer in time. */
export class QgaTimeoutError extends Error {
  /** @param what what was being waited for @param ms the timeout */
  constructor(what: string, ms: number) {
    super(`no answer to ${what} within ${ms / 1000} s`);
    this.name = "QgaTimeoutError";
  }
}

/** Options of {@link QgaClient.connect}. */
export interface ConnectOptions {
  /** How long to keep retrying a busy socket and to wait for the handshake (default 5000). */
  timeoutMs?: number;
  /** Skip the `guest-sync-delimited` handshake (default false). */
  noSync?: boolean;
  /** Pause between two connect attempts while the socket is busy (default 10). */
  retryMs?: number;
  /**
   * Also retry while the socket does not exist or refuses connections, until the timeout: a
   * QEMU chardev socket appears only once QEMU has started (default false).
   */
  waitForSocket?: boolean;
}

/** Parses one reply line (without a leading 0xFF) keeping unsafe integers exact. */
export function parseJson(text: string): Json {
  return JSON.parse(
    text,
    function (_key: string, value: unknown, context?: { source?: string }): unknown {
      if (
        typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) &&
        context?.source !== undefined && /^-?\d+$/.test(context.source)
      ) {
        return BigInt(context.source);
      }
      return value;
    },
  ) as Json;
}

/** `JSON.rawJSON` (V8 has it; TypeScript's lib does not declare it yet). */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** JSON text of `value`, `bigint`s written as their exact digits. */
export function stringifyJson(value: Json, indent?: number): string {
  return JSON.stringify(
    value,
    (_key, v) => typeof v === "bigint" ? rawJSON(v.toString()) : v,
    indent,
  );
}

/** A 32-bit random sync id, as QEMU's Python client uses. */
function randomId(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

function describe(address: QgaAddress): string {
  return "unix" in address ? address.unix : `vsock:${address.vsock.cid}:${address.vsock.port}`;
}

/** What {@link untilDeadline} gives when the deadline came first. */
const TIMED_OUT = Symbol("timed out");

/** `p`'s value, or {@link TIMED_OUT} if `deadline` (ms since the epoch) comes first. */
async function untilDeadline<T>(p: Promise<T>, deadline: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A connection to a QEMU guest agent.
 *
 * @example
 * ```ts ignore
 * const c = await QgaClient.connect({ unix: "/run/qga.sock" });
 * console.log(await c.call("guest-info"));
 * c.close();
 * ```
 */
export class QgaClient {
  readonly #conn: ByteConn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #pending: Promise<number | null> | undefined;
  /** The last write, which the next one waits for. */
  #writing: Promise<void> | undefined;
  #chunk = new Uint8Array(256 * 1024);
  #eof = false;
  #closed = false;
  /** Default reply timeout of {@link call}. */
  timeoutMs: number;

  private constructor(conn: ByteConn, timeoutMs: number) {
    this.#conn = conn;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Connects to the agent and, unless `noSync`, performs the sync handshake. The agents listen
   * with backlog 1 and serve one client at a time, so a busy socket (EAGAIN) is retried until
   * the timeout.
   */
  static async connect(address: QgaAddress, opts: ConnectOptions = {}): Promise<QgaClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    let conn: ByteConn;
    for (;;) {
      try {
        conn = "unix" in address
          ? await Deno.connect({ transport: "unix", path: address.unix })
          : await connectVsock(address.vsock.cid, address.vsock.port, timeoutMs);
        break;
      } catch (e) {
        const starting = opts.waitForSocket === true &&
          (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused);
        if ((e instanceof Deno.errors.WouldBlock || starting) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, opts.retryMs ?? 10));
          continue;
        }
        const reason = e instanceof Deno.errors.NotFound
          ? "No such file or directory"
          : e instanceof Deno.errors.WouldBlock
          ? "the agent is busy with another client"
          : (e as Error).message.replace(/ \(os error \d+\)$/, "").replace(/:.*$/, "");
        throw new Error(`cannot connect to ${describe(address)}: ${reason}`);
      }
    }
    const client = new QgaClient(conn, timeoutMs);
    if (!opts.noSync) {
      try {
        await client.sync(Math.max(1, deadline - Date.now()));
      } catch (e) {
        client.close();
        if (e instanceof QgaTimeoutError) {
          throw new QgaTimeoutError(`guest-sync-delimited at ${describe(address)}`, timeoutMs);
        }
        throw e;
      }
    }
    return client;
  }

  /**
   * Writes all of `data`, after any earlier write. With `timeoutMs`, throws
   * {@link QgaTimeoutError} when the write has not finished by then (a port nobody reads stops
   * taking bytes once its buffers are full); the write itself goes on, and later ones wait for it.
   */
  async send(data: string | Uint8Array, timeoutMs?: number, what = "a request"): Promise<void> {
    const b = typeof data === "string" ? enc.encode(data) : data;
    const before = this.#writing;
    const write = (async () => {
      await before;
      let off = 0;
      while (off < b.length) off += await this.#conn.write(b.subarray(off));
    })();
    this.#writing = write.catch(() => {});
    if (timeoutMs === undefined) return await write;
    if (await untilDeadline(write, Date.now() + timeoutMs) === TIMED_OUT) {
      throw new QgaTimeoutError(what, timeoutMs);
    }
  }

  /** Reads once more; false at EOF. Throws {@link QgaTimeoutError} at `deadline`. */
  async #fill(deadline: number, what: string, ms: number): Promise<boolean> {
    if (this.#eof) return false;
    this.#pending ??= this.#conn.read(this.#chunk);
    const n = await untilDeadline(this.#pending, deadline);
    if (n === TIMED_OUT) throw new QgaTimeoutError(what, ms);
    this.#pending = undefined;
    if (n === null) {
      this.#eof = true;
      return false;
    }
    if (this.#start > 0 && this.#end + n > this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end + n > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#end + n));
      grown.set(this.#buf.subarray(0, this.#end));
      this.#buf = grown;
    }
    this.#buf.set(this.#chunk.subarray(0, n), this.#end);
    this.#end += n;
    return true;
  }

  /**
   * Consumes the next line and returns its bytes' bounds in the buffer (valid until the next
   * read), or undefined at EOF with any unterminated bytes left in the buffer.
   */
  async #nextLine(timeoutMs: number, what: string): Promise<[number, number] | undefined> {
    const deadline = Date.now() + timeoutMs;
    let scanned = this.#start;
    for (;;) {
      const nl = this.#buf.subarray(scanned, this.#end).indexOf(0x0a);
      if (nl >= 0) {
        const start = this.#start;
        this.#start = scanned + nl + 1;
        return [start, scanned + nl];
      }
      scanned = this.#end;
      const start = this.#start;
      if (!await this.#fill(deadline, what, timeoutMs)) return undefined;
      scanned -= start - this.#start; // the buffer may have moved
    }
  }

  /** The next line's text (without `\n`), waiting until `timeoutMs`. */
  async readLine(timeoutMs: number, what = "a reply"): Promise<string> {
    const line = await this.#nextLine(timeoutMs, what);
    if (line === undefined) {
      throw new Error(`the agent closed the connection while waiting for ${what}`);
    }
    return dec.decode(this.#buf.subarray(line[0], line[1]));
  }

  /**
   * The next line's exact bytes (a leading 0xFF included, the `\n` not), or null once the agent
   * closed the connection; bytes after the last `\n` then stay in {@link pendingBytes}. Throws
   * {@link QgaTimeoutError} after `timeoutMs`.
   */
  async readLineBytes(timeoutMs: number, what = "a reply"): Promise<Uint8Array | null> {
    const line = await this.#nextLine(timeoutMs, what);
    return line === undefined ? null : this.#buf.slice(line[0], line[1]);
  }

  /** Bytes received but not yet returned as a line. */
  pendingBytes(): Uint8Array {
    return this.#buf.slice(this.#start, this.#end);
  }

  /** True once the agent closed the connection (unread bytes may remain). */
  get eof(): boolean {
    return this.#eof;
  }

  /**
   * Waits up to `timeoutMs` for input without consuming it: true when bytes are buffered,
   * false when none came in time or the agent closed the connection.
   */
  async waitForInput(timeoutMs: number): Promise<boolean> {
    if (this.#end > this.#start) return true;
    try {
      return await this.#fill(Date.now() + timeoutMs, "input", timeoutMs);
    } catch (e) {
      if (e instanceof QgaTimeoutError) return false;
      throw e;
    }
  }

  /**
   * The `0xFF` + `guest-sync-delimited` handshake: a leading 0xFF makes the agent drop any
   * half-read request; its reply is preceded by 0xFF, so everything before that (replies meant
   * for an earlier client) is skipped, and a reply with another id is skipped too.
   */
  async sync(timeoutMs = this.timeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const id = randomId();
    const request = JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } });
    await this.send(
      new Uint8Array([0xff, ...enc.encode(request)]),
      timeoutMs,
      "guest-sync-delimited",
    );
    for (;;) {
      for (;;) {
        const ff = this.#buf.subarray(this.#start, this.#end).indexOf(0xff);
        if (ff >= 0) {
          this.#start += ff + 1;
          break;
        }
        this.#start = this.#end;
        if (!await this.#fill(deadline, "guest-sync-delimited", timeoutMs)) {
          throw new Error("the agent closed the connection during guest-sync-delimited");
        }
      }
      const line = await this.readLine(
        Math.max(0, deadline - Date.now()),
        "guest-sync-delimited",
      );
      let reply: Json;
      try {
        reply = parseJson(line);
      } catch {
        continue; // a 0xFF inside something else
      }
      if (reply !== null && typeof reply === "object" && !Array.isArray(reply)) {
        if (reply.return === id) return;
        const error = reply.error as { class?: string; desc?: string } | undefined;
        if (error?.class) {
          throw new QgaCommandError("guest-sync-delimited", error.class, error.desc ?? "");
        }
      }
    }
  }

  /** Sends `execute` (with `args`) and returns the whole reply object. */
  async request(
    execute: string,
    args?: Record<string, Json>,
    timeoutMs = this.timeoutMs,
  ): Promise<{ [member: string]: Json }> {
    await this.send(stringifyJson(args === undefined ? { execute } : { execute, arguments: args }));
    for (;;) {
      const line = await this.readLine(timeoutMs, execute);
      const reply = parseJson(line.startsWith("\xff") ? line.slice(1) : line);
      if (reply !== null && typeof reply === "object" && !Array.isArray(reply)) return reply;
    }
  }

  /** {@link request}, returning the `return` member; throws {@link QgaCommandError}. */
  async call<T = Json>(
    execute: string,
    args?: Record<string, Json>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    const reply = await this.request(execute, args, timeoutMs);
    if ("error" in reply) {
      const error = reply.error as { class?: string; desc?: string };
      throw new QgaCommandError(execute, String(error?.class), String(error?.desc));
    }
    return reply.return as T;
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending?.catch(() => {});
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
