/**
 * Message framing and limits (qemu-ga-behaviour.md §2.1–2.3): when values are emitted, the
 * exact limit boundaries and texts, resynchronisation, chunking, robustness.
 *
 * The limit expectations were checked against qemu-ga 7.2.22 with the same byte streams.
 */
import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  JsonMessageParser,
  MAX_NESTING,
  MAX_TOKEN_COUNT,
  type MessageEvent,
  parseMessages,
} from "../../lib/protocol/streamer.ts";
import { MAX_TOKEN_SIZE } from "../../lib/protocol/lexer.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import { POLL_CYCLE } from "../../scripts/bench_poll.ts";

const bin = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const show = (ev: MessageEvent): string =>
  ev.kind === "value" ? "V " + toJson(ev.value) : "E " + ev.desc;

/** Events of `input` fed in pieces of `chunk` bytes (0 = at once), shortened for asserts. */
function run(input: Uint8Array | string, chunk = 0): string[] {
  const bytes = typeof input === "string" ? bin(input) : input;
  const out: string[] = [];
  const p = new JsonMessageParser((ev) => out.push(show(ev).slice(0, 200)));
  if (chunk === 0) p.feed(bytes);
  else for (let k = 0; k < bytes.length; k += chunk) p.feed(bytes.subarray(k, k + chunk));
  return out;
}

const SIZE = "E JSON token size limit exceeded";
const COUNT = "E JSON token count limit exceeded";
const NEST = "E JSON nesting depth limit exceeded";
const EXPECTING = "E JSON parse error, expecting value";

/** `{"execute":"guest-ping","id":"<n × x>"}`: 29 bytes of tokens before the string. */
function stringRequest(n: number): Uint8Array {
  const head = bin('{"execute":"guest-ping","id":"');
  const b = new Uint8Array(head.length + n + 2);
  b.set(head);
  b.fill(0x78, head.length, head.length + n);
  b.set(bin('"}'), head.length + n);
  return b;
}

Deno.test("streamer: emission points", () => {
  // A top-level object or array at its closer, scalars by themselves, no newline needed.
  deepStrictEqual(run('{"a":1}[2]"s"'), ['V {"a": 1}', "V [2]", 'V "s"']);
  // A number or keyword needs the next byte to end it.
  deepStrictEqual(run("123"), []);
  deepStrictEqual(run("123 true\n"), ["V 123", "V true"]);
  // An incomplete object waits, across newlines.
  deepStrictEqual(run('{"execute":"guest-ping"\n'), []);
  deepStrictEqual(run('{"execute":"guest-ping"\n}\n'), ['V {"execute": "guest-ping"}']);
  // Negative counts end the message at once.
  deepStrictEqual(run("}"), [EXPECTING]);
  deepStrictEqual(run("]"), [EXPECTING]);
  deepStrictEqual(run("[}"), [EXPECTING]); // brace count went negative
  deepStrictEqual(run('{"a":[}'), []); // brackets still open: nothing yet
  // ...until the brackets balance too; then `}` is where the array wanted a value.
  deepStrictEqual(run('{"a":[}]'), [EXPECTING]);
  // `:` and `,` at top level are complete (both counts zero) and are not values.
  deepStrictEqual(run(":,"), [EXPECTING, EXPECTING]);
});

Deno.test("streamer: the state is global and survives between feeds (reconnects)", () => {
  const out: string[] = [];
  const p = new JsonMessageParser((ev) => out.push(show(ev)));
  p.feed(bin('{"execute":"guest-ping"')); // client 1 leaves a partial request
  p.feed(bin('{"execute":"guest-ping","id":2}')); // client 2's request continues it
  deepStrictEqual(out, []);
  p.feed(bin("}"));
  deepStrictEqual(out, ["E JSON parse error, expected separator in dict"]);
  // reset() (which qemu-ga never does) drops the partial message.
  p.feed(bin('{"a":'));
  p.reset();
  p.feed(bin('{"b":2}'));
  deepStrictEqual(out.slice(1), ['V {"b": 2}']);
});

