/**
 * Reads one line field by field the way glibc's `sscanf` conversions do, so parsers of /proc
 * files accept and refuse exactly the lines qemu-ga's `sscanf` calls accept and refuse (odd
 * lines included: a sign, a `0x` prefix, a field glued to the next one by a width limit).
 *
 * @module
 */

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

/** C's isspace in the C locale. */
export function isCSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";
}

function digitValue(c: string, base: 10 | 16): number {
  const v = base === 10 ? "0123456789".indexOf(c) : "0123456789abcdef".indexOf(c.toLowerCase());
  return c.length === 1 ? v : -1;
}

/**
 * A cursor over one line. Every conversion skips leading white space first, as scanf's do;
 * each returns undefined when it matches nothing (scanf then stops converting).
 *
 * @example
 * ```ts
 * const s = new CScanner("eth0 0000FEA9 1");
 * s.token(); // "eth0"
 * s.unsigned(16); // 0xFEA9n
 * s.signed(10); // 1n
 * ```
 */
export class CScanner {
  readonly #s: string;
  #i = 0;

  constructor(line: string) {
    this.#s = line;
  }

  #skipSpace(): void {
    while (this.#i < this.#s.length && isCSpace(this.#s[this.#i])) this.#i++;
  }

  /** `%s` / `%Ns`: a run of non-space characters, at most `width` of them. */
  token(width = Infinity): string | undefined {
    this.#skipSpace();
    const start = this.#i;
    while (this.#i < this.#s.length && !isCSpace(this.#s[this.#i]) && this.#i - start < width) {
      this.#i++;
    }
    return this.#i > start ? this.#s.slice(start, this.#i) : undefined;
  }

  /** Sign and digits (with `0x` for base 16), at most `width` characters; magnitude unbounded. */
  #number(base: 10 | 16, width: number): { negative: boolean; magnitude: bigint } | undefined {
    this.#skipSpace();
    const s = this.#s;
    let i = this.#i;
    const end = Math.min(s.length, i + width);
    let negative = false;
    if (i < end && (s[i] === "+" || s[i] === "-")) negative = s[i++] === "-";
    if (
      base === 16 && i + 2 < end && s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X") &&
      digitValue(s[i + 2], 16) >= 0
    ) {
      i += 2;
    }
    let magnitude = 0n;
    const first = i;
    while (i < end && digitValue(s[i], base) >= 0) {
      magnitude = magnitude * BigInt(base) + BigInt(digitValue(s[i], base));
      i++;
    }
    if (i === first) return undefined;
    this.#i = i;
    return { negative, magnitude };
  }

  /** `%d` / `%lld` (strtol/strtoll): the value clamped to int64, as the C library does. */
  signed(base: 10 | 16, width = Infinity): bigint | undefined {
    const n = this.#number(base, width);
    if (!n) return undefined;
    const v = n.negative ? -n.magnitude : n.magnitude;
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v;
  }

  /**
   * `%x` / `%X` / `%u` (strtoul): the magnitude clamped to uint64, a minus sign negating it
   * modulo 2^64. Callers narrow it to the C variable's width (`BigInt.asIntN(32, v)` for an
   * `int`, `BigInt.asUintN(32, v)` for an `unsigned int`).
   */
  unsigned(base: 10 | 16, width = Infinity): bigint | undefined {
    const n = this.#number(base, width);
    if (!n) return undefined;
    const m = n.magnitude > UINT64_MAX ? UINT64_MAX : n.magnitude;
    return n.negative && m !== UINT64_MAX ? BigInt.asUintN(64, -m) : m;
  }
}

/**
 * `sscanf(line, format)` for formats made of `%s`, `%Ns`, `%d`, `%lld`, `%x`, `%X` separated by
 * spaces: all the converted values in order (strings for `s`, bigints for the rest, see
 * {@link CScanner}), or undefined when fewer than all of them matched.
 *
 * @example
 * ```ts
 * scanLine("eth0 1f 7", "%s %x %d"); // ["eth0", 31n, 7n]
 * scanLine("eth0 zz 7", "%s %x %d"); // undefined
 * ```
 */
export function scanLine(line: string, format: string): (string | bigint)[] | undefined {
  const s = new CScanner(line);
  const out: (string | bigint)[] = [];
  for (const spec of format.split(" ")) {
    const m = /^%(\d*)(s|d|lld|x|X)$/.exec(spec);
    if (!m) throw new Error(`unsupported conversion ${spec}`);
    const width = m[1] === "" ? Infinity : Number(m[1]);
    const v = m[2] === "s"
      ? s.token(width)
      : m[2] === "d" || m[2] === "lld"
      ? s.signed(10, width)
      : s.unsigned(16, width);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}
