/**
 * Hostile bytes, side by side: seeded random and mutated byte streams sent to the newest qemu-ga
 * and to denoga, whose replies must be identical line for line; neither may die or hang (every
 * case ends with the harness's guest-sync sentinel, which both must answer).
 *
 * Streams: random bytes over an alphabet biased to JSON syntax (invalid UTF-8, 0x00, control
 * bytes and lone surrogates included); valid requests mutated (byte flips, deletions,
 * duplicated spans, inserted tokens); ids and sync ids of every JSON type including huge and
 * odd numbers; deep nesting; inputs that amplify into many error replies; and valid pipelines
 * split at every offset. Each case ends with 0xFF, which resets both lexers, so one case cannot
 * leak into the next.
 *
 * Reproducible: `DENOGA_FUZZ_SEED` picks the seed (default fixed), `DENOGA_FUZZ_CASES` the
 * number of random cases; a failure names the seed and case.
 *
 * Safety: every generated stream is checked before it is sent: the only command names it may
 * spell (after decoding `\uXXXX` escapes) are ping, sync, info and host-name, so no mutation can ever
 * reach a command that changes the machine.
 *
 * @module
 */

import { type Case, needQemuGaNewest, registerSideBySide } from "./harness.ts";

const SEED = Number(Deno.env.get("DENOGA_FUZZ_SEED") ?? 20261204);
const RANDOM_CASES = Number(Deno.env.get("DENOGA_FUZZ_CASES") ?? 300);

/** mulberry32: small, fast, and the same sequence on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const enc = new TextEncoder();

/**
 * False when a command-like run of characters in `b` (raw, or with `\uXXXX` escapes decoded)
 * contains part of the name of any command but the read-only ping, sync, info and host-name
 * ones. A name the agent does not know is harmless.
 */
function isSafe(b: Uint8Array): boolean {
  const raw = new TextDecoder("latin1").decode(b);
  const decoded = raw.replace(
    /\\u([0-9a-fA-F]{4})/g,
    (_, h: string) => String.fromCharCode(parseInt(h, 16)),
  );
  // Quotes may be split by escapes or nothing at all: look for any run of name characters.
  for (const text of [raw, decoded]) {
    for (const m of text.matchAll(/[a-z0-9-]*g[a-z0-9-]*/gi)) {
      const name = m[0].toLowerCase();
      const at = name.indexOf("guest-");
      if (at < 0) continue;
      // Any known command spelled inside the run, other than the safe ones, refuses the stream.
      const tail = name.slice(at);
      if (DANGEROUS.some((d) => tail.includes(d))) return false;
    }
  }
  return true;
}

/** Parts of the names of every other command (checked after the `guest-` prefix). */
const DANGEROUS = [
  "shutdown",
  "suspend",
  "set-",
  "fstrim",
  "fsfreeze",
  "exec",
  "file-",
  "ssh-",
  "network",
  "fsinfo",
  "disks",
  "stats",
  "vcpus",
  "memory",
  "users",
  "osinfo",
  "load",
  "time",
];

const TOKENS = [
  "{",
  "}",
  "[",
  "]",
  ":",
  ",",
  '"',
  "'",
  "\\",
  " ",
  "\n",
  "\t",
  "true",
  "false",
  "null",
  "0",
  "-1",
  "1e999",
  "18446744073709551616",
  "-9223372036854775809",
  "0.5",
  "1E+2",
  '"execute"',
  '"guest-ping"',
  '"guest-sync"',
  '"arguments"',
  '"id"',
  "\\u0000",
  "\\ud800",
  "\\uDFFF",
  "\\x",
  "%d",
  "%s",
];

/** Bytes the alphabet adds beyond ASCII: invalid UTF-8, overlongs, surrogates, 0x00, 0xFE. */
const ODD_BYTES = [
  [0x00],
  [0x01],
  [0x1f],
  [0x7f],
  [0x80],
  [0xc0, 0x80],
  [0xc3],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xfe],
  [0xf0, 0x9f, 0x98, 0x80],
  [0xc3, 0xa9],
];

const VALID = [
  '{"execute":"guest-ping"}',
  '{"execute":"guest-ping","id":"a"}',
  '{"execute":"guest-sync","arguments":{"id":42}}',
  '{"execute":"guest-sync-delimited","arguments":{"id":7}}',
  '{"execute":"guest-get-host-name","arguments":{}}',
  "{'execute':'guest-ping','id':[1,{'a':null}]}",
];

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)];
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Random bytes over the biased alphabet. */
function randomStream(r: () => number): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = 1 + Math.floor(r() * 60);
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.6) parts.push(enc.encode(pick(r, TOKENS)));
    else if (x < 0.8) parts.push(Uint8Array.from(pick(r, ODD_BYTES)));
    else parts.push(Uint8Array.of(0x20 + Math.floor(r() * 0x5f)));
  }
  return concat(parts);
}

/** A valid request (or two) with a few mutations. */
function mutatedStream(r: () => number): Uint8Array {
  let b: Uint8Array = enc.encode(pick(r, VALID) + (r() < 0.5 ? pick(r, VALID) : ""));
  const rounds = 1 + Math.floor(r() * 4);
  for (let i = 0; i < rounds; i++) {
    const at = Math.floor(r() * (b.length + 1));
    const kind = Math.floor(r() * 4);
    if (kind === 0 && b.length > 0) {
      // flip one byte to anything
      b = b.slice();
      b[Math.min(at, b.length - 1)] = Math.floor(r() * 256);
    } else if (kind === 1) {
      const len = Math.floor(r() * 6);
      b = concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]);
    } else if (kind === 2) {
      const len = Math.floor(r() * 12);
      b = concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
    } else {
      const ins = r() < 0.5 ? enc.encode(pick(r, TOKENS)) : Uint8Array.from(pick(r, ODD_BYTES));
      b = concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
  }
  return b;
}

