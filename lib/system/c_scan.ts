/**
 * The C library's number and field conversions (glibc on a 64-bit Linux) that qemu-ga applies
 * to /proc and /sys text: `strtoul`, `strtol`, `atoi` and a `sscanf` subset of `%s`, `%u`,
 * `%lu` and `%ld`. The kernel's own output never needs the odd corners (signs, overflow), but a
 * reimplementation that parses the same bytes must land on the same numbers.
 *
 * @module
 */

const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);

/** isspace() in the C locale. */
export function isCSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function digitValue(b: number, base: number): number {
  const d = b >= 0x30 && b <= 0x39
    ? b - 0x30
    : b >= 0x61 && b <= 0x7a
    ? b - 0x61 + 10
    : b >= 0x41 && b <= 0x5a
    ? b - 0x41 + 10
    : 99;
  return d < base ? d : -1;
}

/** One strto*l conversion: where it ended (`end === start` when nothing was converted). */
export interface Converted {
  readonly value: bigint;
  readonly end: number;
}

/**
 * The magnitude and sign of a strto*l number at `pos` (leading white space, sign, `0x` for base
 * 16), with the magnitude saturated at 2^64 - 1 and `overflow` set past it.
 */
function convert(
  buf: Uint8Array,
  pos: number,
  end: number,
  base: number,
): { negative: boolean; magnitude: bigint; overflow: boolean; end: number } | undefined {
  let k = pos;
  while (k < end && isCSpace(buf[k])) k++;
  let negative = false;
  if (k < end && (buf[k] === 0x2b || buf[k] === 0x2d)) {
    negative = buf[k] === 0x2d;
    k++;
  }
  if (
    base === 16 && k + 1 < end && buf[k] === 0x30 && (buf[k + 1] | 0x20) === 0x78 &&
    k + 2 < end && digitValue(buf[k + 2], 16) >= 0
  ) {
    k += 2;
  }
  const first = k;
  let magnitude = 0n;
  let overflow = false;
  for (; k < end; k++) {
    const d = digitValue(buf[k], base);
    if (d < 0) break;
    if (!overflow) {
      magnitude = magnitude * BigInt(base) + BigInt(d);
      if (magnitude > U64_MAX) overflow = true;
    }
  }
  if (k === first) return undefined;
  return { negative, magnitude: overflow ? U64_MAX : magnitude, overflow, end: k };
}

/**
 * strtoul: an unsigned 64-bit value; a minus sign negates modulo 2^64, overflow gives
 * 2^64 - 1. Nothing convertible gives 0 with `end === pos`.
 */
export function strtoul(buf: Uint8Array, pos = 0, end = buf.length, base = 10): Converted {
  const c = convert(buf, pos, end, base);
  if (!c) return { value: 0n, end: pos };
  if (c.overflow) return { value: U64_MAX, end: c.end };
  return { value: c.negative ? BigInt.asUintN(64, -c.magnitude) : c.magnitude, end: c.end };
}

/** strtol: a signed 64-bit value, saturated at the int64 limits. */
export function strtol(buf: Uint8Array, pos = 0, end = buf.length, base = 10): Converted {
  const c = convert(buf, pos, end, base);
  if (!c) return { value: 0n, end: pos };
  const v = c.negative ? -c.magnitude : c.magnitude;
  return { value: v > I64_MAX ? I64_MAX : v < I64_MIN ? I64_MIN : v, end: c.end };
}

/** atoi: glibc's `(int) strtol(s, NULL, 10)`, so out-of-range values wrap to 32 bits. */
export function atoi(buf: Uint8Array, pos = 0, end = buf.length): number {
  return Number(BigInt.asIntN(32, strtol(buf, pos, end).value));
}

/** The conversions {@link scanFields} understands. */
export type Conversion = "s" | "u" | "lu" | "ld";

/** What a `%s` yields (the bytes) or a number conversion (its value). */
export type Field = Uint8Array | bigint;

/**
 * sscanf over `buf[pos, end)` with a format made of the given conversions separated by white
 * space (white space in a format matches any amount, and number conversions skip it anyway).
 * Returns the converted fields; their count is sscanf's return value, except that sscanf
 * returns EOF (-1) where this returns `eof: true` with no fields (input ended before the first
 * conversion). A NUL byte ends the input, as it ends a C string.
 *
 * `%u` is glibc's: converted as unsigned long, then truncated to 32 bits.
 */
export function scanFields(
  buf: Uint8Array,
  conversions: readonly Conversion[],
  pos = 0,
  end = buf.length,
): { fields: Field[]; eof: boolean } {
  const nul = buf.subarray(pos, end).indexOf(0);
  if (nul >= 0) end = pos + nul;
  const fields: Field[] = [];
  let k = pos;
  for (const conv of conversions) {
    while (k < end && isCSpace(buf[k])) k++;
    if (k >= end) return { fields, eof: fields.length === 0 };
    if (conv === "s") {
      const start = k;
      while (k < end && !isCSpace(buf[k])) k++;
      fields.push(buf.slice(start, k));
      continue;
    }
    const c = conv === "ld" ? strtol(buf, k, end) : strtoul(buf, k, end);
    if (c.end === k) break;
    k = c.end;
    fields.push(conv === "u" ? BigInt.asUintN(32, c.value) : c.value);
  }
  return { fields, eof: false };
}

/** Splits bytes into lines as getline() returns them (the last one may lack a newline). */
export function* lines(data: Uint8Array): Generator<Uint8Array> {
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    const stop = nl < 0 ? data.length : nl + 1;
    yield data.subarray(start, stop);
    start = stop;
  }
}
