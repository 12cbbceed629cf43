/**
 * Parser behaviour (qemu-ga-behaviour.md §2.2–2.4, §2.9): values and the exact error texts.
 *
 * Every expectation in the tables below was checked byte for byte against qemu-ga 7.2.22 (a
 * differential run feeding the same bytes to the real agent and to this engine).
 */
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { JsonMessageParser, type MessageEvent } from "../../lib/protocol/streamer.ts";
import { JsonParser } from "../../lib/protocol/parser.ts";
import { Tok } from "../../lib/protocol/lexer.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import type { QValue } from "../../lib/protocol/value.ts";
import { decodeModUtf8Lossy, encodeModUtf8 } from "../../lib/protocol/utf8.ts";

/** A "binary string": each char code (0..255) is one byte, so tests can write "\xff". */
const bin = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Events as short strings: `V <value as QEMU writes it>` or `E <desc>`. */
function show(ev: MessageEvent): string {
  return ev.kind === "value" ? "V " + toJson(ev.value) : "E " + ev.desc;
}

/** Feeds `input` in pieces of `chunk` bytes (0 = all at once) to a fresh parser. */
function run(input: Uint8Array | string, chunk = 0): string[] {
  const bytes = typeof input === "string" ? bin(input) : input;
  const out: string[] = [];
  const p = new JsonMessageParser((ev) => out.push(show(ev)));
  if (chunk === 0) p.feed(bytes);
  else for (let k = 0; k < bytes.length; k += chunk) p.feed(bytes.subarray(k, k + chunk));
  return out;
}

/** Runs a case whole and in several chunkings; all must agree with `expected`. */
function check(input: Uint8Array | string, expected: string[]): void {
  for (const chunk of [0, 1, 2, 3, 7]) {
    deepStrictEqual(run(input, chunk), expected, `chunk ${chunk} of ${JSON.stringify(input)}`);
  }
}

/** The value of a single successful message. */
function value(input: string | Uint8Array): QValue {
  const out: MessageEvent[] = [];
  const p = new JsonMessageParser((ev) => out.push(ev));
  p.feed(typeof input === "string" ? bin(input) : input);
  strictEqual(out.length, 1);
  const ev = out[0];
  if (ev.kind !== "value") throw new Error(`expected a value, got ${ev.desc}`);
  return ev.value;
}

const E = (d: string) => "E JSON parse error, " + d;
const P = (id: string) => `{"execute":"guest-ping","id":${id}}`;
const PING = (id: string) => `V {"execute": "guest-ping", "id": ${id}}`;

Deno.test("parser: reference transcripts §2.2/§2.9", () => {
  check('{"execute":"guest-ping"}', ['V {"execute": "guest-ping"}']);
  check('{"execute":"guest-ping","id":01}', [E("stray '01'"), E("expecting value")]);
  check('{"execute":"guest-ping","id":"tab\there"}', [E("stray '\"tab\t'"), E("expecting value")]);
  check('{"execute":"guest-ping","id":+1}', [E("stray '+'"), E("expecting value")]);
  check('{"execute": guest-ping}\n', [E("stray '-p'"), E("expecting value")]);
  check("{'execute':'guest-sync','arguments':{'id':7}}", [
    'V {"execute": "guest-sync", "arguments": {"id": 7}}',
  ]);
  check('{"execute":"guest-ping","execute":"guest-ping"}', [E("duplicate key")]);
  check('{"execute":"guest-ping"}{"execute":"guest-sync","arguments":{"id":2}}', [
    'V {"execute": "guest-ping"}',
    'V {"execute": "guest-sync", "arguments": {"id": 2}}',
  ]);
  check(P('{"a":[1,null,true,"x"]}'), [PING('{"a": [1, null, true, "x"]}')]);
  check(P("[-0.0,1e2,1E-2,12345678901234567890,-12345678901234567890]"), [
    PING("[-0, 100, 0.01, 12345678901234567890, -1.2345678901234567e+19]"),
  ]);
  check("}\n", [E("expecting value")]);
  check("[1,2]\n", ["V [1, 2]"]);
  check('"hello"\n', ['V "hello"']);
  check('\xff{"execute":"guest-ping"}\n', [E("stray '\uFFFD'"), 'V {"execute": "guest-ping"}']);
  check('{"execute":"guest-p\xc3(ing"}\n', [E("invalid UTF-8 sequence in string")]);
});

