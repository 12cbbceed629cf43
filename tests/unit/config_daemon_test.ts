import { assertEquals } from "../assert.ts";
import { reexecCommand, stripDaemonize } from "../../lib/daemon.ts";

Deno.test("stripDaemonize removes -d in every getopt form, never option arguments", () => {
  const table: [string[], string[]][] = [
    [["-d", "-m", "unix-listen"], ["-m", "unix-listen"]],
    [["-vd", "-p", "-d"], ["-v", "-p", "-d"]],
    [["-dv"], ["-v"]],
    [["--daemonize", "--daemon", "--da"], []],
    [["--dump-conf", "-D"], ["--dump-conf", "-D"]],
    [["-f", "-d", "-pd"], ["-f", "-d", "-pd"]],
    [["-F", "-d"], ["-F"]],
    [["-F/x/d", "-d"], ["-F/x/d"]],
    [["--pidfile", "-d", "--path=-d", "-d"], ["--pidfile", "-d", "--path=-d"]],
    [["--", "-d"], ["--", "-d"]],
  ];
  for (const [args, want] of table) assertEquals(stripDaemonize(args), want, args.join(" "));
});

Deno.test("reexecCommand keeps this process's own deno flags and drops -d", () => {
  const exe = Deno.execPath();
  assertEquals(
    reexecCommand(["-d", "-m", "unix-listen"], "file:///a/main.ts", [
      "deno",
      "run",
      "-A",
      "--v8-flags=--max-old-space-size=64",
      "/a/main.ts",
      "-d",
      "-m",
      "unix-listen",
    ]),
    [exe, "run", "-A", "--v8-flags=--max-old-space-size=64", "/a/main.ts", "-m", "unix-listen"],
  );
  // Compiled binary: argv is just the binary and the agent arguments.
  assertEquals(reexecCommand(["-vd"], "file:///x", ["/usr/bin/denoga", "-vd"]), [exe, "-v"]);
});
