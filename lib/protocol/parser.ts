/**
 * JSON tokens → values, equivalent to QEMU's recursive-descent JSON parser
 * (qemu-ga-behaviour.md §2.4).
 *
 * QEMU queues a message's tokens and parses them once the streamer says the message is
 * complete. Its parser is LL(1): it decides everything from the current token, so it finds the
 * first error at the first token that cannot continue a valid value. This parser runs the same
 * decisions incrementally, one token at a time, and keeps the first error until the streamer
 * ends the message ({@link JsonParser.finish}); the outcome (value or first error text) is the
 * same, but no token queue is kept and tokens after an error are not even decoded.
 *
 * Decisions reproduced from QEMU, all observable through the error text:
 * - an object key is parsed as a full value first (so `{{"a":nul}:1}` reports the keyword) and
 *   only then checked to be a string;
 * - a duplicate key is detected after its value has been parsed;
 * - the text after the `JSON parse error, ` prefix is cut to 1023 bytes (QEMU formats it with
 *   `vsnprintf` into a 1 KiB buffer), which only ever shortens `invalid keyword '...'`;
 * - strings: escapes `\" \' \\ \/ \b \f \n \r \t \uXXXX`, surrogate pairs combined, code points
 *   validated as in modified UTF-8 (U+0000 allowed, surrogates/noncharacters rejected); raw
 *   bytes validated sequence by sequence (`C0 80` is U+0000).
 * - integers: int64 if they fit, else uint64 if positive and they fit, else a double; other
 *   numbers are doubles (correctly rounded like glibc `strtod`, overflow gives ±Infinity).
 *
 * @module
 */

import type { QDict, QValue } from "./value.ts";
import { Tok, type TokenType } from "./lexer.ts";
import {
  decodeModUtf8Lossy,
  isValidCodepoint,
  modUtf8Codepoint,
  modUtf8End,
  putUtf8,
  scratchBuffer,
  utf8ToString,
} from "./utf8.ts";

/** Prefix of every parse error text. */
export const PARSE_ERROR_PREFIX = "JSON parse error, ";

/**
 * A parse error's full text; cut to 1023 bytes after the prefix as QEMU's 1 KiB buffer cuts it.
 */
function parseError(msg: string): string {
  return PARSE_ERROR_PREFIX + (msg.length > 1023 ? msg.slice(0, 1023) : msg);
}

// The fixed texts, made once: a stream of bad input repeats them, and the same string each time
// lets later stages recognise a repeated error by identity.
const SEPARATOR_IN_LIST = PARSE_ERROR_PREFIX + "expected separator in list";
const SEPARATOR_IN_DICT = PARSE_ERROR_PREFIX + "expected separator in dict";
const MISSING_COLON = PARSE_ERROR_PREFIX + "missing : in object pair";
const EXPECTING_VALUE = PARSE_ERROR_PREFIX + "expecting value";
const KEY_NOT_STRING = PARSE_ERROR_PREFIX + "key is not a string in object";
const DUPLICATE_KEY = PARSE_ERROR_PREFIX + "duplicate key";
const INVALID_ESCAPE = PARSE_ERROR_PREFIX + "invalid escape sequence in string";
const INVALID_UTF8 = PARSE_ERROR_PREFIX + "invalid UTF-8 sequence in string";

/** Outcome of one message: a value, or the first error's full text. */
export type ParseResult = { ok: true; value: QValue } | { ok: false; desc: string };

// Parser states: what the innermost open container (or the top level) expects next.
const TOP = 0; // a value, at top level
const ARR_FIRST = 1; // after `[`: a value or `]`
const ARR_NEXT = 2; // after an element: `,` or `]`
const ARR_VALUE = 3; // after `,`: a value
const OBJ_FIRST = 4; // after `{`: a key or `}`
const OBJ_KEY = 5; // after `,`: a key
const OBJ_COLON = 6; // after a key: `:`
const OBJ_VALUE = 7; // after `:`: a value
const OBJ_NEXT = 8; // after a member: `,` or `}`
const DONE = 9; // top-level value complete

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Incremental parser for the tokens of one message at a time. */
export class JsonParser {
  #state = TOP;
  /** Open containers, innermost last, with the state each is in and its pending key. */
  #containers: (QValue[] | QDict)[] = [];
  #states: number[] = [];
  #keys: string[] = [];
  #result: QValue = null;
  #error: string | null = null;

  /** Forgets the current message. */
  reset(): void {
    this.#state = TOP;
    this.#containers.length = 0;
    this.#states.length = 0;
    this.#keys.length = 0;
    this.#result = null;
    this.#error = null;
  }