Deno.test("parser: structural errors, first error wins", () => {
  const cases: [string, string[]][] = [
    [P('{"a":1,}'), [E("expecting value")]],
    [P("{1:2}"), [E("key is not a string in object")]],
    [P('{"a":1,"a":2}'), [E("duplicate key")]],
    // The value is parsed before the duplicate check, so its error comes first.
    [P('{"a":1,"a":nul}'), [E("invalid keyword 'nul'")]],
    // A key is parsed as a whole value before it is found not to be a string.
    [P('{{"a":nul}:1}'), [E("invalid keyword 'nul'")]],
    [P("{{}:1}"), [E("key is not a string in object")]],
    [P("{[1]:1}"), [E("key is not a string in object")]],
    [P('{"a" 1}'), [E("missing : in object pair")]],
    [P('{"a":1]'), [E("expected separator in dict"), E("expecting value")]],
    [P("[1 2]"), [E("expected separator in list")]],
    [P("[1:2]"), [E("expected separator in list")]],
    [P("[1,]"), [E("expecting value")]],
    [P("[true1]"), [E("expected separator in list")]],
    [P("1E5e"), [E("expected separator in dict")]],
    [P('{"a":[1}]'), [E("expected separator in list")]],
    ["[}", [E("expecting value")]],
    ["[{]}", [E("expecting value")]],
    ["}]]}", [
      E("expecting value"),
      E("expecting value"),
      E("expecting value"),
      E("expecting value"),
    ]],
    [":,", [E("expecting value"), E("expecting value")]],
    [P("[{},[],\"\",'']"), [PING('[{}, [], "", ""]')]],
  ];
  for (const [input, expected] of cases) check(input, expected);
});

Deno.test("parser: keywords", () => {
  check(P("[true,false,null]"), [PING("[true, false, null]")]);
  check(P("nul"), [E("invalid keyword 'nul'")]);
  check(P("True"), [E("stray 'T'"), E("expecting value")]);
  // QEMU formats parse errors into a 1 KiB buffer: the message is cut at 1023 bytes.
  const long = "a".repeat(2000);
  const msg = `invalid keyword '${long}'`.slice(0, 1023);
  strictEqual(msg.endsWith("a"), true);
  check(P(long), [E(msg)]);
  check(P("a".repeat(1005)), [E(`invalid keyword '${"a".repeat(1005)}'`)]);
  // 17 + 1006 bytes: exactly the closing quote falls off.
  check(P("a".repeat(1006)), [E(`invalid keyword '${"a".repeat(1006)}`)]);
});

Deno.test("parser: numbers", () => {
  check(
    P(
      "[0,-0,9223372036854775807,9223372036854775808,-9223372036854775808," +
        "-9223372036854775809,18446744073709551615,18446744073709551616]",
    ),
    [
      PING(
        "[0, 0, 9223372036854775807, 9223372036854775808, -9223372036854775808, " +
          "-9.2233720368547758e+18, 18446744073709551615, 1.8446744073709552e+19]",
      ),
    ],
  );
  check(
    P(
      "[1e400,-1e400,1e-400,0.1,1.5,100.0,1e16,1e17,123456789012345678,0.0001,0.00001," +
        "5e-324,1.7976931348623157e308]",
    ),
    [
      PING(
        "[inf, -inf, 0, 0.10000000000000001, 1.5, 100, 10000000000000000, 1e+17, " +
          "123456789012345678, 0.0001, 1.0000000000000001e-05, 4.9406564584124654e-324, " +
          "1.7976931348623157e+308]",
      ),
    ],
  );
  check(P("[2.98023223876953125e-8, 1.5e300, 4.35, 0.3, 2.5, 1e21, 1e22, 123e-20]"), [
    PING(
      "[2.9802322387695312e-08, 1.5000000000000001e+300, 4.3499999999999996, " +
        "0.29999999999999999, 2.5, 1e+21, 1e+22, 1.23e-18]",
    ),
  ]);
  // Types: integers are bigint (int64, else uint64), everything else a double.
  deepStrictEqual(value("[-0, 1, -1, 9223372036854775807, 18446744073709551615]"), [
    0n,
    1n,
    -1n,
    9223372036854775807n,
    18446744073709551615n,
  ]);
  deepStrictEqual(value("[1.0, -0.0, 1e2, 18446744073709551616, -9223372036854775809]"), [
    1,
    -0,
    100,
    18446744073709551616,
    -9223372036854775809,
  ]);
  strictEqual(Object.is((value("[-0.0]") as QValue[])[0], -0), true);
  strictEqual(value("123456789012345\n"), 123456789012345n);
  strictEqual(value("-1234567890123456\n"), -1234567890123456n);
  strictEqual(value(`1${"0".repeat(400)}\n`), Infinity);
  strictEqual(value(`-1${"0".repeat(30)}\n`), -1e30);
  // Malformed numbers are lexical errors (the offending byte is part of the token).
  const bad: [string, string[]][] = [
    [P("1."), [E("stray '1.}'")]],
    [P("1.e5"), [E("stray '1.e'"), E("expecting value")]],
    [P(".5"), [E("stray '.'"), E("expecting value")]],
    [P("-"), [E("stray '-}'")]],
    [P("1e"), [E("stray '1e}'")]],
    [P("1e+"), [E("stray '1e+}'")]],
    [P("-a"), [E("stray '-a'"), E("expecting value")]],
    [P("00"), [E("stray '00'"), E("expecting value")]],
  ];
  for (const [input, expected] of bad) check(input, expected);
});

