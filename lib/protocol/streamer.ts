/**
 * The message streamer: splits the token stream into top-level JSON values and enforces QEMU's
 * limits, exactly as QEMU's json-streamer (qemu-ga-behaviour.md §2.2, §2.3).
 *
 * - `{`/`}` and `[`/`]` are counted separately over tokens. After each token the message is
 *   complete when both counts are zero, or when either went negative (a stray closer ends the
 *   message at once, and the parser then reports `expecting value`).
 * - Limits, checked per token before it joins the message (the counts already include it):
 *   total token bytes `+ 1` above 64 MiB → `JSON token size limit exceeded`; more than 2 Mi
 *   tokens → `JSON token count limit exceeded`; braces + brackets above 1024 →
 *   `JSON nesting depth limit exceeded`.
 * - A lexical error emits `JSON parse error, stray '<token>'` at once.
 * - Every emitted event (value or error) resets the message: counts, size and pending tokens.
 *   The lexer is not reset, so the rest of the input is lexed afresh.
 *
 * The state is one global stream, not per client (qemu-ga keeps a partial message across
 * reconnects, §2.1).
 *
 * @module
 */

import type { QValue } from "./value.ts";
import { JsonLexer, type LexerSink, MAX_TOKEN_SIZE, Tok, type TokenType } from "./lexer.ts";
import { JsonParser } from "./parser.ts";
import { decodeModUtf8Lossy } from "./utf8.ts";
import { MEMO_MAX_BYTES, MessageMemo } from "./message_memo.ts";
import { plainMessage } from "./plain_message.ts";

export { PARSE_ERROR_PREFIX } from "./parser.ts";

/** One complete top-level JSON value, or an error that ended a message. */
export type MessageEvent =
  /**
   * `remembered`: this very event (and value) may be emitted again for a repeat of the same
   * bytes, so what a consumer works out from it is worth keeping by identity.
   */
  | { kind: "value"; value: QValue; remembered?: true }
  | { kind: "error"; desc: string };

/** Bytes of a chunk turned into text at a time for {@link plainMessage}. */
const PLAIN_WINDOW = 64 * 1024;
const latin1 = new TextDecoder("latin1");

/** Most tokens in one message (2 Mi). */
export const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
/** Deepest nesting of braces and brackets together. */
export const MAX_NESTING = 1024;

/**
 * Whether a message is worth remembering. A resync (guest-sync, guest-sync-delimited) carries a
 * fresh id each time, so it never repeats: remembering it would cost a copy of its bytes and push
 * a poll cycle's requests out of the memo, and a host that resyncs while the guest boots queues
 * hundreds of them.
 */
function mayRepeat(value: QValue): boolean {
  if (!(value instanceof Map)) return true;
  const execute = value.get("execute");
  return typeof execute !== "string" || !execute.startsWith("guest-sync");
}

/**
 * Byte stream → messages. Feed it whatever arrives; it calls `onMessage` for each complete
 * value or error, synchronously and in input order.
 *
 * @example
 * ```ts
 * const p = new JsonMessageParser((ev) => console.log(ev));
 * p.feed(new TextEncoder().encode('{"execute":"guest-ping"}'));
 * // → { kind: "value", value: Map { "execute" => "guest-ping" } }
 * ```
 */
export class JsonMessageParser {
  readonly #onMessage: (ev: MessageEvent) => void;
  readonly #shouldPause: (() => boolean) | undefined;
  readonly #lexer: JsonLexer;
  readonly #parser = new JsonParser();
  #braces = 0;
  #brackets = 0;
  #tokenCount = 0;
  #tokenSize = 0;
  /** Chunks handed to feed() by onMessage itself, processed after the current one. */
  #pending: Uint8Array[] | null = null;
  #feeding = false;
  /** True while the caller's own chunk is lexed (not chunks queued by a re-entrant feed). */
  #mayPause = false;
  /** First exception thrown by onMessage during the current feed(), rethrown at its end. */
  #thrown: { error: unknown } | null = null;
  /** The last error event, emitted again for the same error. */
  #lastError: (MessageEvent & { kind: "error" }) | null = null;
  /** Recent whole messages that parsed to a value, with the event they gave. */
  readonly #memo = new MessageMemo<MessageEvent>();
  /** Counts the lexer's feed() calls: a message is only remembered when it lay in one chunk. */
  #feedCount = 0;
  /** Where the current message's first token was: its buffer, offset and feed. */
  #msgBuf: Uint8Array | null = null;
  #msgStart = 0;
  #msgFeed = 0;
  readonly #plainOn: boolean;
  /** Part of the chunk being lexed as text, from `#textAt`, for plain messages. */
  #text = "";
  #textBuf: Uint8Array | null = null;
  #textFeed = 0;
  #textAt = 0;