  /** Ends the message: returns its value or its first error, and resets. */
  finish(): ParseResult {
    let res: ParseResult;
    if (this.#error !== null) {
      res = { ok: false, desc: this.#error };
    } else if (this.#state === DONE) {
      res = { ok: true, value: this.#result };
    } else {
      // Unreachable through the streamer (it only ends a message on a balancing or
      // unbalancing closer), but this is QEMU's text for running out of tokens.
      res = { ok: false, desc: PARSE_ERROR_PREFIX + "premature EOI" };
    }
    this.reset();
    return res;
  }

  /** Takes the next token of the message; `buf[start..end)` is its text (see LexerSink). */
  push(type: TokenType, buf: Uint8Array, start: number, end: number, plain: boolean): void {
    if (this.#error !== null) return;
    switch (this.#state) {
      case ARR_NEXT:
        if (type === Tok.RSQUARE) this.#close();
        else if (type === Tok.COMMA) this.#state = ARR_VALUE;
        else this.#fail(SEPARATOR_IN_LIST);
        return;
      case OBJ_NEXT:
        if (type === Tok.RCURLY) this.#close();
        else if (type === Tok.COMMA) this.#state = OBJ_KEY;
        else this.#fail(SEPARATOR_IN_DICT);
        return;
      case OBJ_COLON:
        if (type === Tok.COLON) this.#state = OBJ_VALUE;
        else this.#fail(MISSING_COLON);
        return;
      case ARR_FIRST:
        if (type === Tok.RSQUARE) {
          this.#close();
          return;
        }
        break;
      case OBJ_FIRST:
        if (type === Tok.RCURLY) {
          this.#close();
          return;
        }
        break;
      case DONE:
        // Cannot happen: a complete value always ends the message.
        return;
    }
    this.#value(type, buf, start, end, plain);
  }

  /** A token where a value must start. */
  #value(type: TokenType, buf: Uint8Array, start: number, end: number, plain: boolean): void {
    switch (type) {
      case Tok.LCURLY:
        this.#open(new Map(), OBJ_FIRST);
        return;
      case Tok.LSQUARE:
        this.#open([], ARR_FIRST);
        return;
      case Tok.STRING: {
        const s = plain
          ? utf8ToString(buf, start + 1, end - 1)
          : this.#decodeString(buf, start, end);
        if (s !== null) this.#deliver(s);
        return;
      }
      case Tok.INTEGER:
        this.#deliver(parseInteger(buf, start, end));
        return;
      case Tok.FLOAT:
        this.#deliver(Number(asciiText(buf, start, end)));
        return;
      case Tok.KEYWORD:
        this.#keyword(buf, start, end);
        return;
      default:
        this.#fail(EXPECTING_VALUE);
    }
  }

  #open(container: QValue[] | QDict, state: number): void {
    this.#states.push(this.#state);
    this.#containers.push(container);
    this.#keys.push("");
    this.#state = state;
  }

  #close(): void {
    const container = this.#containers.pop()!;
    this.#keys.pop();
    this.#state = this.#states.pop()!;
    this.#deliver(container);
  }

  /** A complete value: store it where the current state expects one. */
  #deliver(v: QValue): void {
    const depth = this.#containers.length - 1;
    switch (this.#state) {
      case TOP:
        this.#result = v;
        this.#state = DONE;
        return;
      case ARR_FIRST:
      case ARR_VALUE:
        (this.#containers[depth] as QValue[]).push(v);
        this.#state = ARR_NEXT;
        return;
      case OBJ_FIRST:
      case OBJ_KEY:
        if (typeof v !== "string") {
          this.#fail(KEY_NOT_STRING);
          return;
        }
        this.#keys[depth] = v;
        this.#state = OBJ_COLON;
        return;
      case OBJ_VALUE: {
        const dict = this.#containers[depth] as QDict;
        const key = this.#keys[depth];
        if (dict.has(key)) {
          this.#fail(DUPLICATE_KEY);
          return;
        }
        dict.set(key, v);
        this.#state = OBJ_NEXT;
        return;
      }
    }
  }

