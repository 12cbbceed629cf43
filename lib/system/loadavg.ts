/**
 * /proc/loadavg as glibc's getloadavg reads it: at most 64 bytes in one read, the last byte read
 * dropped (it expects the newline there), then three numbers read with strtod in the C locale.
 *
 * @module
 */

/** How many bytes getloadavg reads. */
export const LOADAVG_READ_SIZE = 64;

// strtod's decimal, hexadecimal, infinity and NaN forms, after leading white space.
const NUMBER =
  /^[ \t\n\v\f\r]*([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?))/i;

function strtod(s: string): { value: number; rest: string } | undefined {
  const m = NUMBER.exec(s);
  if (!m) return undefined;
  const text = m[1].toLowerCase();
  const sign = text.startsWith("-") ? -1 : 1;
  const body = text.replace(/^[+-]/, "");
  let value: number;
  if (body.startsWith("inf")) value = Infinity;
  else if (body.startsWith("nan")) value = NaN;
  else if (body.startsWith("0x")) value = hexFloat(body.slice(2));
  else value = Number(body);
  return { value: sign * value, rest: s.slice(m[0].length) };
}

function hexFloat(s: string): number {
  const [mant, exp] = s.split("p");
  const [int, frac = ""] = mant.split(".");
  const digits = BigInt(`0x${int || "0"}${frac}`);
  return Number(digits) * 2 ** ((exp ? Number(exp) : 0) - 4 * frac.length);
}

/**
 * The 1, 5 and 15 minute load averages; undefined when the text does not start with three
 * numbers (getloadavg then fails).
 *
 * @example
 * ```ts
 * parseLoadavg(new TextEncoder().encode("0.52 0.58 0.59 1/234 5678\n")); // [0.52, 0.58, 0.59]
 * ```
 */
export function parseLoadavg(data: Uint8Array): [number, number, number] | undefined {
  const read = data.subarray(0, LOADAVG_READ_SIZE);
  if (read.length === 0) return undefined;
  let rest = new TextDecoder("latin1").decode(read.subarray(0, read.length - 1));
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = strtod(rest);
    if (!r) return undefined;
    out.push(r.value);
    rest = r.rest;
  }
  return [out[0], out[1], out[2]];
}
