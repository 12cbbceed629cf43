/** lib/system/passwd.ts: getpwnam() over /etc/passwd as glibc's files module answers it. */

import { assertEquals } from "../assert.ts";
import { lookupUser, parsePasswd } from "../../lib/system/passwd.ts";

const FIXTURES = new URL("../fixtures/passwd/", import.meta.url);
const debian = await Deno.readFile(new URL("debian.passwd", FIXTURES));
const odd = await Deno.readFile(new URL("odd.passwd", FIXTURES));

Deno.test("a Debian passwd file: every entry, fields in order", () => {
  assertEquals(parsePasswd(debian).map((e) => e.name), ["root", "daemon", "alice"]);
  assertEquals(lookupUser(debian, "alice"), {
    name: "alice",
    passwd: "x",
    uid: 1000,
    gid: 1000,
    gecos: "Alice,,,",
    dir: "/home/alice",
    shell: "/bin/bash",
  });
  assertEquals(lookupUser(debian, "nobody"), undefined);
  assertEquals(lookupUser(debian, ""), undefined);
  assertEquals(lookupUser(debian, "ALICE"), undefined);
});

Deno.test("odd lines: comments, indentation, duplicates, NIS markers, short lines", () => {
  assertEquals(lookupUser(odd, "indented")?.dir, "/home/indented");
  assertEquals(lookupUser(odd, "alice")?.gecos, "first");
  assertEquals(lookupUser(odd, "+nis"), undefined);
  assertEquals(lookupUser(odd, "-blocked"), undefined);
  assertEquals(lookupUser(odd, "short"), {
    name: "short",
    passwd: "x",
    uid: 1002,
    gid: 1002,
    gecos: "",
    dir: "",
    shell: "",
  });
  assertEquals(lookupUser(odd, "colons")?.shell, "/bin/sh:extra:fields");
  assertEquals(lookupUser(odd, "root/")?.dir, "/slash//");
  assertEquals(lookupUser(odd, "last")?.uid, 1008);
});

Deno.test("ids are read like strtoul into 32 bits; a line with a bad id is no entry", () => {
  assertEquals(lookupUser(odd, "nouid"), undefined);
  assertEquals(lookupUser(odd, "baduid"), undefined);
  assertEquals(lookupUser(odd, "spaceuid")?.uid, 1005);
  assertEquals([lookupUser(odd, "neg")?.uid, lookupUser(odd, "neg")?.gid], [
    4294967295,
    4294967294,
  ]);
  assertEquals([lookupUser(odd, "huge")?.uid, lookupUser(odd, "huge")?.gid], [4294967295, 0]);
});

Deno.test("a line ends at its first NUL", () => {
  assertEquals(lookupUser(odd, "nulname"), undefined);
  assertEquals(lookupUser(odd, "nulname\0junk"), undefined);
});