Deno.test("streamer: 0xFF resynchronisation transcript (§2.8)", () => {
  deepStrictEqual(run('\xff{"execute":"guest-sync-delimited","arguments":{"id":42}}'), [
    "E JSON parse error, stray '\uFFFD'",
    'V {"execute": "guest-sync-delimited", "arguments": {"id": 42}}',
  ]);
  // A partial message is discarded by the lexical error.
  deepStrictEqual(run('{"execute":"gue\xff{"a":1}'), [
    "E JSON parse error, stray '\"gue\uFFFD'",
    'V {"a": 1}',
  ]);
  deepStrictEqual(run('{"a":[1,2\x00{"b":1}'), ["E JSON parse error, stray ''", 'V {"b": 1}']);
});

Deno.test("streamer: a long error token keeps every byte, invalid ones as U+FFFD", () => {
  const input = '"' + "\x80".repeat(50000) + "\xc3\xa9" + "\x01";
  deepStrictEqual(parseMessages(bin(input)), [
    { kind: "error", desc: `JSON parse error, stray '"${"\uFFFD".repeat(50000)}\u00e9\u0001'` },
  ]);
});

Deno.test("streamer: nesting limit 1024 and the 1100-deep transcript (§2.2)", () => {
  const ok = run("[".repeat(MAX_NESTING) + "]".repeat(MAX_NESTING));
  deepStrictEqual(ok.length, 1);
  strictEqual(ok[0].startsWith("V [[[["), true);
  // 1025th opener fails; the streamer resets and the rest is lexed afresh.
  const over = run("[".repeat(1025) + "]".repeat(1025));
  deepStrictEqual(over, [NEST, ...Array(1025).fill(EXPECTING)]);
  // 1100: one nesting error, the last 75 `[` pair with 75 `]` into one array value, then
  // 1025 stray `]`.
  const t = run("[".repeat(1100) + "]".repeat(1100) + "\n");
  strictEqual(t.length, 1 + 1 + 1025);
  strictEqual(t[0], NEST);
  strictEqual(t[1], "V " + "[".repeat(75) + "]".repeat(75));
  deepStrictEqual(t.slice(2), Array(1025).fill(EXPECTING));
  // Braces and brackets count together.
  const mixed = run('{"a":'.repeat(600) + "[".repeat(500));
  deepStrictEqual(mixed, [NEST]);
});

Deno.test("streamer: token size limit, exact boundaries (64 MiB incl. the +1)", () => {
  // Tokens before the string total 29 bytes; the check is size + len + 1 > 64 MiB.
  const okN = MAX_TOKEN_SIZE - 33;
  const ok = run(stringRequest(okN), 1 << 20);
  strictEqual(ok.length, 1);
  strictEqual(ok[0].startsWith('V {"execute": "guest-ping", "id": "xxx'), true);
  // One byte more: the string passes, the closing `}` (29 + len + 1 + 1) does not.
  deepStrictEqual(run(stringRequest(okN + 1), 1 << 20), [SIZE]);
  // Two more: the string itself fails; its `}` is then a stray closer.
  deepStrictEqual(run(stringRequest(okN + 2), 1 << 20), [SIZE, EXPECTING]);
  // Over 64 MiB + 1 bytes the lexer cuts the token; the rest is lexed afresh.
  deepStrictEqual(run(stringRequest(MAX_TOKEN_SIZE + 10), 1 << 20), [
    SIZE,
    "E JSON parse error, invalid keyword 'xxxxxxxxxx'",
  ]);
  // A bare number token of 64 MiB + 1 digits is cut the same way.
  const digits = new Uint8Array(MAX_TOKEN_SIZE + 5);
  digits.fill(0x31);
  digits[MAX_TOKEN_SIZE + 4] = 0x7d;
  deepStrictEqual(run(digits, 1 << 20), [SIZE, "V 111", EXPECTING]);
});

Deno.test("streamer: token count limit, exact boundary (2 Mi tokens)", () => {
  // `[` + k × `1,` + `[]]` is 2k + 4 tokens.
  const k = MAX_TOKEN_COUNT / 2 - 2;
  const exact = "[" + "1,".repeat(k) + "[]]";
  const ok = run(exact);
  strictEqual(ok.length, 1);
  strictEqual(ok[0].startsWith("V [1, 1, "), true);
  // One more token: the final `]` is refused.
  deepStrictEqual(run("[" + "1,".repeat(k) + "[1]]"), [COUNT]);
  // Refused mid-array: what follows is lexed afresh as new messages.
  deepStrictEqual(run("[" + "1,".repeat(MAX_TOKEN_COUNT / 2) + "1,2]").slice(0, 4), [
    COUNT,
    "V 1",
    EXPECTING,
    "V 2",
  ]);
});

