import { assertEquals, assertOk, assertThrows } from "../assert.ts";
import { escapeValue, KeyFile, KeyFileError } from "../../lib/config_file.ts";

const enc = new TextEncoder();
const parse = (s: string | Uint8Array) => KeyFile.parse(typeof s === "string" ? enc.encode(s) : s);

function parseError(s: string | Uint8Array): string {
  try {
    parse(s);
  } catch (e) {
    assertOk(e instanceof KeyFileError);
    return e.message;
  }
  throw new Error("expected a parse error");
}

Deno.test("key file: comments, groups, whitespace around '=', CRLF, last key wins, merged groups", () => {
  const kf = parse(
    "# c\n\n  [general]  \r\n  daemon = true  \nverbose=1 \r\n[other]\nx=1\n[general]\npath=a\npath=b",
  );
  assertEquals(kf.groups(), ["general", "other"]);
  assertEquals(kf.getBoolean("general", "daemon"), true);
  assertEquals(kf.getBoolean("general", "verbose"), true);
  assertEquals(kf.getString("general", "path"), "b");
  assertEquals(kf.hasKey("general", "x"), false);
  assertEquals(kf.rawValue("general", "daemon"), "true  ");
});

Deno.test("key file: string escapes and trailing whitespace kept", () => {
  const kf = parse("[g]\na=\\s x\\n\\t\\r\\\\y \nb=\nc= /a b\\s\\t\\\\x \n");
  assertEquals(kf.getString("g", "a"), "  x\n\t\r\\y ");
  assertEquals(kf.getString("g", "b"), "");
  assertEquals(kf.getString("g", "c"), "/a b \t\\x ");
});

Deno.test("key file: booleans accept true/1/false/0 only", () => {
  const table: [string, boolean | undefined][] = [
    ["true", true],
    ["1", true],
    ["false", false],
    ["0", false],
    ["0 \t", false],
    ["yes", undefined],
    ["True", undefined],
    ["truex", undefined],
    ["", undefined],
  ];
  for (const [v, want] of table) {
    const kf = parse(`[g]\nk=${v}\n`);
    if (want === undefined) {
      assertThrows(() => kf.getBoolean("g", "k"), (e) =>
        (e as Error).message ===
          "Key file contains key “k” which has a value that cannot be interpreted.");
    } else {
      assertEquals(kf.getBoolean("g", "k"), want, v);
    }
  }
});

Deno.test("key file: GLib error texts", () => {
  const table: [string | Uint8Array, string][] = [
    ["daemon=true\n", "Key file does not start with a group"],
    [
      "[general]\nfoo\n",
      "Key file contains line “foo” which is not a key-value pair, group, or comment",
    ],
    [
      "[gen]eral]\n",
      "Key file contains line “[gen]eral]” which is not a key-value pair, group, or comment",
    ],
    [
      "[general]\n=x\n",
      "Key file contains line “=x” which is not a key-value pair, group, or comment",
    ],
    ["[general]\n[x]y=1\n", "Invalid key name: [x]y"],
    ["[]\n", "Invalid group name: "],
    ["[general]\nEncoding=latin1\n", "Key file contains unsupported encoding “latin1”"],
  ];
  for (const [text, msg] of table) assertEquals(parseError(text), msg);
  // Locale keys and keys with inner spaces are fine; Encoding=UTF-8 too.
  const kf = parse("[general]\nEncoding=utf-8\npath[fr]=x\npa th = 1\n");
  assertEquals(kf.getString("general", "pa th"), "1");
  assertEquals(kf.hasKey("general", "path"), false);
});

Deno.test("key file: invalid escapes and non-UTF-8 values fail on read", () => {
  const bad = "Key file contains key “path” which has a value that cannot be interpreted.";
  for (const v of ["a\\qb", "ab\\"]) {
    const kf = parse(`[general]\npath=${v}\n`);
    assertThrows(() => kf.getString("general", "path"), (e) => (e as Error).message === bad);
  }
  const kf = parse(new Uint8Array([...enc.encode("[general]\npath="), 0xff, 10]));
  assertThrows(
    () => kf.getString("general", "path"),
    (e) =>
      (e as Error).message ===
        "Key file contains key “path” with value “\ufffd” which is not UTF-8",
  );
});

Deno.test("escapeValue: g_key_file_set_string escaping", () => {
  const table: [string, string][] = [
    ["/plain", "/plain"],
    ["  x", "\\s\\sx"],
    ["\t x", "\\t\\sx"],
    ["a b\tc ", "a b\tc "],
    ["\n x", "\\n\\sx"],
    ["a\\b", "a\\\\b"],
    ["\\ x", "\\\\ x"],
    ["a;b,c", "a;b,c"],
    ["x\r\n", "x\\r\\n"],
  ];
  for (const [v, want] of table) assertEquals(escapeValue(v), want, JSON.stringify(v));
});
