/**
 * The agent's main loop: each host connection's bytes go through the (agent-wide) message
 * parser into the router; replies go back in order. The parser is not reset between
 * connections, as in qemu-ga (§2.1): hosts resync with 0xFF + guest-sync-delimited.
 *
 * @module
 */

import type { Channel } from "./channels/channel.ts";
import { Router, Session } from "./dispatch/router.ts";
import { JsonMessageParser } from "./protocol/streamer.ts";
import type { Agent } from "./agent.ts";
import { releaseMemory } from "./memory.ts";

/** Bytes read per call; larger than qemu-ga's 4096 so big requests cost fewer wakeups. */
const READ_SIZE = 256 * 1024;
/** How long replies to requests still running at end of input are waited for. */
const EOF_GRACE_MS = 2000;
/** Bytes read plus written after which going quiet gives memory back. */
const BURST_BYTES = 8 * 1024 * 1024;
/** How long the agent has to stay quiet before memory is given back. */
const RELEASE_DELAY_MS = 1000;

function settleWithin(p: Promise<void>, ms: number): Promise<void> {
  let id: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (id = setTimeout(resolve, ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(id));
}

/**
 * Serves connections from a channel until it closes.
 *
 * @example
 * ```ts
 * await new Server(agent, openUnixListen("/tmp/qga.sock")).run();
 * ```
 */
export class Server {
  readonly #agent: Agent;
  readonly #channel: Channel;
  #session: Session | undefined;
  /** Bytes read and written since memory was last given back. */
  #burst = 0;
  #releaseTimer: ReturnType<typeof setTimeout> | undefined;
  /** When everything was last written with no request left (performance.now()). */
  #lastQuiet = 0;

  constructor(agent: Agent, channel: Channel) {
    this.#agent = agent;
    this.#channel = channel;
  }

  /** Resolves once every reply that is ready has been written to the current client. */
  async drained(): Promise<void> {
    await this.#session?.drained();
  }

  /**
   * After a burst, gives memory back once no reply has been written for a while. One timer
   * runs at a time and, when it fires, waits out the rest of the delay counted from the last
   * quiet moment, rather than being re-armed at each (a sequence of small requests after a
   * burst would pay a timer per request).
   */
  #quiet(written: number): void {
    this.#burst += written;
    if (this.#burst < BURST_BYTES) return;
    this.#lastQuiet = performance.now();
    if (this.#releaseTimer === undefined) this.#armRelease(RELEASE_DELAY_MS);
  }

  #armRelease(ms: number): void {
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      if (this.#session?.busy) return; // the next quiet moment re-arms it
      const left = this.#lastQuiet + RELEASE_DELAY_MS - performance.now();
      if (left > 1) return this.#armRelease(left);
      this.#burst = 0;
      void releaseMemory();
    }, ms);
    Deno.unrefTimer(this.#releaseTimer);
  }

  /** Accepts and serves connections, one at a time, until the channel closes. */
  async run(): Promise<void> {
    const agent = this.#agent;
    const router = new Router(agent);
    // Backpressure: input is only lexed while the session's backlog is under its bound, so a
    // host that writes but does not read cannot make the agent queue replies without limit.
    const parser = new JsonMessageParser(
      (ev) => router.handle(ev),
      () => this.#session?.overloaded ?? false,
    );
    // Two buffers: while the rest of one chunk waits for the backlog to drain, one read ahead
    // goes into the other.
    const bufs = [new Uint8Array(READ_SIZE), new Uint8Array(READ_SIZE)];
    for (;;) {
      const conn = await this.#channel.accept();
      if (!conn) return;
      const session = new Session(conn, (written) => this.#quiet(written));
      this.#session = session;
      router.attach(session);
      let which = 0;
      const readNext = (): Promise<Uint8Array | null> => {
        const b = bufs[which];
        which ^= 1;
        return conn.read(b).then((n) => n === null ? null : b.subarray(0, n));
      };
      let ahead: Promise<Uint8Array | null> | undefined;
      let aheadEnded = false;
      let aheadSettled = false;
      // Waits while the session is overloaded. One read goes ahead meanwhile, so a host that
      // hangs up (and reconnects) is noticed even when no write is pending to fail.
      const waitForRoom = async () => {
        while (session.overloaded) {
          if (!ahead) {
            aheadSettled = aheadEnded = false;
            ahead = readNext().then((d) => {
              aheadSettled = true;
              aheadEnded = d === null;
              return d;
            }, () => {
              aheadSettled = aheadEnded = true;
              return null;
            });
          }
          await (aheadSettled ? session.relieved() : Promise.race([session.relieved(), ahead]));
          // The host is gone: drop its replies (as on any disconnect) so the rest of the
          // input only moves the parser on.
          if (aheadEnded) session.close();
        }
      };
      try {
        for (;;) {
          if (session.overloaded) await waitForRoom();
          let data: Uint8Array | null;
          if (ahead) {
            data = await ahead;
            ahead = undefined;
          } else {
            // The common case, without readNext's extra promise.
            const b = bufs[which];
            which ^= 1;
            const n = await conn.read(b);
            data = n === null ? null : b.subarray(0, n);
          }
          if (data === null) break;
          this.#burst += data.length;
          let off = 0;
          for (;;) {
            off += parser.feed(off === 0 ? data : data.subarray(off));
            session.flush();
            if (off >= data.length) break;
            // The rest of the chunk waits until the host has read enough replies.
            await waitForRoom();
          }
        }
      } catch (e) {
        agent.log.debug(`channel read failed: ${e instanceof Error ? e.message : e}`);
      }
      // The client may have only shut down its sending side (socat does at end of input):
      // give running commands a moment to answer before leaving them behind. (Only then: the
      // first timer costs a Deno process ~4 MiB of lazily loaded code.)
      if (session.busy) await settleWithin(session.idle(), EOF_GRACE_MS);
      session.flush();
      await session.drained();
      session.close();
      conn.close();
    }
  }
}