  /**
   * Creates a parser that reports every message to `onMessage`. When `shouldPause` is given it
   * is asked after each message; true makes {@link JsonMessageParser.feed} return early.
   * `plain: false` sends every message through the lexer and parser (tests compare the two).
   */
  constructor(
    onMessage: (ev: MessageEvent) => void,
    shouldPause?: () => boolean,
    options: { plain?: boolean } = {},
  ) {
    this.#onMessage = onMessage;
    this.#shouldPause = shouldPause;
    this.#plainOn = options.plain ?? true;
    const sink: LexerSink = {
      token: (type, buf, start, end, plain) => this.#token(type, buf, start, end, plain),
      overlong: (length) => this.#overlong(length),
      message: (buf, at) => this.#remembered(buf, at),
    };
    this.#lexer = new JsonLexer(sink);
  }

  /**
   * Feed bytes; events are emitted synchronously, in order, during this call. No reference to
   * `chunk` is kept after returning. If `onMessage` throws, the rest of the chunk is still
   * processed and the first exception is rethrown at the end.
   *
   * Returns how many bytes of `chunk` were consumed: all of them, unless `shouldPause` said
   * true after a message; the caller then feeds `chunk.subarray(consumed)` later.
   */
  feed(chunk: Uint8Array): number {
    if (this.#feeding) {
      // Called from onMessage: finish the current chunk first, keep the order of bytes.
      (this.#pending ??= []).push(chunk.slice());
      return chunk.length;
    }
    this.#feeding = true;
    let consumed: number;
    try {
      this.#mayPause = this.#shouldPause !== undefined;
      this.#feedCount++;
      consumed = this.#lexer.feed(chunk);
      this.#mayPause = false;
      while (this.#pending !== null) {
        const queued = this.#pending;
        this.#pending = null;
        for (const c of queued) {
          this.#feedCount++;
          this.#lexer.feed(c);
        }
      }
    } finally {
      this.#feeding = false;
      this.#mayPause = false;
      this.#textBuf = null;
      this.#text = "";
    }
    const thrown = this.#thrown;
    if (thrown !== null) {
      this.#thrown = null;
      throw thrown.error;
    }
    return consumed;
  }

  /**
   * Drops any partial message and lexer state. qemu-ga never does this; tests may. Not to be
   * called from `onMessage`.
   */
  reset(): void {
    this.#lexer.reset();
    this.#resetMessage();
    this.#memo.clear();
  }

  #resetMessage(): void {
    this.#msgBuf = null;
    this.#braces = 0;
    this.#brackets = 0;
    this.#tokenCount = 0;
    this.#tokenSize = 0;
    this.#parser.reset();
  }

  #emit(ev: MessageEvent): void {
    this.#resetMessage();
    try {
      this.#onMessage(ev);
    } catch (error) {
      this.#thrown ??= { error };
    }
    // Chunks queued by a re-entrant feed() come after the current one: no pausing then.
    if (this.#mayPause && this.#pending === null && this.#shouldPause!()) this.#lexer.pause();
  }