Deno.test("streamer: any chunking gives the same events", () => {
  const input = bin(
    '{"execute":"guest-ping"}{"execute":"guest-sync","arguments":{"id":2}}[1,2.5e3,"\\u00e9"]' +
      '{"a":+1}\xff"x\xc3\xa9" 12 nul true {"k":"v","k":1}}]' + '{"big":"' + "y".repeat(5000) +
      '"}',
  );
  const whole = run(input);
  deepStrictEqual(whole.map((e) => e.slice(0, 40)), [
    'V {"execute": "guest-ping"}',
    'V {"execute": "guest-sync", "arguments":',
    'V [1, 2500, "\\u00E9"]',
    "E JSON parse error, stray '+'",
    EXPECTING,
    "E JSON parse error, stray '\uFFFD'",
    // Recovery after 0xFF skips the string, numbers and keywords up to the next `{`.
    "E JSON parse error, duplicate key",
    EXPECTING,
    EXPECTING,
    'V {"big": "yyyyyyyyyyyyyyyyyyyyyyyyyyyyy',
  ]);
  let seed = 7;
  for (let round = 0; round < 50; round++) {
    const out: string[] = [];
    const p = new JsonMessageParser((ev) => out.push(show(ev).slice(0, 200)));
    for (let k = 0; k < input.length;) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const n = 1 + (seed >>> 8) % 64;
      p.feed(input.subarray(k, k + n));
      k += n;
    }
    deepStrictEqual(out, whole);
  }
});

Deno.test("streamer: random bytes never throw, and parsing resumes afterwards", () => {
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  const alphabet = bin(
    "{}[]:,\"'\\u0123456789-+.eEatrufnlsxd \t\n\r\x00\x01\x7f\x80\xc0\xc3\xe2\xed\xf0\xf8\xfe\xff",
  );
  let events = 0;
  const p = new JsonMessageParser(() => events++);
  for (let round = 0; round < 2000; round++) {
    const len = rnd() % 200;
    const chunk = new Uint8Array(len);
    for (let k = 0; k < len; k++) {
      chunk[k] = rnd() % 4 === 0 ? rnd() & 0xff : alphabet[rnd() % alphabet.length];
    }
    p.feed(chunk);
  }
  strictEqual(events > 0, true);
  // Whatever state the garbage left, a control byte resynchronises.
  const out: MessageEvent[] = [];
  const q = new JsonMessageParser((ev) => out.push(ev));
  q.feed(bin('{"a":"\\'));
  q.feed(bin('\x01{"execute":"guest-ping"}'));
  deepStrictEqual(out.map(show), [
    "E JSON parse error, stray '\"\\\\\\u0001'".replace(
      "\\\\\\u0001",
      "\\\u0001",
    ),
    'V {"execute": "guest-ping"}',
  ]);
});

Deno.test("streamer: a throwing callback does not lose the rest of the chunk", () => {
  const seen: string[] = [];
  const p = new JsonMessageParser((ev) => {
    seen.push(show(ev));
    if (seen.length === 1) throw new Error("boom");
  });
  throws(() => p.feed(bin("[1][2][3]")), /boom/);
  deepStrictEqual(seen, ["V [1]", "V [2]", "V [3]"]);
  p.feed(bin("[4]"));
  deepStrictEqual(seen.at(-1), "V [4]");
});

Deno.test("streamer: feed() called from the callback is queued in order", () => {
  const seen: string[] = [];
  const p: JsonMessageParser = new JsonMessageParser((ev) => {
    seen.push(show(ev));
    if (seen.length === 1) p.feed(bin("[9]"));
  });
  p.feed(bin("[1][2]"));
  deepStrictEqual(seen, ["V [1]", "V [2]", "V [9]"]);
});

