/**
 * The router: parsed messages → command → reply bytes, in request order.
 *
 * Requests run one after another, as in qemu-ga, but a command that waits on the OS (a freeze,
 * a file read, a child process) does not stop the agent from reading: later
 * requests queue behind it, and their replies leave in request order. If the host resyncs
 * (`guest-sync`/`guest-sync-delimited`) while an earlier command is still running after a short
 * grace period, or the host reconnects, the stuck command is left behind: it keeps running,
 * but its reply (and those of requests queued behind it) is dropped, and the sync is answered
 * at once. qemu-ga instead goes deaf until the kernel returns (qemu-ga-behaviour.md §2.1).
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { QgaError } from "../errors.ts";
import type { MessageEvent } from "../protocol/streamer.ts";
import { qdictOrder } from "../protocol/qdict_order.ts";
import type { QValue } from "../protocol/value.ts";
import { toJson, toJsonChunks } from "../protocol/writer.ts";
import { decodeArguments } from "./decode.ts";
import type { Command, CommandResult } from "./table.ts";

/** How long a resync waits for an earlier, still running command before leaving it behind. */
export const RESYNC_GRACE_MS = 500;

/**
 * Backpressure bound: while the replies queued or being written, plus {@link JOB_WEIGHT} per
 * request queued or running, exceed this, the session reports itself overloaded (the server
 * stops reading the channel) and starts no further request. A reply bigger than the bound
 * (a large guest-file-read) is still produced whole, one at a time.
 */
export const BACKLOG_LIMIT = 1024 * 1024;
/** What a request that has not replied yet counts towards {@link BACKLOG_LIMIT}. */
export const JOB_WEIGHT = 4 * 1024;

const SENTINEL = 0xff;
/**
 * A small delimited reply stays text too, its 0xFF held as U+00FF: no reply text starts with
 * anything but `{`, and the write puts the one byte back. A byte buffer of its own would cost a
 * resync several times what the text does, and a booting guest's host may have queued hundreds.
 */
const SENTINEL_CHAR = "\u00ff";
const BIG_REPLY = 64 * 1024;
/** Size of the session's reusable output buffer, into which small replies are batched. */
const OUT_BUFFER = 64 * 1024;
const encoder = new TextEncoder();

/**
 * A reply: the bytes to send, or null when the request gets no reply. Small replies stay text
 * (pure ASCII but for a leading {@link SENTINEL_CHAR}, so its length is its byte count) until the
 * write, which copies the replies ready together into one reusable buffer: no buffer of its own
 * per reply.
 */
type Reply = Uint8Array | string | null;

/** Where a session's replies go. */
export interface ReplyWriter {
  /** Writes all of `data`; rejects when the peer is gone. */
  writeAll(data: Uint8Array): Promise<void>;
}

interface Slot {
  reply: Reply | undefined;
  dropped: boolean;
}

interface Job {
  readonly slot: Slot;
  readonly isSync: boolean;
  readonly run: () => Reply | Promise<Reply>;
  started: boolean;
  abandoned: boolean;
}

/**
 * One reply line from the writer's pieces: optional 0xFF, the text, `\n`. A small reply of text
 * only stays text; otherwise, the writer's output being pure ASCII, each piece is copied once,
 * straight into an exactly sized buffer, and byte pieces (verbatim strings handed over as bytes)
 * are released once copied.
 */
