/**
 * Command line and config file against the real qemu-ga (§5): `-D` dumps side by side for
 * several config files given through `QGA_CONF` (7.2 has no `-c`), config errors, `-c`, and the
 * quiet default log.
 *
 * The only normalisation is the documented 7.2 → newest difference: newest qemu-ga always ends
 * the dump with `allow-rpcs=<list>` (7.2 has no allow-list). Error lines are compared after
 * replacing GLib's `(process:PID)` and `HH:MM:SS.mmm`.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import {
  type Impl,
  needQemuGa,
  RawClient,
  realTest,
  runAgentOnce,
  sideBySideImpls,
  startAgent,
} from "./harness.ts";

function run(
  impl: Impl,
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runAgentOnce(impl, args, undefined, { env, cwd });
}

/** 7.2 → newest: newest always dumps allow-rpcs (empty when no allow-list). */
function qemuGa72ToNewestDump(out: string): string {
  return out === "" || out.includes("\nallow-rpcs=") ? out : `${out}allow-rpcs=\n`;
}

function normalizeGlib(stderr: string): string {
  return stderr.replace(
    /\(process:\d+\): CRITICAL \*\*: \d\d:\d\d:\d\d\.\d\d\d:/g,
    "(process:N): CRITICAL **: T:",
  );
}

interface DumpCase {
  name: string;
  conf?: string;
  args?: string[];
}

const CASES: DumpCase[] = [
  { name: "no config file" },
  {
    name: "test-qga-config fixture (§7.1)",
    conf: "[general]\ndaemon=false\nmethod=virtio-serial\npath=/path/to/org.qemu.guest_agent.0\n" +
      "pidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\nverbose=true\n" +
      "block-rpcs=guest-ping;guest-get-time\n",
  },
  {
    name: "lists from config and command line",
    conf: "[general]\nblock-rpcs=a,b,c\nblock-rpcs=guest-ping,guest-info\n",
    args: ["-b", "d,e", "--block-rpcs=f"],
  },
  { name: "hook from config, empty", conf: "[general]\nfsfreeze-hook=\n" },
  { name: "hook from config, boolean-looking", conf: "[general]\nfsfreeze-hook=true\n" },
  { name: "hook from -F overrides config", conf: "[general]\nfsfreeze-hook=/x\n", args: ["-F"] },
  { name: "hook -F/path", args: ["-F/usr/local/hook"] },
  {
    name: "logfile, escapes, whitespace",
    conf: "# comment\n\n  [general]  \r\n daemon = true \nlogfile= /a b\\s\\t\\\\x \n" +
      "path=\\s x\\n\\r\nverbose=1 \nretry-path=0\n[other]\nverbose=true\n",
  },
  {
    name: "command line after config",
    conf: "[general]\nmethod=isa-serial\npidfile=/p1\nstatedir=/s1\n",
    args: ["-f", "/p2", "-t", "/s2", "-l", "/log", "-v", "-r", "-d"],
  },
  { name: "isa-serial default path", args: ["-m", "isa-serial"] },
  { name: "unix-listen needs a path", args: ["-m", "unix-listen"] },
  { name: "bad boolean", conf: "[general]\nverbose=maybe\n" },
  { name: "no group", conf: "daemon=true\n" },
  { name: "bad line", conf: "[general]\nfoo\n" },
  { name: "bad escape", conf: "[general]\npath=a\\qb\n" },
  { name: "bad key name", conf: "[general]\n[x]y=1\n" },
  { name: "bad encoding", conf: "[general]\nEncoding=latin1\n" },
];

for (const c of CASES) {
  realTest(`-D side by side: ${c.name}`, [needQemuGa()], async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-cli-" });
    try {
      const env: Record<string, string> = { QGA_CONF: `${dir}/none.conf` };
      if (c.conf !== undefined) {
        await Deno.writeTextFile(`${dir}/qga.conf`, c.conf);
        env.QGA_CONF = `${dir}/qga.conf`;
      }
      const args = ["-D", ...(c.args ?? [])];
      const results = new Map<Impl, { code: number; stdout: string; stderr: string }>();
      for (const impl of ["qemu-ga", "denoga"] as Impl[]) {
        const r = await run(impl, args, env, dir);
        results.set(impl, {
          code: r.code,
          stdout: impl === "qemu-ga" ? qemuGa72ToNewestDump(r.stdout) : r.stdout,
          stderr: normalizeGlib(r.stderr),
        });
      }
      assertEquals(results.get("denoga"), results.get("qemu-ga"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test({
  name: "-c: a missing file is fatal; QGA_CONF honoured; -c overrides QGA_CONF",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-cli-" });
    try {
      const r = await run("denoga", ["-c", `${dir}/missing.conf`, "-D"], {}, dir);
      assertEquals(r.code, 1);
      assertEquals(r.stdout, "");
      assertEquals(
        normalizeGlib(r.stderr),
        `\n** (process:N): CRITICAL **: T: error loading configuration from path: ` +
          `${dir}/missing.conf, No such file or directory\n`,
      );
      await Deno.writeTextFile(`${dir}/a.conf`, "[general]\npidfile=/from/env\n");
      await Deno.writeTextFile(`${dir}/b.conf`, "[general]\npidfile=/from/c\n");
      const viaEnv = await run("denoga", ["-D"], { QGA_CONF: `${dir}/a.conf` }, dir);
      assertOk(viaEnv.stdout.includes("\npidfile=/from/env\n"), viaEnv.stdout);
      const viaC = await run("denoga", ["-D", `--config=${dir}/b.conf`], {
        QGA_CONF: `${dir}/a.conf`,
      }, dir);
      assertOk(viaC.stdout.includes("\npidfile=/from/c\n"), viaC.stdout);
      const dirAsConf = await run("denoga", ["-D", "-c", dir], {}, dir);
      assertEquals(dirAsConf.code, 1);
      assertOk(dirAsConf.stderr.endsWith(`path: ${dir}, Not a regular file\n`), dirAsConf.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

for (const impl of sideBySideImpls()) {
  realTest(
    `${impl}: quiet by default, debug lines only with -v`,
    impl === "qemu-ga" ? [needQemuGa()] : [],
    async () => {
      for (const verbose of [false, true]) {
        const agent = await startAgent({ impl, args: verbose ? ["-v"] : [] });
        try {
          const client = await RawClient.connect(agent.socketPath);
          for (let i = 0; i < 5; i++) {
            await client.request('{"execute":"guest-ping"}');
            await client.request(`{"execute":"guest-sync","arguments":{"id":${i}}}`);
          }
          client.close();
          const log = await Deno.readTextFile(agent.logPath);
          if (verbose) {
            assertOk(/^\d+\.\d{6}: debug: \S/m.test(log), log);
          } else {
            assertEquals(log, "");
          }
        } finally {
          assertEquals(await agent.stop(), 0);
        }
      }
    },
  );
}
