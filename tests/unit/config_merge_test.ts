import { assertEquals, assertOk } from "../assert.ts";
import { type ConfigEnv, resolveConfig, splitList } from "../../lib/config.ts";
import { KeyFileError } from "../../lib/config_file.ts";

const enc = new TextEncoder();

/** An environment with the given files and variables (everything else is missing). */
function env(files: Record<string, string>, vars: Record<string, string> = {}): ConfigEnv {
  return {
    getEnv: (n) => vars[n],
    readFile: (p) => {
      if (!(p in files)) throw new KeyFileError("No such file or directory", true);
      return enc.encode(files[p]);
    },
  };
}

function dump(args: string[], e: ConfigEnv): string {
  const r = resolveConfig(["-D", ...args], "qemu-ga", [], e);
  assertOk(r.kind === "exit" && r.code === 0, JSON.stringify(r));
  return r.stdout ?? "";
}

const TEST_QGA_CONFIG = "[general]\ndaemon=false\nmethod=virtio-serial\n" +
  "path=/path/to/org.qemu.guest_agent.0\npidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\n" +
  "verbose=true\nblock-rpcs=guest-ping;guest-get-time\n";

const DEFAULT_DUMP = "[general]\ndaemon=false\nmethod=virtio-serial\n" +
  "path=/dev/virtio-ports/org.qemu.guest_agent.0\npidfile=/var/run/qemu-ga.pid\n" +
  "statedir=/var/run\nverbose=false\nretry-path=false\nblock-rpcs=\nallow-rpcs=\n";

Deno.test("-D without a config file: qemu-ga's defaults", () => {
  assertEquals(dump([], env({})), DEFAULT_DUMP);
});

Deno.test("-D with the test-qga fixture via QGA_CONF (§7.1 /qga/config)", () => {
  assertEquals(
    dump([], env({ "/t/test-qga-config": TEST_QGA_CONFIG }, { QGA_CONF: "/t/test-qga-config" })),
    "[general]\ndaemon=false\nmethod=virtio-serial\npath=/path/to/org.qemu.guest_agent.0\n" +
      "pidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\nverbose=true\nretry-path=false\n" +
      "block-rpcs=guest-ping;guest-get-time\nallow-rpcs=\n",
  );
});

Deno.test("config then command line: last wins, lists accumulate reversed per chunk", () => {
  const e = env({
    "/c": "[general]\ndaemon=true\nmethod=isa-serial\nlogfile=/l1\nfsfreeze-hook=\n" +
      "retry-path=true\nverbose=false\nblock-rpcs=a,b,c\nallow-rpcs=x,y\n",
  });
  assertEquals(
    dump(["-c", "/c", "-l", "/l2", "-b", "d,e", "-a", "z", "-v"], e),
    "[general]\ndaemon=true\nmethod=isa-serial\npath=/dev/ttyS0\nlogfile=/l2\n" +
      "pidfile=/var/run/qemu-ga.pid\nfsfreeze-hook=\nstatedir=/var/run\nverbose=true\n" +
      "retry-path=true\nblock-rpcs=c,b,a,e,d\nallow-rpcs=y,x,z\n",
  );
  const r = resolveConfig(["-c", "/c", "-F", "-r"], "qemu-ga", [], e);
  assertOk(r.kind === "run");
  assertEquals(r.config.fsfreezeHook, "/etc/qemu/fsfreeze-hook");
  assertEquals(r.config.blockedRpcs, ["c", "b", "a"]);
  assertEquals(r.config.allowedRpcs, ["y", "x"]);
  assertEquals(r.config.daemonize, true);
  assertEquals(r.config.retryPath, true);
});

Deno.test("fsfreeze-hook from the config file is a path, even empty or boolean-looking", () => {
  for (const v of ["", "true", "/x/hook"]) {
    const r = resolveConfig(
      [],
      "qemu-ga",
      [],
      env({ "/c": `[general]\nfsfreeze-hook=${v}\n` }, {
        QGA_CONF: "/c",
      }),
    );
    assertOk(r.kind === "run");
    assertEquals(r.config.fsfreezeHook, v);
  }
});

Deno.test("dump escapes values like g_key_file_set_string", () => {
  const e = env({ "/c": "[general]\nlogfile= /a b\\s\\t\\\\x \npath=\\s x\\n\\r\n" });
  assertEquals(
    dump(["-c", "/c"], e),
    "[general]\ndaemon=false\nmethod=virtio-serial\npath=\\s\\sx\\n\\r\nlogfile=/a b \t\\\\x \n" +
      "pidfile=/var/run/qemu-ga.pid\nstatedir=/var/run\nverbose=false\nretry-path=false\n" +
      "block-rpcs=\nallow-rpcs=\n",
  );
});