function line(chunks: readonly (string | Uint8Array)[], delimited = false): Uint8Array | string {
  let length = delimited ? 2 : 1;
  let text = true;
  let bytes = -1;
  for (let k = 0; k < chunks.length; k++) {
    const c = chunks[k];
    length += c.length;
    if (typeof c !== "string") {
      // The index of the one byte piece; -2 once there are several.
      bytes = bytes === -1 ? k : -2;
      text = false;
    }
  }
  if (text && length < BIG_REPLY) {
    const body = chunks.length === 1 ? chunks[0] + "\n" : chunks.join("") + "\n";
    return delimited ? SENTINEL_CHAR + body : body;
  }
  if (bytes >= 0) {
    const inPlace = around(chunks, bytes, length, delimited);
    if (inPlace !== undefined) return inPlace;
  }
  const out = new Uint8Array(length);
  let o = 0;
  if (delimited) out[o++] = SENTINEL;
  for (const c of chunks) {
    if (typeof c === "string") {
      o += encoder.encodeInto(c, out.subarray(o)).written;
    } else {
      out.set(c, o);
      o += c.length;
      if (c.length >= BIG_REPLY && c.buffer instanceof ArrayBuffer) c.buffer.transfer(0);
    }
  }
  out[o] = 0x0a;
  return out;
}

/**
 * The line built in the buffer of its one byte piece, `chunks[at]`, when that buffer has room
 * for the text before and after it (see VERBATIM_ROOM): no second copy of a megabyte reply.
 */
function around(
  chunks: readonly (string | Uint8Array)[],
  at: number,
  length: number,
  delimited: boolean,
): Uint8Array | undefined {
  const piece = chunks[at] as Uint8Array;
  let before = delimited ? 1 : 0;
  for (let k = 0; k < at; k++) before += chunks[k].length;
  const start = piece.byteOffset - before;
  if (start < 0 || start + length > piece.buffer.byteLength) return undefined;
  const out = new Uint8Array(piece.buffer, start, length);
  let o = 0;
  if (delimited) out[o++] = SENTINEL;
  for (let k = 0; k < chunks.length; k++) {
    const c = chunks[k];
    o += typeof c === "string" ? encoder.encodeInto(c, out.subarray(o)).written : c.length;
  }
  out[o] = 0x0a;
  return out;
}

/** The error envelope; member order is QEMU's hash order (`id` before `error`). */
export function errorReply(klass: string, desc: string, id?: QValue): Uint8Array | string {
  const err = `{"class": ${toJson(klass)}, "desc": ${toJson(desc)}}`;
  return line([id === undefined ? `{"error": ${err}}` : `{"id": ${toJson(id)}, "error": ${err}}`]);
}

/** The success envelope (`return` before `id`). */
function returnReply(
  value: CommandResult,
  id: QValue | undefined,
  delimited: boolean,
): Uint8Array | string {
  const chunks = value === undefined ? ["{}"] : toJsonChunks(value);
  // The first and last pieces are always text: a verbatim string sits between its quotes.
  chunks[0] = '{"return": ' + chunks[0];
  chunks[chunks.length - 1] += id === undefined ? "}" : `, "id": ${toJson(id)}}`;
  return line(chunks, delimited);
}

/** Longest parse error text whose reply the router keeps for the next identical error. */
const KEPT_ERROR_TEXT = 1024;
/** How many prepared requests the router keeps for requests that repeat (as many as the memo). */
const RECENT_REQUESTS = 16;

/**
 * A request's fate as far as its form decides: a reply already known (it is no request qemu-ga
 * would run), the rest of the command table to wait for (its command is not loaded yet), or the
 * command to run if enabled, with its arguments still to decode each time
 * (decoding builds fresh values, so a handler never shares them with a repeated request).
 */
type Prepared =
  | { readonly request: QValue; readonly reply: Uint8Array | string }
  | {
    readonly request: QValue;
    readonly id: QValue | undefined;
    readonly tableLoaded: Promise<void>;
  }
  | PreparedCommand;

/** A request that names a command: what running it needs besides decoding its arguments. */
interface PreparedCommand {
  readonly request: QValue;
  readonly cmd: Command;
  readonly name: string;
  readonly id: QValue | undefined;
  readonly args: Map<string, QValue> | undefined;
  /** The success reply to a handler returning nothing (guest-ping), once made. */
  emptyReply: Uint8Array | undefined;
}

/**
 * A reply that is kept to be sent again, as bytes: copying bytes into the write buffer costs
 * less than encoding text each time.
 */