  #keyword(buf: Uint8Array, start: number, end: number): void {
    const len = end - start;
    const b0 = buf[start];
    if (
      len === 4 && b0 === 0x74 && buf[start + 1] === 0x72 && buf[start + 2] === 0x75 &&
      buf[start + 3] === 0x65
    ) {
      this.#deliver(true);
    } else if (
      len === 5 && b0 === 0x66 && buf[start + 1] === 0x61 && buf[start + 2] === 0x6c &&
      buf[start + 3] === 0x73 && buf[start + 4] === 0x65
    ) {
      this.#deliver(false);
    } else if (
      len === 4 && b0 === 0x6e && buf[start + 1] === 0x75 && buf[start + 2] === 0x6c &&
      buf[start + 3] === 0x6c
    ) {
      this.#deliver(null);
    } else {
      // QEMU formats the message into a 1 KiB buffer: at most 1023 bytes survive. A keyword is
      // ASCII, so only look at as much of it as can show.
      const shown = asciiText(buf, start, Math.min(end, start + 1024));
      this.#fail(parseError(`invalid keyword '${shown}'`));
    }
  }

  /** Keeps the first error's full text. */
  #fail(text: string): void {
    if (this.#error === null) this.#error = text;
  }

  /**
   * Decodes a string token (quotes included) the way QEMU does, or records the error and
   * returns null. Bytes past the token read as NUL, like the C string QEMU walks.
   */
  #decodeString(buf: Uint8Array, start: number, end: number): string | null {
    // The closing quote is at end - 1; an unescaped quote cannot occur before it (the lexer
    // would have ended the token there), so the content is buf[start + 1 .. end - 1).
    const contentEnd = end - 1;
    // Decoded text is never longer than its source (escapes shrink, UTF-8 is copied).
    const out = scratchBuffer(end - start);
    let o = 0;
    let k = start + 1;
    while (k < contentEnd) {
      // A run of bytes that stand for themselves.
      let r = k;
      while (r < contentEnd && PLAIN[buf[r]] === 1) r++;
      if (r > k) {
        if (r - k > 32) {
          out.set(buf.subarray(k, r), o);
          o += r - k;
        } else {
          for (let j = k; j < r; j++) out[o++] = buf[j];
        }
        k = r;
        if (k >= contentEnd) break;
      }
      const b = buf[k];
      if (b === 0x5c) {
        const esc = k < end - 1 ? buf[k + 1] : 0;
        const escStart = k;
        k += 2;
        switch (esc) {
          case 0x22: // "
          case 0x27: // '
          case 0x5c: // \
          case 0x2f: // /
            out[o++] = esc;
            continue;
          case 0x62: // b
            out[o++] = 0x08;
            continue;
          case 0x66: // f
            out[o++] = 0x0c;
            continue;
          case 0x6e: // n
            out[o++] = 0x0a;
            continue;
          case 0x72: // r
            out[o++] = 0x0d;
            continue;
          case 0x74: // t
            out[o++] = 0x09;
            continue;
          case 0x75: { // u
            let cp = hex4(buf, k, end);
            k += 4;
            if (
              cp >= 0xd800 && cp <= 0xdbff && k < end && buf[k] === 0x5c && k + 1 < end &&
              buf[k + 1] === 0x75
            ) {
              // A leading surrogate followed by another \u escape: it must be the trailing half.
              const lo = hex4(buf, k + 2, end);
              if (lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp & 0x3ff) << 10) + (lo & 0x3ff);
                k += 6;
              } else {
                cp = -1;
              }
            }
            if (!isValidCodepoint(cp)) {
              // The message quotes the escape as written (C "%.*s": it stops at the NUL that
              // follows the token, and raw bytes are shown as QEMU's writer would).
              const textEnd = Math.min(k, end);
              const text = decodeModUtf8Lossy(buf, escStart, textEnd);
              this.#fail(parseError(`${text} is not a valid Unicode character`));
              return null;
            }
            o = putUtf8(out, o, cp);
            continue;
          }
          default:
            this.#fail(INVALID_ESCAPE);
            return null;
        }
      }
      // Raw non-ASCII (or, defensively, anything else): one modified UTF-8 sequence, which
      // stops at the closing quote since that is no continuation byte.
      const cp = modUtf8Codepoint(buf, k, end - 1);
      if (cp < 0) {
        this.#fail(INVALID_UTF8);
        return null;
      }
      k = modUtf8End;
      o = putUtf8(out, o, cp);
    }
    return utf8ToString(out, 0, o);
  }
}

/** Bytes that decode to themselves inside a string (printable ASCII but the backslash). */
const PLAIN = new Uint8Array(256);
for (let b = 0x20; b < 0x7f; b++) PLAIN[b] = 1;
PLAIN[0x5c] = 0;

/** QEMU's four-hex-digit reader: -1 unless all four bytes are hex digits. */
function hex4(buf: Uint8Array, k: number, end: number): number {
  let cp = 0;
  for (let j = 0; j < 4; j++) {
    const c = k + j < end ? buf[k + j] : 0;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    cp = (cp << 4) | d;
  }
  return cp;
}

/** Bytes known to be ASCII as a JS string. */
function asciiText(buf: Uint8Array, start: number, end: number): string {
  return utf8ToString(buf, start, end);
}

/**
 * An integer token: int64 if it fits, else uint64 if it is positive and fits, else the double
 * `strtod` would give (which JS `Number` matches: both round correctly).
 */
function parseInteger(buf: Uint8Array, start: number, end: number): bigint | number {
  const len = end - start;
  const digits = buf[start] === 0x2d ? len - 1 : len;
  if (digits <= 15) {
    // Exact in a double: avoid BigInt string parsing for the common small ids and handles.
    let v = 0;
    for (let k = buf[start] === 0x2d ? start + 1 : start; k < end; k++) v = v * 10 + buf[k] - 0x30;
    return BigInt(buf[start] === 0x2d ? -v : v);
  }
  const text = asciiText(buf, start, end);
  if (digits <= 20) {
    const big = BigInt(text);
    if (big >= INT64_MIN && big <= INT64_MAX) return big;
    if (big > 0n && big <= UINT64_MAX) return big;
  }
  return Number(text);
}