Deno.test("streamer: parseMessages helper", () => {
  deepStrictEqual(parseMessages('{"a":1}'), [
    { kind: "value", value: new Map([["a", 1n]]), remembered: true },
  ]);
  deepStrictEqual(parseMessages(bin("}")), [
    { kind: "error", desc: "JSON parse error, expecting value" },
  ]);
});

Deno.test("streamer: repeated messages, taken whole, give exactly the events lexing gives", () => {
  // Fragments that repeat, extend or prefix one another, nest remembered messages, follow
  // errors and recovery, and split a remembered message's bytes over other input.
  const fragments = [
    '{"execute":"guest-ping"}',
    '{"execute":"guest-ping"}\n',
    '{"execute":"guest-ping","id":1}',
    '{"execute":"guest-ping","id":12}',
    '{"execute":"guest-ping"',
    '{"execute":"guest-ping"}}',
    "[]",
    "[],",
    "[[]]",
    "[{}]",
    "{}",
    '{"a":[1,{"b":"\\u00e9"}]}',
    '{"a":1,"a":2}',
    '{"k":tru}',
    "12 ",
    "\xff",
    "\x01",
    '"open',
    '"',
    " ",
    "]",
    "}",
  ].map(bin);
  let seed = 99;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  for (let round = 0; round < 200; round++) {
    const parts: Uint8Array[] = [];
    for (let k = 0, n = 1 + rnd() % 60; k < n; k++) parts.push(fragments[rnd() % fragments.length]);
    const input = new Uint8Array(parts.reduce((t, p) => t + p.length, 0));
    parts.reduce((o, p) => (input.set(p, o), o + p.length), 0);
    // One byte at a time no message is ever in one chunk, so none is taken whole.
    const reference = run(input, 1);
    deepStrictEqual(run(input), reference);
    deepStrictEqual(run(input, 1 + rnd() % 40), reference);
    // Pausing after every message: the consumed counts must be right for both paths.
    const paused: string[] = [];
    const p = new JsonMessageParser((ev) => paused.push(show(ev).slice(0, 200)), () => true);
    for (let off = 0; off < input.length;) off += p.feed(input.subarray(off));
    deepStrictEqual(paused, reference);
  }
});

Deno.test("streamer: a KubeVirt poll cycle's requests are all remembered from one cycle to the next", () => {
  // Nine distinct requests per cycle; a memo smaller than that forgets each before it repeats.
  const cycle = POLL_CYCLE.map((name) => bin(`{"execute":"${name}"}\n`));
  const values: unknown[] = [];
  const p = new JsonMessageParser((ev) => values.push(ev.kind === "value" ? ev.value : ev.desc));
  for (let round = 0; round < 3; round++) for (const message of cycle) p.feed(message);
  strictEqual(values.length, 3 * cycle.length);
  for (let k = 0; k < cycle.length; k++) {
    // The same value object again: the message was taken whole from the memo, not re-parsed.
    strictEqual(values[cycle.length + k], values[k], `request ${k}, second cycle`);
    strictEqual(values[2 * cycle.length + k], values[k], `request ${k}, third cycle`);
  }
});

Deno.test("streamer: resyncs are not remembered, so a burst of them leaves a poll cycle remembered", () => {
  const cycle = POLL_CYCLE.map((name) => bin(`{"execute":"${name}"}\n`));
  const values: unknown[] = [];
  const p = new JsonMessageParser((ev) => values.push(ev.kind === "value" ? ev.value : ev.desc));
  for (const message of cycle) p.feed(message);
  // More distinct resyncs than the memo holds, each with its own id as a host sends them; both
  // paths: the plain one, and the full parser (a value it does not take) after a 0xFF.
  for (let k = 0; k < 20; k++) {
    p.feed(bin(`{"execute":"guest-sync-delimited","arguments":{"id":${k}}}`));
    p.feed(new Uint8Array([0xff]));
    p.feed(bin(`{"execute":"guest-sync","arguments":{"id":${k}, "x": 1.5}}`));
  }
  const before = values.length;
  for (const message of cycle) p.feed(message);
  for (let k = 0; k < cycle.length; k++) {
    strictEqual(values[before + k], values[k], `request ${k} after the resyncs`);
  }
});
