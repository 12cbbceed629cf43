import { assertEquals, assertThrows } from "../assert.ts";
import { decodeBase64, encodeBase64, encodeBase64Bytes } from "../../lib/base64.ts";
import { QgaError } from "../../lib/errors.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("GLib-lenient decoding: incomplete quanta dropped, '=' only trims its quantum", () => {
  assertEquals(text(decodeBase64("SGVsbG8gV29ybGQhCgA=")), "Hello World!\n\0");
  assertEquals(text(decodeBase64("SGVsbG8")), "Hel");
  assertEquals(text(decodeBase64("QQ==QUJD")), "AABC");
  assertEquals(text(decodeBase64("QU\nJD\n")), "ABC");
  assertEquals(text(decodeBase64("QUJD\nQUJD")), "ABCABC");
  assertEquals(text(decodeBase64("QUI=\n")), "AB");
  assertEquals(text(decodeBase64("QR==")), "A");
  // Checked against qemu-ga 7.2 (GLib's decoder): '=' counts as a zero digit.
  assertEquals(text(decodeBase64("QUJ=QUJD")), "ABABC");
  assertEquals([...decodeBase64("=QUJD")], [1, 5, 9]);
  assertEquals([...decodeBase64("QU=JD")], [65, 9]);
  assertEquals(decodeBase64("").length, 0);
  assertEquals(decodeBase64("Q").length, 0);
});

Deno.test("only A-Z a-z 0-9 + / = and newline are accepted", () => {
  for (const bad of ["QUJD ", "QU-D", "QUJD\r\n", "QUJ\0", "é"]) {
    assertThrows(
      () => decodeBase64(bad),
      (e) => e instanceof QgaError && e.desc === "Base64 data contains invalid characters",
    );
  }
});

Deno.test("encoding is standard padded base64", () => {
  assertEquals(
    encodeBase64(new TextEncoder().encode("hello qga\nline2\n")),
    "aGVsbG8gcWdhCmxpbmUyCg==",
  );
  assertEquals(encodeBase64(new Uint8Array()), "");
});

Deno.test("base64 as bytes: the same text, slice by slice, with spare room on both sides", () => {
  const step = 3 * 16 * 1024;
  let seed = 7;
  for (const size of [0, 1, 2, 3, 4, step - 1, step, step + 1, 2 * step + 2]) {
    const data = new Uint8Array(size).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >> 24);
    const got = encodeBase64Bytes(data, 100);
    assertEquals(got.byteOffset, 100, `size ${size}`);
    assertEquals(got.buffer.byteLength, got.length + 200, `size ${size}`);
    assertEquals(text(got) === encodeBase64(data), true, `size ${size}`);
  }
});
