/**
 * Lexer behaviour (qemu-ga-behaviour.md §2.2): tokens, lookahead termination, error tokens,
 * recovery, chunking and the 64 MiB forced cut.
 */
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { JsonLexer, type LexerSink, MAX_TOKEN_SIZE, Tok } from "../../lib/protocol/lexer.ts";

const NAMES: Record<number, string> = {
  [Tok.LCURLY]: "{",
  [Tok.RCURLY]: "}",
  [Tok.LSQUARE]: "[",
  [Tok.RSQUARE]: "]",
  [Tok.COLON]: ":",
  [Tok.COMMA]: ",",
  [Tok.INTEGER]: "int",
  [Tok.FLOAT]: "float",
  [Tok.KEYWORD]: "kw",
  [Tok.STRING]: "str",
  [Tok.ERROR]: "ERR",
};

/** A "binary string": each char code (0..255) is one byte. */
const bin = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
function latin1(b: Uint8Array): string {
  let s = "";
  for (let k = 0; k < b.length; k += 8192) s += String.fromCharCode(...b.subarray(k, k + 8192));
  return s;
}

/** Tokens as `type:text` (text in latin1), plus `plain` markers for strings. */
function lex(input: string | Uint8Array, chunk = 0): string[] {
  const bytes = typeof input === "string" ? bin(input) : input;
  const out: string[] = [];
  const sink: LexerSink = {
    token(type, buf, start, end, plain) {
      const text = latin1(buf.subarray(start, end));
      if (type < Tok.INTEGER) out.push(text); // structural characters stand for themselves
      else out.push(`${NAMES[type]}:${text}` + (type === Tok.STRING && !plain ? " (decode)" : ""));
    },
    overlong(length) {
      out.push(`overlong:${length}`);
    },
  };
  const lexer = new JsonLexer(sink);
  if (chunk === 0) lexer.feed(bytes);
  else for (let k = 0; k < bytes.length; k += chunk) lexer.feed(bytes.subarray(k, k + chunk));
  return out;
}

function check(input: string, expected: string[]): void {
  for (const chunk of [0, 1, 2, 5]) {
    deepStrictEqual(lex(input, chunk), expected, `chunk ${chunk} of ${JSON.stringify(input)}`);
  }
}

Deno.test("lexer: tokens of a request", () => {
  check('{"execute":"guest-ping","id":1}', [
    "{",
    'str:"execute"',
    ":",
    'str:"guest-ping"',
    ",",
    'str:"id"',
    ":",
    "int:1",
    "}",
  ]);
  check(" \t\r\n[ 'a\"b' , \"c'd\" ]", ["[", "str:'a\"b'", ",", 'str:"c\'d"', "]"]);
  check("\"a\\\"b\" '\\''", ['str:"a\\"b" (decode)', "str:'\\'' (decode)"]);
  check('"\xc3\xa9" "\x7f~ "', ['str:"\xc3\xa9" (decode)', 'str:"\x7f~ "']);
});

Deno.test("lexer: numbers and keywords need a following byte", () => {
  deepStrictEqual(lex("123"), []);
  deepStrictEqual(lex("true"), []);
  deepStrictEqual(lex("-0.5e-3"), []);
  check("123\n", ["int:123"]);
  check("0 -0 -12 1.5 1e5 1E+5 1.0e-05 -0.0\t", [
    "int:0",
    "int:-0",
    "int:-12",
    "float:1.5",
    "float:1e5",
    "float:1E+5",
    "float:1.0e-05",
    "float:-0.0",
  ]);
  // Any byte ends them, even one that is an error on its own: it is then lexed afresh.
  check("1}true]null,false:", ["int:1", "}", "kw:true", "]", "kw:null", ",", "kw:false", ":"]);
  check("12X,", ["int:12", "ERR:X", ","]);
  check("truex1,", ["kw:truex", "int:1", ","]);
  check("abc-1 ", ["kw:abc", "int:-1"]);
});

Deno.test("lexer: malformed numbers become error tokens with the offending byte", () => {
  check("01,", ["ERR:01", ","]);
  check("00,", ["ERR:00", ","]);
  check("1.}", ["ERR:1.}"]);
  check("1.e5,", ["ERR:1.e", ","]);
  check("-}", ["ERR:-}"]);
  check("--", ["ERR:--"]);
  check("1e}", ["ERR:1e}"]);
  check("1e+}", ["ERR:1e+}"]);
  check("+1,", ["ERR:+", ","]);
  check(".5,", ["ERR:.", ","]);
});

Deno.test("lexer: recovery skips to the next structural or control byte", () => {
  // After an error, bytes 0x20..0xFD and TAB are dropped (quotes included).
  check('+ bla "x" \t 1 2 ,"b"', ["ERR:+", ",", 'str:"b"']);
  check("+abc\ndef ", ["ERR:+", "kw:def"]);
  check("T{", ["ERR:T", "{"]);
  // A control byte or FE/FF both ends recovery and is itself an error.
  check("+\x01\x02[", ["ERR:+", "ERR:\x01", "ERR:\x02", "["]);
  check("+ \xff\xfe", ["ERR:+", "ERR:\xff", "ERR:\xfe"]);
  check("+\x00", ["ERR:+", "ERR:\x00"]);
  check('"a\tb" ]', ['ERR:"a\t', "]"]);
  check('"abc\x00def"}', ['ERR:"abc\x00', "}"]);
  check('"gue\xffst-ping"}', ['ERR:"gue\xff', "}"]);
  check('"\\\x01"x', ['ERR:"\\\x01']); // the closing quote is skipped by recovery
  check("\x0b\x0c ", ["ERR:\x0b", "ERR:\x0c"]);
});

