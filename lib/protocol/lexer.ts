/**
 * Streaming JSON lexer, byte for byte equivalent to QEMU's (qemu-ga-behaviour.md §2.2).
 *
 * The lexer is a table-driven state machine over bytes. Each table entry names the next state
 * or a finished token type; entries flagged "lookahead" do not consume the byte, which is then
 * looked at again from the new state (that is how `123` is only finished by the byte after
 * it). Observable rules, all reproduced by the table built below:
 *
 * - whitespace between tokens is only space, TAB, CR, LF;
 * - strings are double- or single-quoted; inside them every byte 0x20..0xFD is accepted raw
 *   (decoding and validation are the parser's job), control bytes and `FE`/`FF` are errors;
 *   after a backslash any byte 0x20..0xFD is accepted;
 * - numbers follow the JSON grammar strictly (no `+`, no leading zeros, digits after `.`/`e`);
 * - keywords are `[a-z]+` (the parser rejects all but `true`, `false`, `null`);
 * - on an unexpected byte the partial token plus that byte form an error token, and the lexer
 *   enters recovery: it drops bytes until a structural character, a control byte other than
 *   TAB, or `FE`/`FF`, which is then lexed afresh;
 * - a token longer than 64 MiB is cut and handed over as soon as it reaches 64 MiB + 1 bytes
 *   (the streamer always rejects it), and lexing restarts at the next byte.
 *
 * The lexer never keeps a reference to a chunk after {@link JsonLexer.feed} returns: a token
 * that spans chunks is copied into an internal, reused, growing buffer.
 *
 * @module
 */

/** Largest token the lexer lets grow (64 MiB); one more byte forces it out. */
export const MAX_TOKEN_SIZE = 64 * 1024 * 1024;

// Lexer states. 0 doubles as "error" in the table, as in QEMU, so a zero-filled row means
// "every byte is an error".
const ERROR = 0;
const RECOVERY = 1;
const DQ_ESCAPE = 2;
const DQ = 3;
const SQ_ESCAPE = 4;
const SQ = 5;
const ZERO = 6;
const EXP_DIGITS = 7;
const EXP_SIGN = 8;
const EXP_E = 9;
const MANTISSA = 10;
const MANTISSA_DIGITS = 11;
const DIGITS = 12;
const SIGN = 13;
const KEYWORD = 14;
const START = 15;
const STATE_COUNT = 16;

/** Token types handed to a {@link LexerSink}. */
export const Tok = {
  LCURLY: 16,
  RCURLY: 17,
  LSQUARE: 18,
  RSQUARE: 19,
  COLON: 20,
  COMMA: 21,
  INTEGER: 22,
  FLOAT: 23,
  KEYWORD: 24,
  STRING: 25,
  /** A lexical error; the bytes are the partial token plus the offending byte. */
  ERROR: 26,
} as const;

/** One of the {@link Tok} values. */
export type TokenType = typeof Tok[keyof typeof Tok];

const FIRST_TOKEN = Tok.LCURLY;
/** Flag in a table entry: do not consume the byte, look at it again in the new state. */
const LOOKAHEAD = 0x80;

/** Receives tokens, synchronously, in input order. */
export interface LexerSink {
  /**
   * A complete token (or an error token). `buf[start..end)` holds its exact bytes, quotes
   * included for strings; the view is only valid during the call. `plain` is true for a string
   * whose content is only bytes 0x20..0x7F without backslashes (it needs no decoding).
   */
  token(type: TokenType, buf: Uint8Array, start: number, end: number, plain: boolean): void;
  /** A token cut because it grew beyond {@link MAX_TOKEN_SIZE}; `length` is its byte count. */
  overlong(length: number): void;
  /**
   * Offered at each `{` or `[` that starts a token in the start state: the sink may take a whole
   * message starting at `buf[at]` that it recognises by its bytes (and emit it itself), and
   * returns how many bytes it took, or 0 to have them lexed as usual.
   */
  message?(buf: Uint8Array, at: number): number;
}

/** The transition table: `TABLE[state << 8 | byte]` = next state or token type, + LOOKAHEAD. */
const TABLE: Uint8Array = buildTable();

