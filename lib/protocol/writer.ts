/**
 * Values → the compact JSON text QEMU's writer produces (qemu-ga-behaviour.md §2.7).
 *
 * - `": "` after a key and `", "` between members/elements, no other whitespace.
 * - Strings: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`; every other code point below 0x20 or from
 *   0x7F up as `\uXXXX` in upper-case hex (beyond the BMP as a surrogate pair); code points QEMU
 *   considers invalid (lone surrogates, noncharacters) as `\uFFFD`; `/` is left alone. The
 *   output is therefore pure ASCII.
 * - Integers (`bigint`) in decimal; doubles (`number`) as C `%.17g` ({@link formatDouble}).
 * - Object members in QEMU's QDict iteration order: by hash bucket (tdb hash of the key's
 *   modified UTF-8 bytes, mod 512) ascending, and within a bucket the most recently inserted
 *   member first. Plain objects count as inserted in property order; `undefined` members are
 *   omitted.
 *
 * @module
 */

import { type ReplyValue, VerbatimString } from "./value.ts";
import { encodeModUtf8 } from "./utf8.ts";

/**
 * Serializes a value exactly as qemu-ga would (without the trailing newline).
 *
 * @example
 * ```ts
 * toJson(new Map([["return", new Map()], ["id", 1n]])); // '{"return": {}, "id": 1}'
 * ```
 */
export function toJson(value: ReplyValue): string {
  const chunks = toJsonChunks(value);
  let out = "";
  for (const c of chunks) out += typeof c === "string" ? c : latin1.decode(c);
  return out;
}

/**
 * Stands for a verbatim string inside the text being built. The writer's own output is pure
 * ASCII, so a non-ASCII placeholder cannot collide with it.
 */
const VERBATIM_MARK = "\uE000";
let verbatims: (string | Uint8Array)[] = [];
const latin1 = new TextDecoder("latin1");

/**
 * {@link toJson}, as pieces whose concatenation is the text: the content of each
 * {@link VerbatimString} is a piece of its own, so a caller can copy it into an output buffer
 * without building one big string first.
 */
export function toJsonChunks(value: ReplyValue): (string | Uint8Array)[] {
  const kept = typeof value === "object" && value !== null ? printed.get(value) : undefined;
  if (kept !== undefined) return [...kept];
  const chunks = printChunks(value);
  if (printOnceValues.has(value as object)) printed.set(value as object, [...chunks]);
  return chunks;
}

/** Values marked by {@link printOnce}, and the text of those printed so far. */
const printOnceValues = new WeakSet<object>();
const printed = new WeakMap<object, readonly (string | Uint8Array)[]>();

/**
 * Marks a reply value that will never change again, so {@link toJsonChunks} prints it once and
 * hands out that text while the value lives (a reply sent on every poll, such as guest-info's).
 */
export function printOnce<T extends object>(value: T): T {
  printOnceValues.add(value);
  return value;
}

function printChunks(value: ReplyValue): (string | Uint8Array)[] {
  const outer = verbatims;
  verbatims = [];
  try {
    const text = write(value);
    if (verbatims.length === 0) return [text];
    const parts = text.split(VERBATIM_MARK);
    const chunks: (string | Uint8Array)[] = [parts[0]];
    for (let k = 0; k < verbatims.length; k++) chunks.push(verbatims[k], parts[k + 1]);
    return chunks;
  } finally {
    verbatims = outer;
  }
}

function write(v: ReplyValue): string {
  if (v instanceof VerbatimString) {
    verbatims.push(v.text);
    return '"' + VERBATIM_MARK + '"';
  }
  switch (typeof v) {
    case "string":
      return quote(v);
    case "bigint":
      return v.toString();
    case "number":
      return formatDouble(v);
    case "boolean":
      return v ? "true" : "false";
    case "object":
      if (v === null) return "null";
      if (Array.isArray(v)) {
        const arr = v as readonly ReplyValue[];
        if (arr.length === 0) return "[]";
        let out = "[" + write(arr[0]);
        for (let k = 1; k < arr.length; k++) out += ", " + write(arr[k]);
        return out + "]";
      }
      if (v instanceof Map) return writeMembers([...v.entries()]);
      return writeMembers(Object.entries(v as { readonly [m: string]: ReplyValue | undefined }));
  }
  // Unreachable for well-typed input; QEMU has no representation for anything else.
  return "null";
}

