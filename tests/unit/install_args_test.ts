/**
 * `denoga install|uninstall` argument parsing (lib/install/args.ts): only an exact first word
 * selects a subcommand, so no qemu-ga command line is taken for one.
 */

import { assertEquals, assertOk } from "../assert.ts";
import {
  DEFAULT_PREFIX,
  type InstallParse,
  parseInstallArgs,
  subcommandOf,
} from "../../lib/install/args.ts";

function options(p: InstallParse) {
  if (p.kind !== "run") throw new Error(`expected options, got ${JSON.stringify(p)}`);
  return p.options;
}

function error(p: InstallParse): string {
  assertOk(p.kind === "exit" && p.code === 1, JSON.stringify(p));
  return p.stderr ?? "";
}

Deno.test("install args: only an exact first argument selects a subcommand", () => {
  assertEquals(subcommandOf(["install"]), "install");
  assertEquals(subcommandOf(["uninstall", "--purge"]), "uninstall");
  for (
    const argv of [
      [],
      ["-m", "virtio-serial", "-p", "install"],
      ["-t", "install"],
      ["--statedir", "uninstall"],
      ["Install"],
      ["--install"],
      ["install "],
      ["-V"],
      ["-b", "help"],
    ]
  ) assertEquals(subcommandOf(argv), undefined, JSON.stringify(argv));
});

Deno.test("install args: defaults", () => {
  assertEquals(options(parseInstallArgs(["install"])), {
    action: "install",
    prefix: DEFAULT_PREFIX,
    root: "/",
    purge: false,
    noStart: false,
    noEnable: false,
  });
  assertEquals(options(parseInstallArgs(["uninstall"])).action, "uninstall");
});

Deno.test("install args: --prefix and --root, separate or with '='; trailing slashes go", () => {
  const o = options(parseInstallArgs(["install", "--prefix", "/opt/denoga/", "--root=/mnt/img"]));
  assertEquals(o.prefix, "/opt/denoga");
  assertEquals(o.root, "/mnt/img");
  assertEquals(options(parseInstallArgs(["install", "--prefix=/usr"])).prefix, "/usr");
  assertEquals(options(parseInstallArgs(["install", "--root", "/"])).root, "/");
  assertEquals(options(parseInstallArgs(["install", "--no-start"])).noStart, true);
  assertEquals(options(parseInstallArgs(["install", "--no-enable"])).noEnable, true);
  assertEquals(options(parseInstallArgs(["uninstall", "--purge", "--root", "/m"])).purge, true);
});

Deno.test("install args: bad input is refused with a message, not guessed", () => {
  assertOk(error(parseInstallArgs(["install", "--prefix"])).includes("requires an argument"));
  assertOk(error(parseInstallArgs(["install", "--root", "mnt"])).includes("absolute path"));
  assertOk(error(parseInstallArgs(["install", "--root", "/mnt/../etc"])).includes("absolute"));
  assertOk(error(parseInstallArgs(["install", "--purge"])).includes("unrecognized option"));
  assertOk(error(parseInstallArgs(["uninstall", "--no-start"])).includes("unrecognized option"));
  assertOk(error(parseInstallArgs(["uninstall", "--no-enable"])).includes("unrecognized option"));
  assertOk(error(parseInstallArgs(["install", "-m", "virtio-serial"])).includes("'-m'"));
  assertOk(error(parseInstallArgs(["install", "extra"])).includes("'extra'"));
});

Deno.test("install args: --help prints usage and exits 0", () => {
  const p = parseInstallArgs(["uninstall", "--help"], "denoga");
  assertOk(p.kind === "exit" && p.code === 0);
  assertOk(p.stdout?.startsWith("Usage: denoga install"), p.stdout);
  assertOk(p.stdout?.includes("--purge"));
});
