/**
 * Base64 as qemu-ga handles it (§3.2): a strict character check (only `A–Z a–z 0–9 + / =` and
 * `\n`), then GLib's lenient decoder — `=` only suppresses output bytes of its own quantum,
 * newlines are skipped, and an incomplete final quantum is dropped silently.
 *
 * @module
 */

import { genericError } from "./errors.ts";
import { VERBATIM_ROOM, VerbatimString } from "./protocol/value.ts";

const RANK = new Int16Array(128).fill(-1);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach(
  (c, i) => (RANK[c.charCodeAt(0)] = i),
);
// GLib ranks '=' as 0 so it still fills its quantum.
RANK["=".charCodeAt(0)] = 0;

const VALID = /^[A-Za-z0-9+/=\n]*$/;

/**
 * Decodes with qemu-ga's validation; throws `Base64 data contains invalid characters`.
 *
 * Well-formed input (the usual case, megabytes per request) goes through the native strict
 * decoder, which gives GLib's bytes exactly when it accepts: whole quanta, padding only at the
 * end, zero padding bits, and `\n` skipped as GLib skips it. The other whitespace the native
 * decoder would skip is invalid for qemu-ga, so such input takes the checked GLib path.
 */
export function decodeBase64(input: string): Uint8Array {
  if (
    input.indexOf(" ") < 0 && input.indexOf("\t") < 0 && input.indexOf("\r") < 0 &&
    input.indexOf("\f") < 0
  ) {
    try {
      return Uint8Array.fromBase64(input, { lastChunkHandling: "strict" });
    } catch {
      // not canonical: validate and decode the lenient way below
    }
  }
  if (!VALID.test(input)) throw genericError("Base64 data contains invalid characters");
  return decodeLikeGlib(input);
}

/** GLib's g_base64_decode_step over the whole input. */
function decodeLikeGlib(input: string): Uint8Array {
  const out = new Uint8Array(Math.floor(input.length / 4) * 3 + 3);
  let o = 0;
  let v = 0;
  let n = 0;
  let last0 = 0;
  let last1 = 0;
  const EQ = 0x3d;
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    const rank = RANK[c];
    if (rank < 0) continue; // '\n'
    last1 = last0;
    last0 = c;
    v = ((v << 6) | rank) & 0xffffff;
    if (++n === 4) {
      out[o++] = v >> 16;
      if (last1 !== EQ) out[o++] = (v >> 8) & 0xff;
      if (last0 !== EQ) out[o++] = v & 0xff;
      n = 0;
    }
  }
  return out.subarray(0, o);
}

/** Standard padded base64 (g_base64_encode). */
export function encodeBase64(data: Uint8Array): string {
  return data.toBase64();
}

/** Input bytes per native encoding step of {@link encodeBase64Bytes}: a multiple of 3. */
const BYTES_STEP = 3 * 16 * 1024;
const asciiEncoder = new TextEncoder();

/**
 * {@link encodeBase64}'s text as ASCII bytes, with `room` spare bytes before and after them in
 * their buffer. Encoded a slice at a time, so no string of the whole text ever exists: a 48 MiB
 * read costs its 64 MiB of text once, not once as a string and again as bytes.
 */
export function encodeBase64Bytes(data: Uint8Array, room: number): Uint8Array {
  const size = Math.ceil(data.length / 3) * 4;
  const out = new Uint8Array(room + size + room);
  let o = room;
  for (let i = 0; i < data.length; i += BYTES_STEP) {
    const text = data.subarray(i, i + BYTES_STEP).toBase64();
    o += asciiEncoder.encodeInto(text, out.subarray(o)).written;
  }
  return out.subarray(room, room + size);
}

/**
 * Data from which base64 goes into a reply as bytes. Below it, text: the reply line is then the
 * only big allocation alive after the data is released, and malloc hands the same memory to the
 * next read (4 MiB reads in a row cost no page faults). From it, every buffer is a fresh mapping
 * either way (glibc maps allocations of 32 MiB and more), and bytes save the text's copy.
 */
const BYTES_MIN = 24 * 1024 * 1024;

/** `data` as base64 for a reply: text when small, bytes with room for the reply line when big. */
export function verbatimBase64(data: Uint8Array): VerbatimString {
  return new VerbatimString(
    data.length >= BYTES_MIN ? encodeBase64Bytes(data, VERBATIM_ROOM) : encodeBase64(data),
  );
}