Deno.test("config errors: -c must load, the default may only be missing", () => {
  const crit = (r: ReturnType<typeof resolveConfig>) => {
    assertOk(r.kind === "exit" && r.code === 1);
    return (r.stderr ?? "").replace(/^\n\*\* \(process:\d+\): CRITICAL \*\*: [\d:.]+: /, "");
  };
  assertEquals(
    crit(resolveConfig(["-c", "/nope"], "qemu-ga", [], env({}))),
    "error loading configuration from path: /nope, No such file or directory\n",
  );
  assertEquals(resolveConfig([], "qemu-ga", [], env({})).kind, "run");
  assertEquals(
    crit(resolveConfig(
      ["-V"],
      "qemu-ga",
      [],
      env({ "/q": "[general]\nverbose=maybe\n" }, {
        QGA_CONF: "/q",
      }),
    )),
    "error loading configuration from path: /q, Key file contains key ?verbose? which has a " +
      "value that cannot be interpreted.\n",
  );
  assertEquals(
    crit(resolveConfig(["-D", "-m", "unix-listen"], "qemu-ga", [], env({}))),
    "must specify a path for this channel\n",
  );
});

Deno.test("split_list: g_strsplit semantics, reversed", () => {
  assertEquals(splitList(""), []);
  assertEquals(splitList("a"), ["a"]);
  assertEquals(splitList("a,b,"), ["", "b", "a"]);
});

Deno.test("--exclude-interfaces: off by default, config then command line accumulate, -D dumps it", () => {
  const plain = resolveConfig(["-m", "unix-listen", "-p", "/s"], "denoga", [], env({}));
  assertEquals(plain.kind === "run" && plain.config.excludeInterfaces, []);
  // Unset, the dump has no such key: byte for byte qemu-ga's.
  assertEquals(dump([], env({})), DEFAULT_DUMP);

  const e = env({ "/c": "[general]\nexclude-interfaces=veth*,,docker*\n" });
  const args = ["-c", "/c", "--exclude-interfaces=cali*", "--exclude-interfaces", "br-*,"];
  const r = resolveConfig(["-m", "unix-listen", "-p", "/s", ...args], "denoga", [], e);
  assertEquals(r.kind === "run" && r.config.excludeInterfaces, [
    "veth*",
    "docker*",
    "cali*",
    "br-*",
  ]);
  assertEquals(
    dump(args, e),
    DEFAULT_DUMP + "exclude-interfaces=veth*,docker*,cali*,br-*\n",
  );
  // A unique prefix works as for qemu-ga's own long options.
  const p = resolveConfig(["--excl=lo", "-m", "unix-listen", "-p", "/s"], "denoga", [], env({}));
  assertEquals(p.kind === "run" && p.config.excludeInterfaces, ["lo"]);
  // Long only: no short letter is taken.
  assertEquals(resolveConfig(["-e"], "denoga", [], env({})).kind, "exit");
});

Deno.test("--fsfreeze-timeout: off by default, config key then command line, -D dumps it", () => {
  const base = ["-m", "unix-listen", "-p", "/s"];
  const plain = resolveConfig(base, "denoga", [], env({}));
  assertEquals(plain.kind === "run" && plain.config.fsfreezeTimeout, 0);
  const e = env({ "/c": "[general]\nfsfreeze-timeout=600\n" });
  const fromFile = resolveConfig([...base, "-c", "/c"], "denoga", [], e);
  assertEquals(fromFile.kind === "run" && fromFile.config.fsfreezeTimeout, 600);
  assertEquals(dump(["-c", "/c"], e), DEFAULT_DUMP + "fsfreeze-timeout=600\n");
  const both = resolveConfig([...base, "-c", "/c", "--fsfreeze-timeout", "30"], "denoga", [], e);
  assertEquals(both.kind === "run" && both.config.fsfreezeTimeout, 30);
  const eq = resolveConfig([...base, "--fsfreeze-timeout=0"], "denoga", [], e);
  assertEquals(eq.kind === "run" && eq.config.fsfreezeTimeout, 0);
  // qemu-ga's abbreviation `--fsfreeze` still means -F (the hook), not the new option.
  const hook = resolveConfig([...base, "--fsfreeze=/h"], "denoga", [], env({}));
  assertEquals(hook.kind === "run" && [hook.config.fsfreezeHook, hook.config.fsfreezeTimeout], [
    "/h",
    0,
  ]);
  const t = resolveConfig([...base, "--fsfreeze-t=5"], "denoga", [], env({}));
  assertEquals(t.kind === "run" && t.config.fsfreezeTimeout, 5);
  // Bad values: the command line and the key file are refused like qemu-ga's own options.
  for (const bad of ["-1", "1.5", "ten", ""]) {
    const r = resolveConfig([...base, `--fsfreeze-timeout=${bad}`], "denoga", [], env({}));
    assertEquals(r.kind === "exit" && r.code, 1, bad);
  }
  const badFile = resolveConfig(
    [...base, "-c", "/c"],
    "denoga",
    [],
    env({ "/c": "[general]\nfsfreeze-timeout=soon\n" }),
  );
  assertEquals(badFile.kind === "exit" && badFile.code, 1);
});
