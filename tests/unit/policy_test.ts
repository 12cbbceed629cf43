/**
 * denoga's argument policy (lib/policy.ts) on real temp directories, and the audit trail
 * (lib/audit.ts) through the command handlers over fake facets: never a real chpasswd,
 * settimeofday or shutdown.
 */

import { assertEquals, assertOk, assertRejects } from "../assert.ts";
import { Agent, type AgentOptions } from "../../lib/agent.ts";
import { formatRecord } from "../../lib/audit.ts";
import { guestSetTime } from "../../lib/commands/clock.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { guestSetUserPassword } from "../../lib/commands/password.ts";
import { guestShutdown } from "../../lib/commands/shutdown.ts";
import { guestSshAddAuthorizedKeys } from "../../lib/commands/ssh.ts";
import { guestSuspendRam } from "../../lib/commands/suspend.ts";
import { Logger } from "../../lib/log.ts";
import { osFiles } from "../../lib/platform/files.ts";
import { fakePlatform, type Platform } from "../../lib/platform/mod.ts";
import { execAllowed, isUnder, normalizePath, Policy } from "../../lib/policy.ts";
import { StateDir } from "../../lib/state.ts";
import { isQga } from "./users_helpers.ts";

const os = osFiles("/");

Deno.test("policy: lexical normalisation and prefix matching", () => {
  assertEquals(normalizePath("/srv/a/../b//c/."), "/srv/b/c");
  assertEquals(normalizePath("/../../etc"), "/etc");
  assertEquals(normalizePath("x/../y", "/home/u"), "/home/u/y");
  assertOk(isUnder("/srv/data/x", "/srv/data"));
  assertOk(isUnder("/srv/data", "/srv/data/"));
  assertOk(!isUnder("/srv/database", "/srv/data"));
  assertOk(isUnder("/etc/passwd", "/"));
  assertOk(execAllowed("/usr/bin/true", ["/usr/bin/true"]));
  assertOk(!execAllowed("/usr/bin/truex", ["/usr/bin/true"]));
  assertOk(execAllowed("/opt/tools/sub/run", ["/opt/tools/"]));
  assertOk(!execAllowed("/opt/toolsx/run", ["/opt/tools/"]));
});

