/**
 * Modified UTF-8 as QEMU understands it (qemu-ga-behaviour.md §2.4, §2.7).
 *
 * QEMU keeps strings as NUL-terminated "modified UTF-8": ordinary UTF-8, except that U+0000 is
 * written as the overlong pair `C0 80`. Both its JSON parser and its JSON writer walk such
 * strings one sequence at a time with the same decoder, whose rules are reproduced here:
 *
 * - a sequence is delimited by its lead byte: the lead byte announces how many continuation
 *   bytes follow (up to 5, so `F8`..`FD` start 5- and 6-byte sequences); a missing continuation
 *   byte ends the (invalid) sequence right before the byte that is not a continuation;
 * - a lone continuation byte, or `FE`/`FF`, is an invalid one-byte sequence;
 * - a well-formed sequence is still invalid when it is overlong (except `C0 80`), encodes a
 *   surrogate, one of the 66 noncharacters (U+FDD0..U+FDEF, U+xxFFFE, U+xxFFFF), or lies above
 *   U+10FFFF.
 *
 * The writer prints every invalid sequence as one U+FFFD, so a byte string that QEMU would
 * embed in a message (e.g. the token of a `stray '...'` error) is turned into the JS string that
 * our writer renders identically: {@link decodeModUtf8Lossy}.
 *
 * @module
 */

/** Smallest code point that needs a sequence of 2, 3, 4, 5, 6 bytes (overlong detection). */
const MIN_CP = [0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/** True for the code points QEMU accepts in strings (not a surrogate, not a noncharacter). */
export function isValidCodepoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return cp < 0xd800 || cp > 0xdfff;
}

/**
 * Where the last {@link modUtf8Codepoint} call stopped (index just past the sequence). Kept in
 * module state rather than in a result object so the hot decoding loops allocate nothing.
 */
export let modUtf8End = 0;

/**
 * Decodes the modified UTF-8 sequence starting at `buf[pos]`, treating every index at or
 * beyond `end` as a NUL byte (the C string terminator). Returns the code point, or -1 when the
 * sequence is invalid; {@link modUtf8End} is set to the index just past the sequence (equal to
 * `pos` for an empty sequence, i.e. a NUL byte).
 */
export function modUtf8Codepoint(buf: Uint8Array, pos: number, end: number): number {
  const lead = pos < end ? buf[pos] : 0;
  if (lead === 0) {
    modUtf8End = pos;
    return -1;
  }
  let p = pos + 1;
  if (lead < 0x80) {
    modUtf8End = p;
    return lead;
  }
  if (lead >= 0xfe || (lead & 0x40) === 0) {
    // Impossible byte, or a continuation byte without a lead byte.
    modUtf8End = p;
    return -1;
  }
  // Number of leading one bits = total sequence length (2..6).
  let len = 2;
  let mask = 0x20;
  while (lead & mask) {
    len++;
    mask >>= 1;
  }
  let cp = lead & (mask - 1);
  for (let k = 1; k < len; k++) {
    const b = p < end ? buf[p] : 0;
    if ((b & 0xc0) !== 0x80) {
      modUtf8End = p;
      return -1;
    }
    p++;
    cp = cp * 64 + (b & 0x3f);
  }
  modUtf8End = p;
  if (!isValidCodepoint(cp)) return -1;
  if (cp < MIN_CP[len] && !(cp === 0 && len === 2)) return -1;
  return cp;
}

/** Appends the standard UTF-8 encoding of a valid code point to `out` at `o`; returns new `o`. */
export function putUtf8(out: Uint8Array, o: number, cp: number): number {
  if (cp < 0x80) {
    out[o++] = cp;
  } else if (cp < 0x800) {
    out[o++] = 0xc0 | (cp >> 6);
    out[o++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[o++] = 0xe0 | (cp >> 12);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  } else {
    out[o++] = 0xf0 | (cp >> 18);
    out[o++] = 0x80 | ((cp >> 12) & 0x3f);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  }
  return o;
}

const utf8Decoder = new TextDecoder("utf-8");

/** Scratch output buffer shared by the decoders (single-threaded, never re-entered). */
let scratch = new Uint8Array(256);

/** Returns the scratch buffer, grown to at least `size` bytes. */
export function scratchBuffer(size: number): Uint8Array {
  if (scratch.length < size) {
    let cap = scratch.length;
    while (cap < size) cap *= 2;
    scratch = new Uint8Array(cap);
  } else if (scratch.length > 1 << 20 && size <= 1 << 16) {
    // Do not pin a huge buffer after one big string.
    scratch = new Uint8Array(1 << 16);
  }
  return scratch;
}

/** Decodes bytes already known to be valid standard UTF-8 (or ASCII) into a JS string. */
export function utf8ToString(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 16) {
    // Short strings: a plain loop beats the TextDecoder call overhead, but only for ASCII.
    let s = "";
    for (let k = start; k < end; k++) {
      const b = buf[k];
      if (b >= 0x80) return utf8Decoder.decode(buf.subarray(start, end));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return utf8Decoder.decode(buf.subarray(start, end));
}

/**
 * Turns bytes that QEMU would print with `%s` into the JS string whose rendering by our writer
 * equals QEMU's rendering of those bytes: the bytes end at the first NUL (C string), each valid
 * modified UTF-8 sequence becomes its code point (`C0 80` becomes U+0000), each invalid one
 * becomes a single U+FFFD exactly as QEMU's writer delimits them.
 *
 * @example
 * ```ts
 * decodeModUtf8Lossy(new Uint8Array([0x22, 0x67, 0xff])); // '"g\uFFFD'
 * ```
 */
export function decodeModUtf8Lossy(
  buf: Uint8Array,
  start = 0,
  end: number = buf.length,
): string {
  // An input byte yields up to 3 output bytes (a lone byte becoming U+FFFD), but error tokens
  // can be 64 MiB of mostly ASCII: start at the input size and grow only when needed.
  let out = scratchBuffer(end - start + 8);
  let o = 0;
  let k = start;
  while (k < end) {
    const b = buf[k];
    if (b >= 0x20 && b < 0x7f) {
      out[o++] = b;
      k++;
      continue;
    }
    if (b === 0) break;
    const cp = modUtf8Codepoint(buf, k, end);
    if (o + 4 + (end - modUtf8End) > out.length) {
      const grown = new Uint8Array(Math.max(out.length * 2, o + 4 + 3 * (end - modUtf8End)));
      grown.set(out.subarray(0, o));
      out = grown;
    }
    k = modUtf8End;
    o = putUtf8(out, o, cp < 0 ? 0xfffd : cp);
  }
  return utf8ToString(out, 0, o);
}

/**
 * Encodes a JS string as QEMU would hold it: modified UTF-8 (U+0000 as `C0 80`). Lone
 * surrogates, which QEMU strings cannot contain, become U+FFFD.
 */
export function encodeModUtf8(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  let o = 0;
  for (let k = 0; k < s.length; k++) {
    let cp = s.charCodeAt(k);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const lo = cp <= 0xdbff && k + 1 < s.length ? s.charCodeAt(k + 1) : 0;
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        k++;
      } else {
        cp = 0xfffd;
      }
    }
    if (cp === 0) {
      out[o++] = 0xc0;
      out[o++] = 0x80;
    } else {
      o = putUtf8(out, o, cp);
    }
  }
  return out.slice(0, o);
}