/** Writes members (in insertion order) as an object in QEMU's hash order. */
function writeMembers(entries: [string, ReplyValue | undefined][]): string {
  const members: Member[] = [];
  for (let k = 0; k < entries.length; k++) {
    const [key, val] = entries[k];
    if (val === undefined) continue;
    members.push({ key, val, bucket: bucketOf(key), seq: k });
  }
  if (members.length === 0) return "{}";
  if (members.length > 1) members.sort(byQDictOrder);
  let out = "{";
  for (let k = 0; k < members.length; k++) {
    const m = members[k];
    if (k > 0) out += ", ";
    out += quote(m.key) + ": " + write(m.val);
  }
  return out + "}";
}

interface Member {
  key: string;
  val: ReplyValue;
  bucket: number;
  seq: number;
}

/** Buckets ascending; within a bucket, later insertions first (QLIST_INSERT_HEAD). */
function byQDictOrder(a: Member, b: Member): number {
  return a.bucket - b.bucket || b.seq - a.seq;
}

/** Number of hash buckets of a QEMU QDict. */
const QDICT_BUCKETS = 512;
const bucketCache = new Map<string, number>();
const BUCKET_CACHE_MAX = 4096;

/** The QDict bucket of `key`: tdb hash of its modified UTF-8 bytes, mod 512. */
export function bucketOf(key: string): number {
  let b = bucketCache.get(key);
  if (b === undefined) {
    b = tdbHash(key) % QDICT_BUCKETS;
    // Keys from requests are attacker-chosen: cap the cache rather than grow without bound.
    if (bucketCache.size < BUCKET_CACHE_MAX) bucketCache.set(key, b);
  }
  return b;
}

/** QEMU's tdb_hash over the key's modified UTF-8 bytes, as an unsigned 32-bit number. */
export function tdbHash(key: string): number {
  let ascii = true;
  for (let k = 0; k < key.length; k++) {
    const c = key.charCodeAt(k);
    if (c === 0 || c >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    let v = Math.imul(0x238f13af, key.length);
    for (let k = 0; k < key.length; k++) v = (v + (key.charCodeAt(k) << ((k * 5) % 24))) | 0;
    return (Math.imul(1103515243, v) + 12345) >>> 0;
  }
  const bytes = encodeModUtf8(key);
  let v = Math.imul(0x238f13af, bytes.length);
  for (let k = 0; k < bytes.length; k++) v = (v + (bytes[k] << ((k * 5) % 24))) | 0;
  return (Math.imul(1103515243, v) + 12345) >>> 0;
}

/** Characters that force the slow path of {@link quote}: control characters are the point. */
// deno-lint-ignore no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
// deno-lint-ignore no-control-regex
const ESCAPE_RUNS = /["\\\u0000-\u001f\u007f-\uffff]/g;

const HEX = "0123456789ABCDEF";
function u4(cu: number): string {
  return "\\u" + HEX[(cu >> 12) & 15] + HEX[(cu >> 8) & 15] + HEX[(cu >> 4) & 15] + HEX[cu & 15];
}

/** Escape text for code units below 0x80 (0x20..0x7E other than `"` and `\` are never asked). */
const SHORT_ESCAPES: string[] = [];
for (let c = 0; c < 0x80; c++) SHORT_ESCAPES.push(u4(c));
SHORT_ESCAPES[0x22] = '\\"';
SHORT_ESCAPES[0x5c] = "\\\\";
SHORT_ESCAPES[0x08] = "\\b";
SHORT_ESCAPES[0x0c] = "\\f";
SHORT_ESCAPES[0x0a] = "\\n";
SHORT_ESCAPES[0x0d] = "\\r";
SHORT_ESCAPES[0x09] = "\\t";

/** A JSON string literal as QEMU's writer would produce it (pure ASCII). */
export function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  let out = '"';
  let last = 0;
  ESCAPE_RUNS.lastIndex = 0;
  for (let m = ESCAPE_RUNS.exec(s); m !== null; m = ESCAPE_RUNS.exec(s)) {
    let k = m.index;
    if (k < last) continue; // second half of a surrogate pair, already written
    if (k > last) out += s.slice(last, k);
    const c = s.charCodeAt(k);
    last = k + 1;
    if (c < 0x80) {
      out += SHORT_ESCAPES[c];
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const lo = c <= 0xdbff && k + 1 < s.length ? s.charCodeAt(k + 1) : 0;
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        k++;
        last = k + 1;
        // Plane-final noncharacters U+xxFFFE/U+xxFFFF are invalid in QEMU's eyes.
        out += (c & 0x3f) === 0x3f && lo >= 0xdffe ? "\\uFFFD" : u4(c) + u4(lo);
      } else {
        out += "\\uFFFD"; // lone surrogate: not representable in QEMU's UTF-8
      }
    } else if ((c >= 0xfdd0 && c <= 0xfdef) || c >= 0xfffe) {
      out += "\\uFFFD"; // noncharacter
    } else {
      out += u4(c);
    }
  }
  if (last < s.length) out += s.slice(last);
  return out + '"';
}

