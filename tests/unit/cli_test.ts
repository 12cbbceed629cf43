import { assertEquals, assertOk } from "../assert.ts";
import { parseCommandLine, usageText } from "../../lib/cli.ts";
import { DEFAULTS, resolveConfig } from "../../lib/config.ts";

const NAMES = ["guest-sync-delimited", "guest-sync", "guest-ping"];

Deno.test("getopt forms: separate, attached, --long=value, --long value, prefixes, clusters", () => {
  const r = parseCommandLine(
    ["-m", "unix-listen", "-p/tmp/s", "--statedir=/st", "--logfile", "/l", "--verb", "-vF"],
    "denoga",
  );
  assertEquals(r, {
    ok: true,
    operands: [],
    options: [
      { opt: "m", value: "unix-listen" },
      { opt: "p", value: "/tmp/s" },
      { opt: "t", value: "/st" },
      { opt: "l", value: "/l" },
      { opt: "v" },
      { opt: "v" },
      { opt: "F" },
    ],
  });
});

Deno.test("-F takes its argument only when attached", () => {
  const r = parseCommandLine(["-F", "/hook", "-F/h2", "--fsfreeze-hook=/h3"], "denoga");
  assertEquals(r, {
    ok: true,
    operands: ["/hook"],
    options: [{ opt: "F" }, { opt: "F", value: "/h2" }, { opt: "F", value: "/h3" }],
  });
  const c = resolveConfig(["-F", "-m", "unix-listen"], "denoga", NAMES);
  assertEquals(c.kind === "run" && c.config.fsfreezeHook, "/etc/qemu/fsfreeze-hook");
});

Deno.test("getopt diagnostics and exit status 1", () => {
  assertEquals(parseCommandLine(["--bogus"], "qemu-ga"), {
    ok: false,
    message: "qemu-ga: unrecognized option '--bogus'",
  });
  assertEquals(parseCommandLine(["-x"], "qemu-ga"), {
    ok: false,
    message: "qemu-ga: invalid option -- 'x'",
  });
  assertEquals(parseCommandLine(["-m"], "qemu-ga"), {
    ok: false,
    message: "qemu-ga: option requires an argument -- 'm'",
  });
  assertEquals(parseCommandLine(["--method"], "qemu-ga"), {
    ok: false,
    message: "qemu-ga: option '--method' requires an argument",
  });
  assertEquals(parseCommandLine(["--help=x"], "qemu-ga"), {
    ok: false,
    message: "qemu-ga: option '--help' doesn't allow an argument",
  });
  const c = resolveConfig(["--bogus"], "denoga", NAMES);
  assertEquals(c, {
    kind: "exit",
    code: 1,
    stderr: "denoga: unrecognized option '--bogus'\n",
    stdout: "Unknown option, try 'denoga --help' for more information.\n",
  });
});

Deno.test("-b help lists commands in registration order; lists accumulate", () => {
  assertEquals(resolveConfig(["-b", "help"], "denoga", NAMES), {
    kind: "exit",
    code: 0,
    stdout: "guest-sync-delimited\nguest-sync\nguest-ping\n",
  });
  assertEquals(resolveConfig(["--allow-rpcs=?"], "denoga", NAMES).kind, "exit");
  const c = resolveConfig(["-b", "guest-ping,guest-sync", "-b", "guest-info"], "denoga", NAMES);
  assertEquals(c.kind === "run" && c.config.blockedRpcs, [
    "guest-sync",
    "guest-ping",
    "guest-info",
  ]);
});

Deno.test("-V prints the qemu-ga version line", () => {
  const c = resolveConfig(["-V"], "denoga", NAMES);
  assertEquals(
    c.kind === "exit" && c.code === 0 && /^QEMU Guest Agent \d+\.\d+\.\d+\n$/.test(c.stdout ?? ""),
    true,
  );
});

Deno.test("-h names denoga's subcommands after qemu-ga's options", () => {
  const text = usageText("denoga", "10.2.50", DEFAULTS);
  const sub = text.indexOf("denoga's subcommands");
  assertOk(sub > text.indexOf("-h, --help"));
  for (const word of ["client", "install", "uninstall"]) {
    assertOk(text.slice(sub).includes(`denoga ${word} `), word);
  }
});