  #error(desc: string): void {
    // A stream of bad input repeats a few errors: their event is made once.
    let ev = this.#lastError;
    if (ev === null || ev.desc !== desc) ev = this.#lastError = { kind: "error", desc };
    this.#emit(ev);
  }

  #token(type: TokenType, buf: Uint8Array, start: number, end: number, plain: boolean): void {
    switch (type) {
      case Tok.LCURLY:
        this.#braces++;
        break;
      case Tok.RCURLY:
        this.#braces--;
        break;
      case Tok.LSQUARE:
        this.#brackets++;
        break;
      case Tok.RSQUARE:
        this.#brackets--;
        break;
      case Tok.ERROR: {
        // Printed with C "%s": the text stops at a NUL byte; invalid UTF-8 shows as U+FFFD.
        this.#error(`JSON parse error, stray '${decodeModUtf8Lossy(buf, start, end)}'`);
        return;
      }
    }
    if (this.#tokenCount === 0) {
      this.#msgBuf = buf;
      this.#msgStart = start;
      this.#msgFeed = this.#feedCount;
    }
    if (!this.#admit(end - start)) return;
    this.#parser.push(type, buf, start, end, plain);
    const braces = this.#braces;
    const brackets = this.#brackets;
    if ((braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0) return;
    const res = this.#parser.finish();
    if (!res.ok) {
      this.#error(res.desc);
      return;
    }
    // Only a short message that began with `{` or `[` in this very chunk: the lexer offers
    // exactly those back (see #remembered), and all its bytes are still in `buf`.
    const first = buf[this.#msgStart];
    if (
      buf === this.#msgBuf && this.#msgFeed === this.#feedCount &&
      (first === 0x7b || first === 0x5b) && end - this.#msgStart <= MEMO_MAX_BYTES &&
      mayRepeat(res.value)
    ) {
      const ev: MessageEvent = { kind: "value", value: res.value, remembered: true };
      this.#memo.remember(buf, this.#msgStart, end, ev);
      this.#emit(ev);
    } else {
      this.#emit({ kind: "value", value: res.value });
    }
  }

  /**
   * A message the lexer offers whole, when it starts a new message: a repeat of a remembered
   * one byte for byte has its event emitted again (the value is shared: consumers only read
   * it); one in the plain subset is recognised whole (lib/protocol/plain_message.ts).
   */
  #remembered(buf: Uint8Array, at: number): number {
    if (this.#tokenCount !== 0) return 0;
    const hit = this.#memo.match(buf, at);
    if (hit !== undefined) {
      this.#emit(hit.result);
      return hit.bytes.length;
    }
    const plain = this.#plainOn ? this.#plain(buf, at) : undefined;
    if (plain === undefined) return 0;
    const length = plain.length;
    if (length <= MEMO_MAX_BYTES && mayRepeat(plain.value)) {
      const ev: MessageEvent = { kind: "value", value: plain.value, remembered: true };
      this.#memo.remember(buf, at, at + length, ev);
      this.#emit(ev);
    } else {
      this.#emit({ kind: "value", value: plain.value });
    }
    return length;
  }

  /** The plain message at `buf[at]`, with the chunk turned into text a window at a time. */
  #plain(buf: Uint8Array, at: number) {
    const fresh = this.#textBuf !== buf || this.#textFeed !== this.#feedCount ||
      at < this.#textAt || at >= this.#textAt + this.#text.length;
    if (fresh) this.#window(buf, at);
    const found = plainMessage(this.#text, at - this.#textAt);
    // A message cut by the window's end gets one more try from its own start.
    if (
      found !== undefined || at === this.#textAt ||
      this.#textAt + this.#text.length === buf.length
    ) {
      return found;
    }
    this.#window(buf, at);
    return plainMessage(this.#text, 0);
  }

  #window(buf: Uint8Array, at: number): void {
    this.#textBuf = buf;
    this.#textFeed = this.#feedCount;
    this.#textAt = at;
    this.#text = latin1.decode(buf.subarray(at, Math.min(buf.length, at + PLAIN_WINDOW)));
  }

  /** A token the lexer cut at 64 MiB + 1 bytes: it can only fail the size limit. */
  #overlong(length: number): void {
    this.#admit(length);
  }

  /** QEMU's per-token limit checks; emits the error and returns false when one trips. */
  #admit(len: number): boolean {
    if (this.#tokenSize + len + 1 > MAX_TOKEN_SIZE) {
      this.#error("JSON token size limit exceeded");
      return false;
    }
    if (this.#tokenCount + 1 > MAX_TOKEN_COUNT) {
      this.#error("JSON token count limit exceeded");
      return false;
    }
    if (this.#braces + this.#brackets > MAX_NESTING) {
      this.#error("JSON nesting depth limit exceeded");
      return false;
    }
    this.#tokenSize += len;
    this.#tokenCount++;
    return true;
  }
}

/**
 * Runs bytes (or a string, encoded as UTF-8) through a fresh {@link JsonMessageParser} and
 * returns the events. Handy for tests and one-shot parsing.
 */
export function parseMessages(
  input: Uint8Array | string,
  options: { plain?: boolean } = {},
): MessageEvent[] {
  const events: MessageEvent[] = [];
  const p = new JsonMessageParser((ev) => events.push(ev), undefined, options);
  p.feed(typeof input === "string" ? new TextEncoder().encode(input) : input);
  return events;
}
