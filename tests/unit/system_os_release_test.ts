/** lib/system/os_release.ts on fixture files (tests/fixtures/os-release/), GLib-verified. */

import { assertEquals } from "../assert.ts";
import { parseOsRelease, unquoteOsReleaseValue } from "../../lib/system/os_release.ts";

const dir = new URL("../fixtures/os-release/", import.meta.url);
const fixture = (name: string) => parseOsRelease(Deno.readFileSync(new URL(name, dir)));

Deno.test("quoted values: escapes, unterminated quote, single quotes, spaces and semicolons", () => {
  assertEquals(fixture("quoted"), {
    id: "debian",
    name: 'Debian "GNU" $Linux \\n',
    prettyName: "unterminatedd",
    version: "unquoted",
    versionId: "1.0",
    variant: "Unit test \"'$`\\ and \\\\ etc.",
    variantId: "'single",
  });
});

Deno.test("comments, blank lines, whitespace around =, other groups, last key wins, CRLF", () => {
  assertEquals(fixture("groups"), { id: "last-wins", name: "", versionId: "back" });
});

Deno.test("a missing key is absent; an empty file has none", () => {
  assertEquals(fixture("missing-keys"), { name: "only-name" });
  assertEquals(fixture("empty"), {});
});

Deno.test("invalid UTF-8, a non-key line, a bad key or group, a non-UTF-8 Encoding: nothing", () => {
  for (const f of ["invalid-utf8", "syntax-error", "bad-key", "bad-group", "encoding"]) {
    assertEquals(fixture(f), undefined, f);
  }
});

Deno.test("the content ends at the first NUL; a BOM is part of the key and the value", () => {
  assertEquals(fixture("nul"), { id: "before" });
  assertEquals(fixture("bom"), { name: "\ufeffvalue" });
});

Deno.test("a real os-release", () => {
  assertEquals(fixture("debian12")?.id, "debian");
});

Deno.test("unquoting", () => {
  assertEquals(unquoteOsReleaseValue('"a"b'), "a");
  assertEquals(unquoteOsReleaseValue('""'), "");
  assertEquals(unquoteOsReleaseValue('"'), '"'); // nothing copied: the quote stays
  assertEquals(unquoteOsReleaseValue('"abc\\'), "abc\\\\");
  assertEquals(unquoteOsReleaseValue('"a\\"b'), 'a"b"b');
  assertEquals(unquoteOsReleaseValue("x;y z"), "x");
  assertEquals(unquoteOsReleaseValue("a b;c"), "a");
});