// ---------------------------------------------------------------------------------------------
// Doubles as C printf("%.17g")

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** Index of the high word of a double in `u32` (platform endianness). */
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * Formats a double as C `printf("%.17g", x)` with glibc: 17 significant digits, rounded to
 * nearest with ties to even, trailing zeros (and a bare point) removed, exponent form
 * `d.ddde±XX` when the decimal exponent is below -4 or at least 17; `inf`, `-inf`, `nan`,
 * `-nan`, and `-0` for negative zero.
 *
 * @example
 * ```ts
 * formatDouble(0.1); // "0.10000000000000001"
 * formatDouble(1e-5); // "1.0000000000000001e-05"
 * ```
 */
export function formatDouble(x: number): string {
  if (x !== x) {
    f64[0] = x;
    return u32[HI] >>> 31 ? "-nan" : "nan";
  }
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return 1 / x < 0 ? "-0" : "0";
  // Below 1e17 %.17g writes an integer exactly, without exponent or point, as String does.
  if (Number.isSafeInteger(x)) return String(x);
  const neg = x < 0;
  const a = neg ? -x : x;
  // toExponential rounds correctly but breaks exact ties upward; glibc breaks them to even.
  const s = a.toExponential(16);
  const ePos = s.indexOf("e");
  let digits = s[0] + s.slice(2, ePos); // 17 significant digits
  const exp = Number(s.slice(ePos + 1));
  const last = digits.charCodeAt(16) - 0x30;
  if ((last & 1) === 1 && isTieAt17(a, exp)) {
    digits = digits.slice(0, 16) + String.fromCharCode(0x30 + last - 1);
  }
  let out: string;
  if (exp < -4 || exp >= 17) {
    let frac = digits.slice(1).replace(/0+$/, "");
    if (frac !== "") frac = "." + frac;
    const ae = exp < 0 ? -exp : exp;
    out = digits[0] + frac + (exp < 0 ? "e-" : "e+") + (ae < 10 ? "0" : "") + ae;
  } else if (exp >= 0) {
    const intPart = digits.slice(0, exp + 1);
    const frac = digits.slice(exp + 1).replace(/0+$/, "");
    out = frac === "" ? intPart : intPart + "." + frac;
  } else {
    out = ("0." + "0".repeat(-exp - 1) + digits).replace(/0+$/, "");
  }
  return neg ? "-" + out : out;
}

/**
 * True when `a` (positive, finite) lies exactly halfway between two 17-digit decimals at
 * decimal exponent `exp`, i.e. 2·a·10^(16−exp) is an odd integer.
 */
function isTieAt17(a: number, exp: number): boolean {
  f64[0] = a;
  const hi = u32[HI];
  const lo = u32[1 - HI];
  const biased = (hi >>> 20) & 0x7ff;
  // a = m · 2^k with m a 53-bit integer.
  let m = BigInt(hi & 0xfffff) * 0x100000000n + BigInt(lo);
  let k: number;
  if (biased === 0) {
    k = -1074;
  } else {
    m += 1n << 52n;
    k = biased - 1075;
  }
  while ((m & 1n) === 0n) {
    m >>= 1n;
    k++;
  }
  const s = 16 - exp;
  // 2·a·10^s = m · 2^(k+1+s) · 5^s with m odd: odd integer iff the power of two vanishes and
  // 5^s (if a divisor) divides m.
  if (k + 1 + s !== 0) return false;
  if (s >= 0) return true;
  return m % 5n ** BigInt(-s) === 0n;
}