Deno.test("parser: string escapes and quoting", () => {
  check(P(`"\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t"`), [PING(`"\\" ' \\\\ / \\b \\f \\n \\r \\t"`)]);
  check(P(`'a"b\\'c'`), [PING(`"a\\"b'c"`)]);
  check(P(`'\\"'`), [PING(`"\\""`)]);
  check(P('"\\x"'), [E("invalid escape sequence in string")]);
  check(P('"\\\xc3\xa9"'), [E("invalid escape sequence in string")]);
  check(P('"\\u007F\\u0000"'), [PING('"\\u007F\\u0000"')]);
  check(P('"\\u0001\\u001f\\u007f\\u0080\\u00ff\\uabcd\\uFFFD/<>&"'), [
    PING('"\\u0001\\u001F\\u007F\\u0080\\u00FF\\uABCD\\uFFFD/<>&"'),
  ]);
  strictEqual(value('"a\\u0000b"'), "a\u0000b");
  strictEqual(value('"\\u00e9\\u20AC"'), "é€");
});

Deno.test("parser: \\u escapes, surrogates and invalid code points", () => {
  check(P('"\\uD83D\\uDE00 \\ud83d\\ude00"'), [PING('"\\uD83D\\uDE00 \\uD83D\\uDE00"')]);
  strictEqual(value('"\\uD83D\\uDE00"'), "\u{1F600}");
  const notValid = (t: string) => E(`${t} is not a valid Unicode character`);
  const cases: [string, string][] = [
    ['"\\ud83d"', "\\ud83d"],
    ['"\\ud83d\\u0041"', "\\ud83d"], // a lead surrogate followed by a non-trailing \u
    ['"\\ud83dx"', "\\ud83d"],
    ['"\\ud83d\\u"', "\\ud83d"],
    ['"\\udc00"', "\\udc00"],
    ['"\\ufdd0"', "\\ufdd0"],
    ['"\\uFFFE"', "\\uFFFE"],
    ['"\\uD83F\\uDFFE"', "\\uD83F\\uDFFE"], // U+1FFFE, a noncharacter: both escapes quoted
    // Not four hex digits: QEMU still quotes six bytes, stopping at the end of the token.
    ['"\\u12"', '\\u12"'],
    ['"\\uzzzz"', "\\uzzzz"],
    ["'\\u1'", "\\u1'"],
    ['"\\u"', '\\u"'],
    ['"\\u1\xc3\xa9\xc3\xa9"', "\\u1\u00e9\ufffd"], // cut inside a UTF-8 sequence
    ['"\\u\xc3\xa9\xc3\xa9"', "\\u\u00e9\u00e9"],
  ];
  for (const [s, text] of cases) check(P(s), [notValid(text)]);
});