function buildTable(): Uint8Array {
  const t = new Uint8Array(STATE_COUNT * 256); // all ERROR by default
  const set = (state: number, from: number, to: number, value: number) => {
    for (let b = from; b <= to; b++) t[state * 256 + b] = value;
  };
  const ch = (c: string) => c.charCodeAt(0);
  const one = (state: number, c: string, value: number) => set(state, ch(c), ch(c), value);
  /** "The token ends before any byte not listed afterwards." */
  const terminal = (state: number, token: number) => set(state, 0, 255, token | LOOKAHEAD);

  // Recovery: skip everything but resynchronisation points, which are re-lexed from START.
  set(RECOVERY, 0x00, 0x1f, START | LOOKAHEAD);
  set(RECOVERY, 0x20, 0xfd, RECOVERY);
  set(RECOVERY, 0xfe, 0xff, START | LOOKAHEAD);
  one(RECOVERY, "\t", RECOVERY);
  for (const c of "[]{}:,") one(RECOVERY, c, START | LOOKAHEAD);

  // Strings.
  set(DQ_ESCAPE, 0x20, 0xfd, DQ);
  set(DQ, 0x20, 0xfd, DQ);
  one(DQ, "\\", DQ_ESCAPE);
  one(DQ, '"', Tok.STRING);
  set(SQ_ESCAPE, 0x20, 0xfd, SQ);
  set(SQ, 0x20, 0xfd, SQ);
  one(SQ, "\\", SQ_ESCAPE);
  one(SQ, "'", Tok.STRING);

  // Numbers.
  terminal(ZERO, Tok.INTEGER);
  set(ZERO, ch("0"), ch("9"), ERROR);
  one(ZERO, ".", MANTISSA);
  terminal(EXP_DIGITS, Tok.FLOAT);
  set(EXP_DIGITS, ch("0"), ch("9"), EXP_DIGITS);
  set(EXP_SIGN, ch("0"), ch("9"), EXP_DIGITS);
  one(EXP_E, "-", EXP_SIGN);
  one(EXP_E, "+", EXP_SIGN);
  set(EXP_E, ch("0"), ch("9"), EXP_DIGITS);
  terminal(MANTISSA_DIGITS, Tok.FLOAT);
  set(MANTISSA_DIGITS, ch("0"), ch("9"), MANTISSA_DIGITS);
  one(MANTISSA_DIGITS, "e", EXP_E);
  one(MANTISSA_DIGITS, "E", EXP_E);
  set(MANTISSA, ch("0"), ch("9"), MANTISSA_DIGITS);
  terminal(DIGITS, Tok.INTEGER);
  set(DIGITS, ch("0"), ch("9"), DIGITS);
  one(DIGITS, "e", EXP_E);
  one(DIGITS, "E", EXP_E);
  one(DIGITS, ".", MANTISSA);
  one(SIGN, "0", ZERO);
  set(SIGN, ch("1"), ch("9"), DIGITS);

  // Keywords.
  terminal(KEYWORD, Tok.KEYWORD);
  set(KEYWORD, ch("a"), ch("z"), KEYWORD);

  // Start of a token.
  one(START, '"', DQ);
  one(START, "'", SQ);
  one(START, "0", ZERO);
  set(START, ch("1"), ch("9"), DIGITS);
  one(START, "-", SIGN);
  one(START, "{", Tok.LCURLY);
  one(START, "}", Tok.RCURLY);
  one(START, "[", Tok.LSQUARE);
  one(START, "]", Tok.RSQUARE);
  one(START, ",", Tok.COMMA);
  one(START, ":", Tok.COLON);
  set(START, ch("a"), ch("z"), KEYWORD);
  for (const c of " \t\r\n") one(START, c, START);
  return t;
}

/** Bytes that keep a double-quoted string going and need no decoding. */
const PLAIN_DQ = new Uint8Array(256);
/** Same for single-quoted strings. */
const PLAIN_SQ = new Uint8Array(256);
/** Bytes that recovery drops. */
const SKIP_RECOVERY = new Uint8Array(256);
for (let b = 0x20; b < 0x7f; b++) PLAIN_DQ[b] = PLAIN_SQ[b] = 1;
PLAIN_DQ[0x22] = PLAIN_DQ[0x5c] = 0;
PLAIN_SQ[0x27] = PLAIN_SQ[0x5c] = 0;
for (let b = 0; b < 256; b++) SKIP_RECOVERY[b] = TABLE[RECOVERY * 256 + b] === RECOVERY ? 1 : 0;

/** The streaming lexer. State survives between {@link JsonLexer.feed} calls. */
export class JsonLexer {
  readonly #sink: LexerSink;
  readonly #message: ((buf: Uint8Array, at: number) => number) | undefined;
  #state = START;
  /** Bytes of the current token that arrived in earlier chunks. */
  #tok = new Uint8Array(256);
  #tokLen = 0;
  /** False once the current string token contains a byte needing decoding. */
  #plain = true;
  /** Set by {@link JsonLexer.pause} from the sink: feed() stops after the current token. */
  #pauseRequested = false;

  /** Creates a lexer delivering tokens to `sink`. */
  constructor(sink: LexerSink) {
    this.#sink = sink;
    this.#message = sink.message?.bind(sink);
  }

  /** Returns to the initial state, dropping any partial token. */
  reset(): void {
    this.#state = START;
    this.#tokLen = 0;
    this.#plain = true;
    this.#shrink();
  }

  /**
   * Asks the running {@link JsonLexer.feed} (called from the sink) to return right after the
   * token being delivered; the caller feeds the rest of the chunk later.
   */
  pause(): void {
    this.#pauseRequested = true;
  }

