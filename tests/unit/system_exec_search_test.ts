import { assertEquals } from "../assert.ts";
import {
  chooseSearchPath,
  DEFAULT_SEARCH_PATH,
  environPath,
  execCandidates,
  searchFailure,
} from "../../lib/system/exec_search.ts";

Deno.test("exec search: PATH of the supplied env, else the agent's, else GLib's default", () => {
  assertEquals(chooseSearchPath(["A=1", "PATH=/x:/y", "PATH=/z"], "/agent"), "/x:/y");
  assertEquals(chooseSearchPath(["PATH="], "/agent"), "");
  assertEquals(chooseSearchPath(["A=1"], "/agent"), "/agent");
  assertEquals(chooseSearchPath(undefined, "/agent"), "/agent");
  assertEquals(chooseSearchPath([], undefined), DEFAULT_SEARCH_PATH);
  assertEquals(environPath(["PATHX=1", "XPATH=2"]), undefined);
});

Deno.test("exec search: candidates", () => {
  assertEquals(execCandidates("sh", "/usr/bin::/bin/"), ["/usr/bin/sh", "./sh", "/bin//sh"]);
  assertEquals(execCandidates("sh", ""), ["./sh"]);
  assertEquals(execCandidates("./x", "/bin"), ["./x"]);
  assertEquals(execCandidates("a/b", "/bin"), ["a/b"]);
  assertEquals(execCandidates("", "/bin"), []);
});

Deno.test("exec search: the error after every candidate failed", () => {
  assertEquals(searchFailure([]), "ENOENT");
  assertEquals(searchFailure(["ENOENT", "EACCES", "ENOTDIR"]), "EACCES");
  assertEquals(searchFailure(["ENOENT", "ENOTDIR"]), "ENOTDIR");
});