function kept(reply: Uint8Array | string): Uint8Array {
  if (typeof reply !== "string") return reply;
  const out = new Uint8Array(reply.length);
  encodeText(reply, out, 0);
  return out;
}

/** Writes a text reply into `out` at `at`; returns its byte count (its length). */
function encodeText(reply: string, out: Uint8Array, at: number): number {
  if (reply.charCodeAt(0) !== SENTINEL) return encoder.encodeInto(reply, out.subarray(at)).written;
  out[at] = SENTINEL;
  return 1 + encoder.encodeInto(reply.substring(1), out.subarray(at + 1)).written;
}

/** Runs a request; a handler that throws past the router's own catch still gets a reply. */
function runSafely(run: () => Reply | Promise<Reply>): Reply | Promise<Reply> {
  try {
    return run();
  } catch (e) {
    return errorReply("GenericError", String(e));
  }
}

/** What is wrong with one top-level member of a request, if anything (qmp_dispatch_check_obj). */
function memberProblem(key: string, v: QValue): string | undefined {
  if (key === "execute") {
    return typeof v === "string" ? undefined : "QMP input member 'execute' must be a string";
  }
  if (key === "arguments") {
    return v instanceof Map ? undefined : "QMP input member 'arguments' must be an object";
  }
  return key === "id" ? undefined : `QMP input member '${key}' is unexpected`;
}

/**
 * One host connection: orders replies and writes them, coalescing replies that are ready
 * together into one write.
 */
export class Session {
  readonly #writer: ReplyWriter;
  readonly #slots: Slot[] = [];
  readonly #jobs: Job[] = [];
  #running: Job | undefined;
  #out: (Uint8Array | string)[] = [];
  /** Where replies ready together are copied for one write. */
  #buf: Uint8Array | undefined;
  #outBytes = 0;
  /** Bytes handed to the writer and not yet written. */
  #inflight = 0;
  #writing = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #reliefWaiters: (() => void)[] = [];
  readonly #onQuiet: ((written: number) => void) | undefined;
  #written = 0;

  /**
   * `onQuiet` is told, each time everything is written and no request is queued or running,
   * how many reply bytes were written since it was last told.
   */
  constructor(writer: ReplyWriter, onQuiet?: (written: number) => void) {
    this.#writer = writer;
    this.#onQuiet = onQuiet;
  }

  /** True once the connection is gone; nothing more is written. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a reply that is already known (parse errors). */
  pushReady(reply: Reply): void {
    if (this.#jobs.length === 0 && !this.#running) {
      this.#emit(reply);
      return;
    }
    this.enqueue(false, () => reply);
  }