Deno.test("allow-file-path: symlinks and .. are resolved before matching", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${root}/allowed/sub`, { recursive: true });
    await Deno.mkdir(`${root}/outside`);
    await Deno.writeTextFile(`${root}/outside/secret`, "x");
    await Deno.symlink(`${root}/outside`, `${root}/allowed/escape`);
    await Deno.symlink(`${root}/outside/secret`, `${root}/allowed/link`);
    await Deno.symlink(`${root}/outside/nothing`, `${root}/allowed/dangling`);
    await Deno.symlink(`${root}/allowed/sub`, `${root}/inward`);
    const policy = new Policy({ allowFilePath: [`${root}/allowed`] }, os);
    const refused = (p: string, resolved?: string) =>
      assertRejects(
        () => policy.checkFileOpen(p),
        isQga(
          `path '${p}'${
            resolved ? ` (resolved to '${resolved}')` : ""
          } is not allowed by allow-file-path`,
        ),
      );
    await refused(`${root}/allowed/../outside/secret`, `${root}/outside/secret`);
    await refused(`${root}/allowed/escape/secret`, `${root}/outside/secret`);
    await refused(`${root}/allowed/escape/new-file`, `${root}/outside/new-file`);
    await refused(`${root}/allowed/link`, `${root}/outside/secret`);
    await refused(`${root}/allowed/dangling`);
    await refused(`${root}/allowed/missing-dir/f`);
    await Deno.mkdir(`${root}/allowedx`);
    await refused(`${root}/allowedx/f`, `${root}/allowedx/f`);
    // Inside, whether the file exists yet or is reached through a link pointing inward.
    assertEquals(await policy.checkFileOpen(`${root}/allowed/new`), `${root}/allowed/new`);
    assertEquals(await policy.checkFileOpen(`${root}/inward/f`), `${root}/allowed/sub/f`);
    assertEquals(
      await policy.checkFileOpen(`${root}/allowed/sub/../f`),
      `${root}/allowed/f`,
    );
    // No rule: nothing is looked at.
    assertEquals(await new Policy({}, os).checkFileOpen("/etc/passwd"), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("allow-exec: the program found by the PATH search, symlinks resolved", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${root}/bin`);
    await Deno.mkdir(`${root}/other`);
    await Deno.writeTextFile(`${root}/bin/tool`, "#!/bin/sh\n");
    await Deno.chmod(`${root}/bin/tool`, 0o755);
    await Deno.writeTextFile(`${root}/other/tool`, "#!/bin/sh\n");
    await Deno.chmod(`${root}/other/tool`, 0o755);
    await Deno.writeTextFile(`${root}/other/plain`, "not executable");
    await Deno.symlink(`${root}/bin/tool`, `${root}/other/alias`);
    const policy = new Policy({ allowExec: [`${root}/bin/tool`] }, os);
    const env = (path: string) => [`PATH=${path}`];
    assertEquals(await policy.checkExec("tool", env(`${root}/bin`)), `${root}/bin/tool`);
    assertEquals(await policy.checkExec(`${root}/other/alias`, undefined), `${root}/bin/tool`);
    // A non-executable candidate is skipped, as the spawn skips it.
    assertEquals(
      await policy.checkExec("tool", env(`${root}/nowhere:${root}/bin`)),
      `${root}/bin/tool`,
    );
    await assertRejects(
      () => policy.checkExec("tool", env(`${root}/other:${root}/bin`)),
      isQga(`program 'tool' (resolved to '${root}/other/tool') is not allowed by allow-exec`),
    );
    await assertRejects(
      () => policy.checkExec("no-such-program", env(`${root}/bin`)),
      isQga("program 'no-such-program' is not allowed by allow-exec"),
    );
    const dir = new Policy({ allowExec: [`${root}/other/`] }, os);
    assertEquals(await dir.checkExec("tool", env(`${root}/other`)), `${root}/other/tool`);
    await assertRejects(() => dir.checkExec(`${root}/other/alias`, undefined));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** An agent over `facets` whose audit records go to its log, which the test reads. */
function auditedAgent(facets: Partial<Platform>, options: Partial<AgentOptions> = {}) {
  const lines: string[] = [];
  const agent = new Agent({
    table: commandTable(),
    options: { blockedRpcs: [], audit: { log: true }, ...options },
    state: new StateDir("/nonexistent"),
    log: new Logger({ verbose: false, sink: { write: (l) => void lines.push(l) } }),
    platform: fakePlatform(facets),
  });
  const records = () =>
    lines.filter((l) => l.includes(": message: audit: ")).map((l) =>
      JSON.parse(l.slice(l.indexOf("audit: ") + 7))
    );
  return { agent, records };
}

const strip = (r: Record<string, unknown>) => {
  const { time, ...rest } = r;
  assertOk(typeof time === "string" && !Number.isNaN(Date.parse(time)));
  return rest;
};

Deno.test("audit: a password change records the user, never the password", async () => {
  const calls: string[][] = [];
  const { agent, records } = auditedAgent({
    run: (argv) => {
      calls.push([...argv]);
      return Promise.resolve();
    },
  }, { denyUser: ["root"] });
  await guestSetUserPassword.run(
    { username: "alice", password: btoa("s3cret"), crypted: false },
    agent,
  );
  await assertRejects(
    () =>
      Promise.resolve(
        guestSetUserPassword.run({ username: "root", password: btoa("x"), crypted: false }, agent),
      ),
    isQga("user 'root' is denied by deny-user"),
  );
  assertEquals(calls, [["chpasswd"]]);
  assertEquals(records().map(strip), [
    { command: "guest-set-user-password", user: "alice", crypted: false },
    {
      command: "guest-set-user-password",
      user: "root",
      crypted: false,
      error: "user 'root' is denied by deny-user",
    },
  ]);
  assertOk(!JSON.stringify(records()).includes(btoa("s3cret")));
});

