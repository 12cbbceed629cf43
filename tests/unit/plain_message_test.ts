/**
 * Plain messages (lib/protocol/plain_message.ts) are recognised whole; every other message, and
 * every error, still comes from the lexer and parser. Whatever the input, the events are the
 * ones the lexer and parser alone produce, down to the order of object members.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { PLAIN_DEPTH, plainMessage } from "../../lib/protocol/plain_message.ts";
import { type MessageEvent, parseMessages } from "../../lib/protocol/streamer.ts";
import type { QValue } from "../../lib/protocol/value.ts";

const bin = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** A value with its members in order and its integers marked, for exact comparison. */
function shape(v: QValue): unknown {
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [k, shape(x)]) };
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === "bigint") return `int ${v}`;
  if (typeof v === "number") return `double ${Object.is(v, -0) ? "-0" : v}`;
  return v;
}

const shapeEvent = (ev: MessageEvent) =>
  ev.kind === "value" ? { value: shape(ev.value) } : { error: ev.desc };

function bothWays(input: Uint8Array): void {
  const text = [...input].map((b) => String.fromCharCode(b)).join("");
  assertEquals(
    parseMessages(input).map(shapeEvent),
    parseMessages(input, { plain: false }).map(shapeEvent),
    JSON.stringify(text),
  );
}

Deno.test("the requests hosts send are recognised whole, with their exact length", () => {
  const requests = [
    '{"execute":"guest-sync-delimited","arguments":{"id":1234567890}}',
    '{"execute": "guest-sync", "arguments": {"id": 42}}',
    '{"execute":"guest-ping"}',
    '{"execute":"guest-info"}',
    '{"execute":"guest-exec","arguments":{"path":"/bin/true","capture-output":true}}',
    '{"execute":"guest-file-open","arguments":{"path":"/tmp/x","mode":"w+"}}',
    '{"execute":"guest-file-read","arguments":{"handle":1000,"count":4194304}}',
    '{"execute":"guest-exec-status","arguments":{"pid":731}}',
    '{ "execute" : "guest-get-time" }',
    '{\r\n\t"execute":"guest-ping"\n}',
    '{"execute":"guest-ping","arguments":{}}',
    "[]",
    "[1,-2,true,false,null]",
  ];
  for (const r of requests) {
    const found = plainMessage(r + "\xff{", 0);
    assertOk(found, r);
    assertEquals(found.length, r.length, r);
    const [ev] = parseMessages(bin(r), { plain: false });
    assertEquals(ev.kind === "value" && shape(ev.value), shape(found.value), r);
  }
});

Deno.test("what the subset leaves out goes to the lexer and parser", () => {
  const others = [
    '{"a":1,}', // trailing comma
    "[1,]",
    '{"a":1 "b":2}', // missing comma
    '{"a" 1}',
    '{"a":1,"a":2}', // repeated key: QEMU fails the message
    '{"b":{"x":1,"x":1}}',
    '{"1":2}', // array-index key: a JS object would list it first
    '{"a":1,"0":2}',
    '{"a":1.5}',
    '{"a":1e3}',
    '{"a":01}',
    '{"a":1234567890123456}', // 16 digits: may not be exact as a double
    '{"a":"x\\n"}', // escapes
    "{'a':1}", // single quotes
    '{"a":"\x7f"}',
    '{"a":"\xc3\xa9"}', // non-ASCII
    '{"a":tru}',
    '{"a":truex}',
    '{"a":' + "[".repeat(PLAIN_DEPTH) + "]".repeat(PLAIN_DEPTH) + "}", // too deep
    '{"a":1', // cut
    "{1:2}",
  ];
  for (const o of others) assertEquals(plainMessage(o, 0), undefined, o);
});

Deno.test("streams of messages give the same events with and without plain messages", () => {
  const samples = [
    '\xff{"execute":"guest-sync-delimited","arguments":{"id":9}}'.repeat(3),
    '{"execute":"guest-ping"}{"execute":"guest-ping"}\n{"execute":"guest-info"}',
    '{"a":1,"a":2}{"b":[1,]}{"c":"\\u0041"}',
    '{"1":{"2":3}}[{"a":{"b":1}}]',
    '}{"a":1}]',
    '{"a":[1,{"b":2}],"c":{}}\xfe{"d":null}',
  ];
  for (const s of samples) bothWays(bin(s));
});

Deno.test("random streams give the same events with and without plain messages", () => {
  // Deterministic pseudo-random generator (xorshift), so a failure reproduces.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)];
  const keys = [
    '"a"',
    '"b"',
    '"5"',
    '"execute"',
    '"0"',
    '"7x"',
    '""',
    "'q'",
    '"a\\"b"',
    '"__proto__"',
  ];
  const scalars = [
    "0",
    "-0",
    "7",
    "-12",
    "123456789012345",
    "1234567890123456",
    "99999999999999999999",
    "1.5",
    "2e3",
    "01",
    "true",
    "false",
    "null",
    "nul",
    '"s"',
    '"x y/z:{}[],"',
    '"\\n"',
    '"\xc3\xa9"',
    '"\x7f"',
    "'sq'",
    '"\xff"',
  ];
  const ws = ["", "", "", " ", "\t", "\r\n", "  "];
  const value = (depth: number): string => {
    const w = () => pick(ws);
    if (depth > 0 && rand(3) === 0) {
      const n = rand(4);
      const members = Array.from(
        { length: n },
        () => `${w()}${pick(keys)}${w()}:${w()}${value(depth - 1)}${w()}`,
      );
      return `{${members.join(",")}${rand(20) === 0 ? "," : ""}}`;
    }
    if (depth > 0 && rand(3) === 0) {
      const n = rand(4);
      const elements = Array.from({ length: n }, () => `${w()}${value(depth - 1)}${w()}`);
      return `[${elements.join(",")}${rand(20) === 0 ? "," : ""}]`;
    }
    return pick(scalars);
  };
  const breakers = ["\xff", "\xfe", "}", "]", ",", ":", "\x01", " ", "{", "["];
  for (let round = 0; round < 3000; round++) {
    let s = "";
    const count = 1 + rand(4);
    for (let m = 0; m < count; m++) {
      if (rand(3) === 0) s += pick(breakers);
      s += value(1 + rand(PLAIN_DEPTH + 1));
    }
    if (rand(4) === 0) {
      // One byte changed somewhere.
      const at = rand(s.length);
      s = s.slice(0, at) + pick([...breakers, '"', "1", "a", "\\"]) + s.slice(at + 1);
    }
    bothWays(bin(s));
  }
});

Deno.test("a message cut by a chunk's end, or longer than one text window, is still right", () => {
  const long = '{"execute":"guest-file-write","arguments":{"handle":1,"buf-b64":"' +
    "QUJD".repeat(40_000) + '"}}';
  const stream = bin('\xff{"execute":"guest-ping"}' + long + '{"execute":"guest-ping"}');
  const whole = parseMessages(stream).map(shapeEvent);
  assertEquals(whole, parseMessages(stream, { plain: false }).map(shapeEvent));
  assertEquals(whole.length, 4);
});