  /** Queues a request; it runs when every earlier one has finished (or was left behind). */
  enqueue(isSync: boolean, run: () => Reply | Promise<Reply>): void {
    if (
      this.#slots.length === 0 && !this.#running &&
      this.#outBytes + this.#inflight <= BACKLOG_LIMIT
    ) {
      // Nothing ahead of it: run it now, and only keep it as a job if it has to wait.
      const result = runSafely(run);
      if (!(result instanceof Promise)) {
        this.#emit(result);
        return;
      }
      const slot: Slot = { reply: undefined, dropped: false };
      this.#slots.push(slot);
      this.#await({ slot, isSync, run, started: true, abandoned: false }, result);
      return;
    }
    const slot: Slot = { reply: undefined, dropped: false };
    this.#slots.push(slot);
    const job: Job = { slot, isSync, run, started: false, abandoned: false };
    this.#jobs.push(job);
    if (isSync && this.#running) {
      const timer = setTimeout(() => {
        if (!job.started && !job.abandoned && this.#running) this.#abandonBefore(job);
      }, RESYNC_GRACE_MS);
      Deno.unrefTimer(timer);
    }
    this.#pump();
  }

  /**
   * True while the backlog is over {@link BACKLOG_LIMIT}: the caller should stop feeding input
   * until {@link Session.relieved} resolves.
   */
  get overloaded(): boolean {
    if (this.#closed) return false;
    const jobs = this.#jobs.length + (this.#running ? 1 : 0);
    return this.#outBytes + this.#inflight + jobs * JOB_WEIGHT > BACKLOG_LIMIT;
  }

  /** Resolves once the session is no longer {@link Session.overloaded} (or is closed). */
  relieved(): Promise<void> {
    if (!this.overloaded) return Promise.resolve();
    return new Promise((resolve) => this.#reliefWaiters.push(resolve));
  }

  #checkRelief(): void {
    if (this.#reliefWaiters.length === 0 || this.overloaded) return;
    const waiters = this.#reliefWaiters;
    this.#reliefWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Runs queued jobs until one has to wait, or until the output backlog is over the bound (the
   * write loop pumps again as it drains).
   */
  #pump(): void {
    while (
      !this.#running && this.#jobs.length > 0 &&
      this.#outBytes + this.#inflight <= BACKLOG_LIMIT
    ) {
      const job = this.#jobs.shift()!;
      job.started = true;
      const result = runSafely(job.run);
      if (result instanceof Promise) {
        this.#await(job, result);
        // Replies finished before this job still go out now, not once it is done.
        break;
      }
      job.slot.reply = result;
    }
    this.#flushSlots();
    if (!this.#running && this.#jobs.length === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
    this.#checkRelief();
  }

  /** Makes `job` the running one until `result` settles. */
  #await(job: Job, result: Promise<Reply>): void {
    this.#running = job;
    result.then(
      (reply) => this.#finish(job, reply),
      (e) => this.#finish(job, errorReply("GenericError", String(e))),
    );
  }

  #finish(job: Job, reply: Reply): void {
    if (job.abandoned) return;
    job.slot.reply = reply;
    this.#running = undefined;
    this.#pump();
    this.flush();
  }

  /** Leaves the running job and everything queued before `sync` behind. */
  #abandonBefore(sync: Job): void {
    if (this.#running) {
      this.#running.abandoned = true;
      this.#running.slot.dropped = true;
      this.#running = undefined;
    }
    while (this.#jobs.length > 0 && this.#jobs[0] !== sync) {
      const j = this.#jobs.shift()!;
      j.abandoned = true;
      j.slot.dropped = true;
    }
    this.#pump();
    this.flush();
  }