Deno.test("deny-user: ssh keys of a denied user are refused before any file is touched", async () => {
  const { agent, records } = auditedAgent({}, { denyUser: ["root"] });
  await assertRejects(
    () =>
      Promise.resolve(
        guestSshAddAuthorizedKeys.run({ username: "root", keys: ["ssh-ed25519 AAAA k"] }, agent),
      ),
    isQga("user 'root' is denied by deny-user"),
  );
  assertEquals(records().map(strip), [{
    command: "guest-ssh-add-authorized-keys",
    user: "root",
    keys: ["ssh-ed25519 AAAA k"],
    error: "user 'root' is denied by deny-user",
  }]);
});

Deno.test("audit: set-time, suspend, and shutdown recorded before it runs", async () => {
  const order: string[] = [];
  const { agent, records } = auditedAgent({
    run: (argv) => {
      order.push(`run ${argv[0]} (${records().length} records)`);
      return Promise.resolve();
    },
    // systemd knows the unit, and `systemctl suspend` succeeds.
    runStatus: (argv) => Promise.resolve(argv[1] === "status" ? 3 : 0),
    isExecutable: () => true,
    host: { env: (name: string) => (name === "TZ" ? "UTC" : undefined) } as Platform["host"],
  });
  await guestSetTime.run({}, agent);
  await assertRejects(() => Promise.resolve(guestSetTime.run({ time: -1n << 62n }, agent)));
  await guestShutdown.run({ mode: "reboot" }, agent);
  await guestSuspendRam.run({}, agent);
  assertEquals(order, ["run /sbin/hwclock (0 records)", "run /sbin/reboot (3 records)"]);
  assertEquals(records().map(strip), [
    { command: "guest-set-time" },
    { command: "guest-set-time", ns: String(-1n << 62n), error: "Invalid time" },
    { command: "guest-shutdown", mode: "reboot", argv: ["/sbin/reboot"] },
    { command: "guest-suspend-ram" },
  ]);
});

Deno.test("audit: records are held while frozen and written after the thaw", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/audit.jsonl`;
  try {
    const log = new Logger({ verbose: false, sink: { write() {} } });
    const agent = new Agent({
      table: commandTable(),
      options: { blockedRpcs: [], audit: { file } },
      state: new StateDir("/nonexistent"),
      log,
      platform: fakePlatform({ os }),
    });
    const audit = agent.audit!;
    audit.record("guest-exec", { path: "/bin/true", argv: [], pid: 1 });
    await audit.flush();
    agent.freezer.enterFrozen();
    audit.record("guest-fsfreeze-freeze", { frozen: 1 });
    await audit.flush();
    const read = async () =>
      (await Deno.readTextFile(file)).trim().split("\n").map((l) => strip(JSON.parse(l)));
    assertEquals(await read(), [{ command: "guest-exec", path: "/bin/true", argv: [], pid: 1 }]);
    agent.freezer.leaveFrozen();
    audit.record("guest-fsfreeze-thaw", { thawed: 1 });
    await audit.flush();
    assertEquals((await read()).map((r) => r.command), [
      "guest-exec",
      "guest-fsfreeze-freeze",
      "guest-fsfreeze-thaw",
    ]);
    assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("audit: the record format", () => {
  assertEquals(
    formatRecord(new Date(0), "guest-set-time", { ns: 1700000000000000000n, none: undefined }),
    '{"time":"1970-01-01T00:00:00.000Z","command":"guest-set-time","ns":"1700000000000000000"}',
  );
});