Deno.test("lexer: every byte at token start, and every byte in recovery", () => {
  const tokenStart = new Set<number>();
  for (const c of "\"'-0123456789{}[],:abcdefghijklmnopqrstuvwxyz") tokenStart.add(c.charCodeAt(0));
  const whitespace = new Set([0x20, 0x09, 0x0d, 0x0a]);
  for (let b = 0; b < 256; b++) {
    const got = lex(new Uint8Array([b]));
    if (whitespace.has(b) || (tokenStart.has(b) && !"{}[],:".includes(String.fromCharCode(b)))) {
      deepStrictEqual(got, [], `byte ${b}`);
    } else if (tokenStart.has(b)) {
      strictEqual(got.length, 1, `byte ${b}`);
      strictEqual(got[0].startsWith("ERR"), false, `byte ${b}`);
    } else {
      deepStrictEqual(got, [`ERR:${String.fromCharCode(b)}`], `byte ${b}`);
    }
    // In recovery (after "+"), only structural bytes, control bytes but TAB, and FE/FF resync.
    const resync = "{}[],:".includes(String.fromCharCode(b)) || (b < 0x20 && b !== 0x09) ||
      b >= 0xfe;
    const rec = lex(new Uint8Array([0x2b, b, 0x5b]));
    deepStrictEqual(rec[0], "ERR:+");
    // CR and LF resynchronise and are then whitespace; the others are tokens or errors.
    if (resync) strictEqual(rec.length, b === 0x0a || b === 0x0d ? 2 : 3, `recovery byte ${b}`);
    else deepStrictEqual(rec, ["ERR:+", "["], `recovery byte ${b}`);
  }
});

Deno.test("lexer: strings accept 0x20..0xFD raw, reject controls and FE/FF", () => {
  for (let b = 0; b < 256; b++) {
    const got = lex(new Uint8Array([0x22, 0x61, b, 0x62, 0x22, 0x5d]));
    if (b === 0x22) {
      deepStrictEqual(got, ['str:"a"', "kw:b"], `byte ${b}`); // then `"]` opens a string
    } else if (b === 0x5c) {
      deepStrictEqual(got, ['str:"a\\b" (decode)', "]"], `byte ${b}`); // an escaped `b`
    } else if (b >= 0x20 && b <= 0xfd) {
      strictEqual(got.length, 2, `byte ${b}`);
      strictEqual(got[0].startsWith("str:"), true, `byte ${b}`);
    } else {
      strictEqual(got[0], `ERR:"a${String.fromCharCode(b)}`, `byte ${b}`);
    }
  }
});

Deno.test("lexer: a token spanning many chunks is reassembled", () => {
  const body = "x".repeat(100000);
  const input = `["${body}",1]`;
  for (const chunk of [1, 7, 4096, 65536]) {
    deepStrictEqual(lex(input, chunk), ["[", `str:"${body}"`, ",", "int:1", "]"]);
  }
});

Deno.test("lexer: a token is cut at 64 MiB + 1 bytes and lexing restarts", () => {
  // `"` + MAX_TOKEN_SIZE bytes: the token reaches MAX + 1 bytes before its closing quote.
  const n = MAX_TOKEN_SIZE;
  const bytes = new Uint8Array(n + 4);
  bytes[0] = 0x22;
  bytes.fill(0x61, 1, n + 2); // MAX + 1 letters: the last one starts a keyword
  bytes[n + 2] = 0x22; // then `"]` → string start...
  bytes[n + 3] = 0x5d;
  for (const chunk of [0, 1 << 20, 65537]) {
    const got = lex(bytes, chunk);
    deepStrictEqual(got, [`overlong:${MAX_TOKEN_SIZE + 1}`, "kw:a"], `chunk ${chunk}`);
  }
  // A string of exactly MAX bytes including its quotes is an ordinary token.
  const ok = new Uint8Array(n + 1);
  ok.fill(0x62);
  ok[0] = 0x22;
  ok[n - 1] = 0x22;
  ok[n] = 0x20;
  const got = lex(ok, 1 << 20);
  strictEqual(got.length, 1);
  strictEqual(got[0].startsWith('str:"bbb'), true);
  strictEqual(got[0].length, "str:".length + MAX_TOKEN_SIZE);
});

Deno.test("lexer: chunks are not retained after feed returns", () => {
  const seen: string[] = [];
  const lexer = new JsonLexer({
    token(type, buf, start, end) {
      seen.push(`${NAMES[type]} ${latin1(buf.subarray(start, end))}`);
    },
    overlong() {},
  });
  const buf = bin('["abc');
  lexer.feed(buf);
  buf.fill(0x7a); // the caller reuses its read buffer
  lexer.feed(bin('def"]'));
  deepStrictEqual(seen, ["[ [", 'str "abcdef"', "] ]"]);
});