  /** Moves finished replies at the head of the queue to the output. */
  #flushSlots(): void {
    while (this.#slots.length > 0) {
      const s = this.#slots[0];
      if (!s.dropped && s.reply === undefined) break;
      this.#slots.shift();
      if (!s.dropped) this.#emit(s.reply!);
    }
  }

  #emit(reply: Reply): void {
    if (reply === null || this.#closed) return;
    this.#out.push(reply);
    this.#outBytes += reply.length;
  }

  /** Writes whatever is ready; call after each batch of input. */
  flush(): void {
    if (this.#writing || this.#outBytes === 0 || this.#closed) return;
    this.#writing = true;
    void this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#outBytes > 0 && !this.#closed) {
        const parts = this.#out;
        let size: number;
        let data: Uint8Array;
        /** A big reply line of its own, given back once written. */
        let release = false;
        const first = parts[0];
        if (typeof first !== "string" && (parts.length === 1 || first.length >= BIG_REPLY)) {
          // A big reply goes out on its own, as it is, rather than copied next to small ones.
          data = first;
          size = data.length;
          release = size >= BIG_REPLY;
          parts.shift();
        } else {
          let count = 1;
          size = first.length;
          // Small replies (each under BIG_REPLY, which is no more than OUT_BUFFER) go out in
          // batches that fit the reusable buffer: a backlog of them costs no buffer of its own.
          while (
            count < parts.length && parts[count].length < BIG_REPLY &&
            size + parts[count].length <= OUT_BUFFER
          ) {
            size += parts[count++].length;
          }
          data = this.#buf ??= new Uint8Array(OUT_BUFFER);
          let o = 0;
          for (let k = 0; k < count; k++) {
            const p = parts[k];
            if (typeof p !== "string") {
              data.set(p, o);
              o += p.length;
            } else {
              o += encodeText(p, data, o);
            }
          }
          data = data.subarray(0, size);
          if (count === parts.length) this.#out = [];
          else parts.splice(0, count);
        }
        this.#outBytes -= size;
        this.#inflight = size;
        await this.#writer.writeAll(data);
        this.#inflight = 0;
        this.#written += size;
        // Give megabyte replies back at once instead of whenever V8 collects them.
        if (release && data.buffer instanceof ArrayBuffer) {
          data.buffer.transfer(0);
        }
        // Requests held back while the backlog was over the bound may run now.
        if (!this.#running && this.#jobs.length > 0) this.#pump();
        this.#checkRelief();
      }
    } catch {
      // The peer went away; qemu-ga logs and carries on. The read side sees EOF next.
      this.close();
    } finally {
      this.#writing = false;
      this.#inflight = 0;
      this.#notifyDrained();
      this.#checkRelief();
      if (this.#onQuiet && !this.busy && this.#outBytes === 0) {
        const written = this.#written;
        this.#written = 0;
        this.#onQuiet(written);
      }
    }
  }

  /** Ends the session: pending replies are dropped, running commands are left behind. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#running) this.#running.abandoned = true;
    this.#running = undefined;
    for (const j of this.#jobs) j.abandoned = true;
    this.#jobs.length = 0;
    this.#slots.length = 0;
    this.#out = [];
    this.#outBytes = 0;
    this.#checkRelief();
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
    this.#notifyDrained();
  }

  /** True while a request is queued or running. */
  get busy(): boolean {
    return this.#running !== undefined || this.#jobs.length > 0;
  }

  /** Resolves when no job is queued or running (tests, orderly shutdown). */
  idle(): Promise<void> {
    if (!this.#running && this.#jobs.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves when everything emitted so far has been written (or the peer is gone). */
  drained(): Promise<void> {
    if ((!this.#writing && this.#outBytes === 0) || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #notifyDrained(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Turns parse events into replies for the current session.
 *
 * @example
 * ```ts
 * const router = new Router(agent);
 * const parser = new JsonMessageParser((ev) => router.handle(ev));
 * router.attach(session);
 * parser.feed(bytes);
 * session.flush();
 * ```
 */
export class Router {
  readonly #agent: Agent;
  #session: Session | undefined;
  /** Recently prepared requests, most recent first. */
  readonly #recent: Prepared[] = [];
  /** The last parse error's text and reply: a burst of bad input repeats the same few. */
  #lastErrorDesc = "";
  #lastErrorReply: Uint8Array = new Uint8Array();

  constructor(agent: Agent) {
    this.#agent = agent;
  }

  /** Directs replies to a new host connection. */
  attach(session: Session): void {
    this.#session = session;
  }

  /** Handles one event from the message parser. */
  handle(ev: MessageEvent): void {
    const session = this.#session;
    if (!session || session.closed) return;
    if (ev.kind === "error") {
      // A stray token's text can be megabytes: only short texts are worth keeping.
      if (ev.desc.length > KEPT_ERROR_TEXT) {
        session.pushReady(errorReply("GenericError", ev.desc));
        return;
      }
      if (ev.desc !== this.#lastErrorDesc) {
        this.#lastErrorDesc = ev.desc;
        this.#lastErrorReply = kept(errorReply("GenericError", ev.desc));
      }
      session.pushReady(this.#lastErrorReply);
      return;
    }
    const prepared = this.#prepare(ev.value, ev.remembered === true);
    const resync = "cmd" in prepared && prepared.cmd.resync;
    session.enqueue(resync, () => this.#run(prepared));
  }

  /**
   * Validates and runs one request (§2.5–2.7); returns its reply bytes, null for none, or a
   * promise of either when the command waits on the OS.
   */
  execute(request: QValue): Reply | Promise<Reply> {
    return this.#run(this.#prepare(request, false));
  }

  /**
   * What a request's form alone decides. A repeated short request arrives as the same value
   * (the message parser hands a remembered message over again), so those are kept by identity.
   */
  #prepare(request: QValue, remembered: boolean): Prepared {
    const recent = this.#recent;
    for (let k = 0; k < recent.length; k++) {
      if (recent[k].request === request) return recent[k];
    }
    const prepared = this.#check(request);
    // Only requests the parser may hand over again: keeping others would keep them alive.
    if (remembered && !("tableLoaded" in prepared)) {
      if (recent.length === RECENT_REQUESTS) recent.pop();
      recent.unshift(prepared);
    }
    return prepared;
  }

  /** The checks that depend on the request only, in qemu-ga's order, up to the command. */
  #check(request: QValue): Prepared {
    if (!(request instanceof Map)) {
      return {
        request,
        reply: kept(errorReply("GenericError", "QMP input must be a JSON object")),
      };
    }
    const id = request.get("id");
    // The first problem in QEMU's member order wins (§2.5); sorting is only needed when there
    // is a problem, so well-formed requests skip it.
    const keys = [...request.keys()];
    if (keys.some((k) => memberProblem(k, request.get(k)!) !== undefined)) {
      for (const key of qdictOrder(keys)) {
        const problem = memberProblem(key, request.get(key)!);
        if (problem !== undefined) {
          return { request, reply: errorReply("GenericError", problem, id) };
        }
      }
    }
    if (!request.has("execute")) {
      return { request, reply: errorReply("GenericError", "QMP input lacks member 'execute'", id) };
    }
    const name = request.get("execute") as string;
    const table = this.#agent.table;
    const cmd = table.get(name);
    if (!cmd) {
      const tableLoaded = table.rest();
      if (tableLoaded) return { request, id, tableLoaded };
      return {
        request,
        reply: errorReply("CommandNotFound", `The command ${name} has not been found`, id),
      };
    }
    const args = request.get("arguments") as Map<string, QValue> | undefined;
    return { request, cmd, name, id, args, emptyReply: undefined };
  }

  #run(p: Prepared): Reply | Promise<Reply> {
    if ("reply" in p) return p.reply;
    // Runs in its turn like any request that waits; a later sync may leave it behind.
    if ("tableLoaded" in p) {
      return p.tableLoaded.then(
        () => this.#run(this.#check(p.request)),
        (e) => this.#failure(e, p.id),
      );
    }
    const { cmd, name, id } = p;
    if (!this.#agent.isEnabled(name)) {
      return errorReply(
        "CommandNotFound",
        `Command ${name} has been disabled: the command is not allowed`,
        id,
      );
    }
    let result: CommandResult | Promise<CommandResult>;
    try {
      result = cmd.run(decodeArguments(cmd.args, p.args), this.#agent);
    } catch (e) {
      return this.#failure(e, id);
    }
    // No closure bound to a name per request: in the bundle (`--keep-names`) each would be
    // named by an Object.defineProperty call, a slow runtime call on the hot path.
    if (result instanceof Promise) {
      return result.then((v) => this.#success(p, v), (e) => this.#failure(e, id));
    }
    return this.#success(p, result);
  }

  #success(p: PreparedCommand, value: CommandResult): Reply {
    const { cmd, id } = p;
    if (!cmd.successResponse) return null;
    if (value !== undefined) return returnReply(value, id, cmd.delimitReply);
    return p.emptyReply ??= kept(returnReply(undefined, id, cmd.delimitReply));
  }

  #failure(e: unknown, id: QValue | undefined): Uint8Array | string {
    if (e instanceof QgaError) return errorReply(e.klass, e.desc, id);
    // Anything unexpected is a bug of ours: the host gets a GenericError, the log the detail.
    const msg = e instanceof Error ? e.message : String(e);
    this.#agent.log.error(`unexpected failure: ${e instanceof Error ? e.stack : msg}`);
    return errorReply("GenericError", msg, id);
  }
}
