/**
 * guest-set-user-password with a fake runner (never a real chpasswd), and the runner feeding
 * stdin with real child processes standing in for chpasswd.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { guestSetUserPassword } from "../../lib/commands/password.ts";
import type { RunCommand } from "../../lib/platform/mod.ts";
import { runCommand } from "../../lib/platform/process.ts";
import { agentWith, isQga } from "./users_helpers.ts";

const dec = new TextDecoder();
const b64 = (s: string) => btoa(s);

function recording(): { run: RunCommand; calls: { argv: string[]; input: string }[] } {
  const calls: { argv: string[]; input: string }[] = [];
  const run: RunCommand = (argv, action, input) => {
    assertEquals(action, "set user password");
    calls.push({ argv: [...argv], input: input ? dec.decode(input) : "<none>" });
    return Promise.resolve();
  };
  return { run, calls };
}

Deno.test("chpasswd (-e when crypted) gets user:password and a newline on stdin", async () => {
  const { run, calls } = recording();
  const agent = agentWith({ run });
  await guestSetUserPassword.run({ username: "u", password: b64("s3cret"), crypted: false }, agent);
  await guestSetUserPassword.run(
    { username: "u", password: b64("$6$salt$hash"), crypted: true },
    agent,
  );
  // The raw password ends at its first NUL, so a newline after it is not seen (as in qemu-ga).
  await guestSetUserPassword.run(
    { username: "u", password: b64("ab\0\ncd"), crypted: false },
    agent,
  );
  await guestSetUserPassword.run({ username: "\u00e9", password: "", crypted: false }, agent);
  assertEquals(calls, [
    { argv: ["chpasswd"], input: "u:s3cret\n" },
    { argv: ["chpasswd", "-e"], input: "u:$6$salt$hash\n" },
    { argv: ["chpasswd"], input: "u:ab\n" },
    { argv: ["chpasswd"], input: "\u00e9:\n" },
  ]);
});

Deno.test("refusals come before chpasswd, in qemu-ga's order", async () => {
  const { run, calls } = recording();
  const agent = agentWith({ run });
  const refuse = (username: string, password: string, desc: string) =>
    assertRejects(
      () =>
        Promise.resolve(guestSetUserPassword.run({ username, password, crypted: false }, agent)),
      isQga(desc),
    );
  await refuse("u", "not base64!", "Base64 data contains invalid characters");
  await refuse("u:x", "not base64!", "Base64 data contains invalid characters");
  await refuse("u", b64("a\nb"), "forbidden characters in raw password");
  await refuse("u:x", b64("a\nb"), "forbidden characters in raw password");
  await refuse("u:x", b64("ab"), "forbidden characters in username");
  await refuse("u\nx", b64("ab"), "forbidden characters in username");
  assertEquals(calls, []);
});

Deno.test("the runner feeds stdin; failures carry the output", async () => {
  const input = new TextEncoder().encode("u:pw\n");
  await runCommand(["/bin/sh", "-c", 'read line; test "$line" = u:pw'], "set user password", input);
  await assertRejects(
    () => runCommand(["/bin/sh", "-c", "cat; exit 1"], "set user password", input),
    isQga("child process has failed to set user password: u:pw\n"),
  );
  await assertRejects(
    () => runCommand(["/bin/sh", "-c", "exit 2"], "set user password", input),
    isQga("child process has failed to set user password: exit status 2"),
  );
  await assertRejects(
    () => runCommand(["denoga-no-such-chpasswd"], "set user password", input),
    isQga(
      "child process has failed to set user password: failed to exec 'denoga-no-such-chpasswd': No such file or directory\n",
    ),
  );
});
