/**
 * packaging/cloud-init/user-data.yaml passes `cloud-init schema` (Debian's cloud-init), a broken
 * copy of it does not (so the check can fail), and the setup script it writes is valid sh that
 * installs with `denoga install`.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { realTest, type Requirement } from "./harness.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const USER_DATA = `${ROOT}/packaging/cloud-init/user-data.yaml`;
const dec = new TextDecoder();

function needCloudInit(): Requirement {
  let present = false;
  try {
    present = Deno.statSync("/usr/bin/cloud-init").isFile;
  } catch {
    // absent
  }
  return { what: "cloud-init (apt-get install cloud-init)", present };
}

async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

realTest(
  "cloud-init: the user-data example passes cloud-init schema",
  [needCloudInit()],
  async () => {
    const ok = await run("cloud-init", ["schema", "--config-file", USER_DATA]);
    assertEquals(ok.code, 0, ok.text);
    assertOk(ok.text.includes("Valid cloud-config"), ok.text);

    const text = await Deno.readTextFile(USER_DATA);
    const broken = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      await Deno.writeTextFile(broken, text.replace('permissions: "0755"', "permissions: 493"));
      const bad = await run("cloud-init", ["schema", "--config-file", broken]);
      assertOk(bad.code !== 0, `a non-string permissions must fail the schema:\n${bad.text}`);
    } finally {
      await Deno.remove(broken);
    }
  },
);

Deno.test("cloud-init: the example's setup script is valid sh, runs denoga install", async () => {
  const text = await Deno.readTextFile(USER_DATA);
  assertOk(text.startsWith("#cloud-config\n"));
  // The block under `content: |`, unindented.
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.trim() === "content: |") + 1;
  assertOk(start > 0, "write_files content block");
  const indent = lines[start].match(/^ */)![0];
  const body: string[] = [];
  for (const l of lines.slice(start)) {
    if (l.trim() !== "" && !l.startsWith(indent)) break;
    body.push(l.slice(indent.length));
  }
  const script = body.join("\n");
  assertOk(script.startsWith("#!/bin/sh\n"), script);
  assertOk(script.includes("./denoga install"), script);
  assertOk(
    script.includes("./deno run -A --no-prompt --no-config --no-code-cache ./denoga.js install"),
  );
  const file = await Deno.makeTempFile({ suffix: ".sh" });
  try {
    await Deno.writeTextFile(file, script);
    const syntax = await run("sh", ["-n", file]);
    assertEquals(syntax.code, 0, syntax.text);
  } finally {
    await Deno.remove(file);
  }
  const path = text.match(/- path: (\S+)/)?.[1];
  assertOk(path && text.includes(`- [${path}]`), "runcmd runs the written script");
});