  /**
   * Lexes `chunk`; tokens are delivered to the sink before this returns. Returns how many bytes
   * were consumed: all of them unless the sink called {@link JsonLexer.pause}.
   */
  feed(chunk: Uint8Array): number {
    this.#pauseRequested = false;
    const n = chunk.length;
    let state = this.#state;
    // The current token is #tok[0..#tokLen) followed by chunk[tokStart..i).
    let tokStart = 0;
    let i = 0;
    while (i < n) {
      if (state === DQ || state === SQ) {
        // Fast path: a run of bytes that neither end the string nor need decoding. The run is
        // capped so a token is cut at exactly MAX_TOKEN_SIZE + 1 bytes, as QEMU does.
        const plainTable = state === DQ ? PLAIN_DQ : PLAIN_SQ;
        let limit = tokStart + (MAX_TOKEN_SIZE + 1 - this.#tokLen);
        if (limit > n) limit = n;
        while (i < limit && plainTable[chunk[i]] === 1) i++;
        if (this.#tokLen + (i - tokStart) > MAX_TOKEN_SIZE) {
          this.#forceOut(tokStart, i);
          state = START;
          tokStart = i;
          continue;
        }
        if (i === n) break;
      } else if (state === RECOVERY) {
        while (i < n && SKIP_RECOVERY[chunk[i]] === 1) i++;
        tokStart = i;
        if (i === n) break;
        // Every byte recovery stops at is lexed afresh from START (the table's lookahead),
        // where a `{` or `[` may start a message the sink takes whole: the host's `0xFF`
        // before each resync lands here.
        state = START;
        continue;
      }

      const byte = chunk[i];
      if (
        (state === DQ || state === SQ) && (byte >= 0x80 || byte === 0x5c)
      ) {
        this.#plain = false;
      } else if (
        state === START && (byte === 0x7b || byte === 0x5b) && this.#message !== undefined
      ) {
        // Nothing is pending here (a token in progress would not be in START), so a message
        // the sink takes whole is exactly what lexing these bytes would have produced.
        const taken = this.#message(chunk, i);
        if (taken > 0) {
          i += taken;
          tokStart = i;
          if (this.#pauseRequested) {
            this.#pauseRequested = false;
            this.#state = START;
            return i;
          }
          continue;
        }
      }
      // One byte through the machine; a lookahead transition looks at the same byte again.
      for (;;) {
        const entry = TABLE[(state << 8) | byte];
        const next = entry & ~LOOKAHEAD;
        const consumed = (entry & LOOKAHEAD) === 0;
        const pos = consumed ? i + 1 : i;
        if (next >= FIRST_TOKEN || next === ERROR) {
          this.#emit(next === ERROR ? Tok.ERROR : next as TokenType, chunk, tokStart, pos);
          state = next === ERROR ? RECOVERY : START;
          tokStart = pos;
          if (this.#pauseRequested) {
            // Between tokens: nothing is carried over, the rest is lexed afresh from `pos`.
            this.#pauseRequested = false;
            this.#state = state;
            return pos;
          }
        } else {
          if (next === START || next === RECOVERY) {
            // Whitespace and skipped bytes never belong to a token.
            tokStart = pos;
          }
          state = next;
        }
        if (consumed) break;
      }
      i++;

      if (this.#tokLen + (i - tokStart) > MAX_TOKEN_SIZE) {
        this.#forceOut(tokStart, i);
        state = START;
        tokStart = i;
      }
    }
    this.#state = state;
    if (tokStart < n) this.#append(chunk, tokStart, n);
    return n;
  }

  /** Delivers the token #tok[0..#tokLen) + chunk[start..end), then empties it. */
  #emit(type: TokenType, chunk: Uint8Array, start: number, end: number): void {
    const plain = this.#plain;
    this.#plain = true;
    if (this.#tokLen === 0) {
      this.#sink.token(type, chunk, start, end, plain);
      return;
    }
    this.#append(chunk, start, end);
    const len = this.#tokLen;
    this.#tokLen = 0;
    this.#sink.token(type, this.#tok, 0, len, plain);
    this.#shrink();
  }

  /** Hands over a token that outgrew the limit and restarts lexing (QEMU's forced emit). */
  #forceOut(start: number, end: number): void {
    const len = this.#tokLen + (end - start);
    this.#tokLen = 0;
    this.#plain = true;
    this.#shrink();
    this.#sink.overlong(len);
  }

  #append(chunk: Uint8Array, start: number, end: number): void {
    const need = this.#tokLen + (end - start);
    if (need > this.#tok.length) {
      let cap = this.#tok.length * 2;
      while (cap < need) cap *= 2;
      // A token never exceeds MAX_TOKEN_SIZE + 1 bytes; do not double past that.
      if (cap > MAX_TOKEN_SIZE + 1) cap = Math.max(need, MAX_TOKEN_SIZE + 1);
      const grown = new Uint8Array(cap);
      grown.set(this.#tok.subarray(0, this.#tokLen));
      this.#tok = grown;
    }
    this.#tok.set(chunk.subarray(start, end), this.#tokLen);
    this.#tokLen = need;
  }

  /** Releases a token buffer that grew large for one huge token. */
  #shrink(): void {
    if (this.#tokLen === 0 && this.#tok.length > 16 * 1024 * 1024) this.#tok = new Uint8Array(256);
  }
}
