/**
 * guest-shutdown's choice of program (§3.5, newest) and the child-process runner's texts, with
 * real child processes standing in for /sbin/poweroff. Never runs a real shutdown.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { guestShutdown } from "../../lib/commands/shutdown.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform, type RunCommand } from "../../lib/platform/mod.ts";
import { runCommand } from "../../lib/platform/process.ts";
import { StateDir } from "../../lib/state.ts";

function agentWith(run: RunCommand, executable: ReadonlySet<string>): Agent {
  return new Agent({
    table: commandTable(),
    options: { blockedRpcs: [] },
    state: new StateDir("/nonexistent"),
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform({ run, isExecutable: (p) => executable.has(p) }),
  });
}

const isQga = (desc: string) => (e: unknown) => e instanceof QgaError && e.desc === desc;

Deno.test("each mode runs its own program when executable, else /sbin/shutdown", async () => {
  const calls: string[][] = [];
  const run: RunCommand = (argv) => {
    calls.push([...argv]);
    return Promise.resolve();
  };
  const all = agentWith(run, new Set(["/sbin/poweroff", "/sbin/halt", "/sbin/reboot"]));
  for (const mode of [undefined, "powerdown", "halt", "reboot"]) {
    assertEquals(await guestShutdown.run(mode === undefined ? {} : { mode }, all), undefined);
  }
  const none = agentWith(run, new Set());
  for (const mode of ["powerdown", "halt", "reboot"]) await guestShutdown.run({ mode }, none);
  assertEquals(calls, [
    ["/sbin/poweroff"],
    ["/sbin/poweroff"],
    ["/sbin/halt"],
    ["/sbin/reboot"],
    ["/sbin/shutdown", "-h", "-P", "+0", "hypervisor initiated shutdown"],
    ["/sbin/shutdown", "-h", "-H", "+0", "hypervisor initiated shutdown"],
    ["/sbin/shutdown", "-h", "-r", "+0", "hypervisor initiated shutdown"],
  ]);
});

Deno.test("an unknown mode is refused before anything runs", async () => {
  let ran = false;
  const agent = agentWith(() => {
    ran = true;
    return Promise.resolve();
  }, new Set());
  for (const mode of ["", "poweroff", "HALT", "__proto__"]) {
    await assertRejects(
      async () => await guestShutdown.run({ mode }, agent),
      isQga("mode is invalid (valid values are: halt|powerdown|reboot"),
    );
  }
  assertEquals(ran, false);
});

Deno.test("runner texts: output, exit status, signal, exec failure", async () => {
  await runCommand(["/bin/sh", "-c", "exit 0"], "shutdown");
  await assertRejects(
    () => runCommand(["/bin/sh", "-c", "echo no power; exit 3"], "shutdown"),
    isQga("child process has failed to shutdown: no power\n"),
  );
  await assertRejects(
    () => runCommand(["/bin/sh", "-c", "exit 3"], "shutdown"),
    isQga("child process has failed to shutdown: exit status 3"),
  );
  await assertRejects(
    () => runCommand(["/bin/sh", "-c", "kill -9 $$"], "shutdown"),
    isQga("child process has terminated abnormally"),
  );
  await assertRejects(
    () => runCommand(["/nonexistent/denoga-poweroff"], "shutdown"),
    isQga(
      "child process has failed to shutdown: failed to exec '/nonexistent/denoga-poweroff': " +
        "No such file or directory\n",
    ),
  );
});

Deno.test("the child runs in a new session with stdin from /dev/null", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await runCommand(
      [
        "/bin/sh",
        "-c",
        `cut -d" " -f6 /proc/$$/stat > ${dir}/sid; readlink /proc/self/fd/0 > ${dir}/stdin`,
      ],
      "shutdown",
    );
    const sid = Number((await Deno.readTextFile(`${dir}/sid`)).trim());
    assertEquals(sid !== Number(Deno.readTextFileSync("/proc/self/stat").split(" ")[5]), true);
    assertEquals((await Deno.readTextFile(`${dir}/stdin`)).trim(), "/dev/null");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