/** JSON values of every type, as ids. */
function randomValue(r: () => number, depth = 0): string {
  const x = r();
  if (x < 0.1) return "null";
  if (x < 0.2) return r() < 0.5 ? "true" : "false";
  if (x < 0.45) {
    return pick(r, [
      "0",
      "-0",
      "9223372036854775807",
      "9223372036854775808",
      "-9223372036854775808",
      "-9223372036854775809",
      "18446744073709551615",
      "18446744073709551616",
      "1e308",
      "1e309",
      "-1e-400",
      "0.1",
      "123456789012345678901234567890",
      "4.9e-324",
      "2.2250738585072014e-308",
      String(Math.floor(r() * 1e12)),
    ]);
  }
  if (x < 0.65) return pick(r, ['"x"', '""', '"\\u00e9\\ud83d\\ude00"', "'q'", '"\\n\\t"']);
  if (depth > 3) return "[]";
  if (x < 0.85) {
    return `[${Array.from({ length: Math.floor(r() * 3) }, () => randomValue(r, depth + 1))}]`;
  }
  return `{"k":${randomValue(r, depth + 1)}}`;
}

function idStream(r: () => number): Uint8Array {
  const v = randomValue(r);
  return enc.encode(
    r() < 0.5
      ? `{"execute":"guest-ping","id":${v}}`
      : `{"execute":"${r() < 0.5 ? "guest-sync" : "guest-sync-delimited"}",` +
        `"arguments":{"id":${v}}}`,
  );
}

/** The case: the stream, then 0xFF so both lexers start the next case clean. */
function fuzzCase(name: string, stream: Uint8Array, split?: number): Case {
  return {
    name,
    steps: [{ send: concat([stream, Uint8Array.of(0xff)]), ...(split ? { split } : {}) }],
  };
}

function randomCases(): Case[] {
  const r = rng(SEED);
  const cases: Case[] = [];
  const makers = [randomStream, mutatedStream, idStream];
  while (cases.length < RANDOM_CASES) {
    const maker = makers[cases.length % makers.length];
    const stream = maker(r);
    if (!isSafe(stream)) continue;
    const split = r() < 0.3 ? 1 + Math.floor(r() * 7) : undefined;
    cases.push(fuzzCase(`seed ${SEED} case ${cases.length} (${maker.name})`, stream, split));
  }
  return cases;
}

/** A valid pipeline split at every offset: the same replies, whatever the write boundaries. */
function splitCases(): Case[] {
  const pipeline = enc.encode(
    '{"execute":"guest-ping","id":1}{"execute":"guest-sync","arguments":{"id":2}}' +
      "\xff" + '{"execute":"guest-sync-delimited","arguments":{"id":3}}',
  );
  const cases: Case[] = [];
  for (let at = 1; at < pipeline.length; at += 7) {
    cases.push({
      name: `pipeline split at ${at}`,
      steps: [{ send: pipeline.subarray(0, at) }, { send: pipeline.subarray(at) }],
    });
  }
  return cases;
}

const FIXED: Case[] = [
  fuzzCase("deep nesting: 2000 [", enc.encode("[".repeat(2000))),
  fuzzCase("deep nesting: 1100 objects", enc.encode('{"a":'.repeat(1100))),
  fuzzCase(
    "deep nesting closed: [[[…]]] 1025 deep",
    enc.encode("[".repeat(1025) + "]".repeat(1025)),
  ),
  fuzzCase("2000 stray ] (one error each)", enc.encode("]".repeat(2000))),
  fuzzCase("5000 × [], (amplifying)", enc.encode("[],".repeat(5000))),
  fuzzCase("array of 70000 ones", enc.encode(`[${"1,".repeat(70000)}1]`)),
  fuzzCase("64 KiB string", enc.encode(`{"execute":"guest-ping","id":"${"x".repeat(65536)}"}`)),
  fuzzCase("huge number token", enc.encode(`{"execute":"guest-ping","id":${"9".repeat(5000)}}`)),
  fuzzCase("only 0xFF bytes", new Uint8Array(300).fill(0xff)),
  fuzzCase("invalid UTF-8 everywhere", Uint8Array.from({ length: 512 }, (_, i) => 0x80 + i % 64)),
];

registerSideBySide(
  "fuzz (newest)",
  [...FIXED, ...splitCases(), ...randomCases()],
  { newest: true },
  [needQemuGaNewest()],
);

Deno.test("fuzz: the safety filter refuses dangerous names, raw or escaped", () => {
  const refuse = [
    '{"execute":"guest-shutdown"}',
    '{"execute":"guest-\\u0073hutdown"}',
    '{"execute":"guest-set-time"}',
    '{"execute":"guest-get-time"}',
    '{"execute":"guest-fsfreeze-freeze"}',
    "guest-exec",
  ];
  for (const s of refuse) {
    if (isSafe(enc.encode(s))) throw new Error(`not refused: ${s}`);
  }
  for (const s of VALID) {
    if (!isSafe(enc.encode(s))) throw new Error(`refused: ${s}`);
  }
});