Deno.test("parser: raw bytes in strings (modified UTF-8)", () => {
  check(utf8(P('"é€𝄞\u007f\u0080"')), [PING('"\\u00E9\\u20AC\\uD834\\uDD1E\\u007F\\u0080"')]);
  check(P('"a\xc0\x80b"'), [PING('"a\\u0000b"')]); // C0 80 is U+0000
  strictEqual(value('"a\xc0\x80b"'), "a\u0000b");
  check(P('"a\x7fb"'), [PING('"a\\u007Fb"')]);
  const invalid = [
    '"\xc3("', // truncated sequence
    '"\xc3"', // truncated by the closing quote
    '"\xe0\x80\x80"', // overlong
    '"\xc1\xbf"', // overlong two-byte
    '"\xed\xa0\x80"', // UTF-8-encoded surrogate
    '"\xef\xb7\x90"', // U+FDD0 noncharacter
    '"\xef\xbf\xbe"', // U+FFFE
    '"\xf0\x9f\xbf\xbf"', // U+1FFFF
    '"\xf4\x90\x80\x80"', // above U+10FFFF
    '"\xf8\x88\x80\x80\x80"', // five-byte form
    '"\xfc\x84\x80\x80\x80\x80"', // six-byte form
    '"\x80"', // lone continuation byte
    '"ok\xe2\x82"', // truncated three-byte
  ];
  for (const s of invalid) check(P(s), [E("invalid UTF-8 sequence in string")]);
  // The first problem in the string wins, whichever kind it is.
  check(P('"\xc3(\\x"'), [E("invalid UTF-8 sequence in string")]);
  check(P('"\\x\xc3("'), [E("invalid escape sequence in string")]);
  // Raw control bytes and FE/FF are lexical errors, reported at once.
  check(P('"a\x01b"'), [
    E("stray '\"a\\u0001'".replace("\\u0001", "\u0001")),
    E("expecting value"),
  ]);
  check(P('"\xfe"'), [E("stray '\"\uFFFD'"), E("expecting value")]);
  check(P('"\\\x01"'), [E("stray '\"\\\u0001'"), E("expecting value")]);
  check(P('"\\\xff"'), [E("stray '\"\\\uFFFD'"), E("expecting value")]);
});

Deno.test("parser: object keys keep insertion order in the Map", () => {
  const v = value('{"b":1,"a":{"y":[],"x":null}}');
  deepStrictEqual(
    v,
    new Map<string, QValue>([["b", 1n], ["a", new Map<string, QValue>([["y", []], ["x", null]])]]),
  );
  deepStrictEqual([...(v as Map<string, QValue>).keys()], ["b", "a"]);
  check(P('{"a\\u0000":1,"a\\u0000b":2,"\xc3\xa9":3}'), [
    PING('{"\\u00E9": 3, "a\\u0000": 1, "a\\u0000b": 2}'),
  ]);
});

Deno.test("parser: JsonParser reports premature EOI when tokens run out", () => {
  // Unreachable through the streamer, which only ends a message on a closer, but it is
  // QEMU's text for it.
  const p = new JsonParser();
  const b = bin("[");
  p.push(Tok.LSQUARE, b, 0, 1, true);
  deepStrictEqual(p.finish(), { ok: false, desc: "JSON parse error, premature EOI" });
  deepStrictEqual(p.finish(), { ok: false, desc: "JSON parse error, premature EOI" });
  const one = bin("1");
  p.push(Tok.INTEGER, one, 0, 1, true);
  deepStrictEqual(p.finish(), { ok: true, value: 1n });
});

Deno.test("parser: deep nesting within the limit parses without recursion trouble", () => {
  const depth = 1024;
  const v = value("[".repeat(depth) + "]".repeat(depth));
  let d = 0;
  for (let x: QValue = v; Array.isArray(x) && x.length > 0; x = x[0]) d++;
  strictEqual(d, depth - 1);
  const mixed = '{"a":'.repeat(500) + "[".repeat(500) + "1" + "]".repeat(500) + "}".repeat(500);
  strictEqual(run(mixed)[0].startsWith('V {"a": {"a": '), true);
});

Deno.test("utf8: lossy decoding delimits invalid sequences as QEMU's writer does", () => {
  const cases: [string, string][] = [
    ["abc", "abc"],
    ["a\x00b", "a"], // a C string ends at NUL
    ["\xc0\x80", "\u0000"],
    ["\xff", "\uFFFD"],
    ["\xc3(", "\uFFFD("], // the missing continuation byte is not swallowed
    ["\x80\x80", "\uFFFD\uFFFD"], // one per stray continuation byte
    ["\xe0\x80\x80", "\uFFFD"], // overlong: one for the whole sequence
    ["\xed\xa0\x80", "\uFFFD"], // surrogate
    ["\xf8\x88\x80\x80\x80!", "\uFFFD!"], // five-byte form, one replacement
    ["\xef\xbf\xbe", "\uFFFD"], // noncharacter
    ["\xf0\x9f\x98\x80", "\u{1F600}"],
    ["\xe2\x82", "\uFFFD"],
  ];
  for (const [bytes, text] of cases) strictEqual(decodeModUtf8Lossy(bin(bytes)), text, bytes);
  deepStrictEqual(
    encodeModUtf8("a\u0000é\u{1F600}\ud800"),
    bin("a\xc0\x80\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd"),
  );
});
