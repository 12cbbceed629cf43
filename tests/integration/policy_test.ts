/**
 * denoga's argument policy and audit trail with the real agent on a unix socket: guest-exec and
 * guest-file-open refused or allowed, ssh keys of a denied throwaway user refused, the audit
 * file's records (held while a loop filesystem is frozen, written after the thaw) and `-D`.
 * Password, time, shutdown and suspend records are unit-tested (tests/unit/policy_test.ts):
 * those commands are never sent to an agent on this host.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { canManageUsers, createThrowawayUser } from "../fixtures/users/throwaway.ts";
import { assertOwnLoopMount, kernelFrozen, realTest, withLoopFs } from "../fixtures/loopfs.ts";
import { procState } from "../fixtures/proc.ts";
import {
  exec,
  needRoot,
  RawClient,
  realTest as realAgentTest,
  runAgentOnce,
  startAgent,
} from "./harness.ts";

const dec = new TextDecoder("latin1");

async function ask(c: RawClient, req: string): Promise<string> {
  await c.send(req);
  return dec.decode(await c.recvLine());
}

/** The audit file's records without their timestamps. */
async function records(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => {
    const { time, ...rest } = JSON.parse(l);
    assertOk(!Number.isNaN(Date.parse(time)), l);
    return rest;
  });
}

const refusal = (desc: string) => `{"error": {"class": "GenericError", "desc": "${desc}"}}`;

Deno.test("policy: guest-exec and guest-file-open refused or allowed, every change audited", async () => {
  // Outside the agent's dir, which stop() removes; the records left must all be written by then.
  const auditDir = await Deno.makeTempDir();
  const audit = `${auditDir}/audit.jsonl`;
  const agent = await startAgent({
    impl: "denoga",
    args: [
      "--allow-exec=/bin/true",
      "--allow-file-path=@DIR@/allowed",
      `--audit-log=${audit}`,
    ],
    setup: async (dir) => {
      await Deno.mkdir(`${dir}/allowed`);
      await Deno.mkdir(`${dir}/outside`);
      await Deno.symlink(`${dir}/outside`, `${dir}/allowed/escape`);
    },
  });
  try {
    const dir = await Deno.realPath(agent.dir);
    const c = await RawClient.connect(agent.socketPath);
    const sh = await Deno.realPath("/bin/sh");

    assertEquals(
      await ask(c, exec("guest-exec", '{"path":"sh","arg":["-c","touch ../outside/ran"]}')),
      refusal(`program 'sh' (resolved to '${sh}') is not allowed by allow-exec`),
    );
    const allowed = await ask(c, exec("guest-exec", '{"path":"true","arg":["x"]}'));
    const pid = Number(/^\{"return": \{"pid": (\d+)\}\}$/.exec(allowed)?.[1]);
    assertOk(pid > 0, allowed);

    const open = (path: string) =>
      ask(c, exec("guest-file-open", JSON.stringify({ path, mode: "w" })));
    assertEquals(
      await open(`${agent.dir}/allowed/../outside/a`),
      refusal(
        `path '${agent.dir}/allowed/../outside/a' (resolved to '${dir}/outside/a') ` +
          "is not allowed by allow-file-path",
      ),
    );
    assertEquals(
      await open(`${agent.dir}/allowed/escape/b`),
      refusal(
        `path '${agent.dir}/allowed/escape/b' (resolved to '${dir}/outside/b') ` +
          "is not allowed by allow-file-path",
      ),
    );
    // Refused before any side effect: nothing was created outside.
    assertEquals([...Deno.readDirSync(`${agent.dir}/outside`)], []);
    const handle = Number(/^\{"return": (\d+)\}$/.exec(await open(`${agent.dir}/allowed/c`))?.[1]);
    assertOk(handle >= 1000);
    const write = exec("guest-file-write", `{"handle":${handle},"buf-b64":"aGk="}`);
    assertOk((await ask(c, write)).startsWith('{"return": {"count": 2'));
    assertEquals(await ask(c, exec("guest-file-close", `{"handle":${handle}}`)), '{"return": {}}');
    assertEquals(await Deno.readTextFile(`${agent.dir}/allowed/c`), "hi");
    // Reading is not audited, but is checked too.
    const read = await ask(c, exec("guest-file-open", `{"path":"/etc/hostname"}`));
    assertOk(read.includes("is not allowed by allow-file-path"), read);
    c.close();
    await agent.stop().catch(() => {});

    assertEquals(await records(audit), [
      {
        command: "guest-exec",
        path: "sh",
        argv: ["-c", "touch ../outside/ran"],
        error: `program 'sh' (resolved to '${sh}') is not allowed by allow-exec`,
      },
      { command: "guest-exec", path: "true", argv: ["x"], pid },
      {
        command: "guest-file-open",
        path: `${agent.dir}/allowed/../outside/a`,
        mode: "w",
        error: `path '${agent.dir}/allowed/../outside/a' (resolved to '${dir}/outside/a') ` +
          "is not allowed by allow-file-path",
      },
      {
        command: "guest-file-open",
        path: `${agent.dir}/allowed/escape/b`,
        mode: "w",
        error: `path '${agent.dir}/allowed/escape/b' (resolved to '${dir}/outside/b') ` +
          "is not allowed by allow-file-path",
      },
      { command: "guest-file-open", path: `${agent.dir}/allowed/c`, mode: "w", handle },
    ]);
  } finally {
    await agent.dispose();
    await Deno.remove(auditDir, { recursive: true });
  }
});

realAgentTest(
  "policy: ssh keys of a denied user are refused; an allowed user's changes are audited",
  [needRoot(), { what: "useradd/userdel", present: canManageUsers() }],
  async () => {
    const denied = await createThrowawayUser();
    const allowed = await createThrowawayUser();
    const audit = `${allowed.base}/audit.jsonl`;
    const agent = await startAgent({
      impl: "denoga",
      args: [`--deny-user=${denied.name}`, `--audit-log=${audit}`],
    });
    try {
      for (const u of [denied, allowed]) {
        await Deno.mkdir(u.home, { recursive: true });
        await Deno.chown(u.home, u.uid, u.gid);
      }
      const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDenogaPolicyTestKeyOnly test";
      const c = await RawClient.connect(agent.socketPath);
      const keys = (cmd: string, name: string) =>
        ask(c, exec(cmd, JSON.stringify({ username: name, keys: [key] })));
      const denial = refusal(`user '${denied.name}' is denied by deny-user`);
      assertEquals(await keys("guest-ssh-add-authorized-keys", denied.name), denial);
      assertEquals(
        await ask(
          c,
          exec("guest-ssh-get-authorized-keys", JSON.stringify({ username: denied.name })),
        ),
        denial,
      );
      assertEquals([...Deno.readDirSync(denied.home)], [], "nothing written for a denied user");
      assertEquals(await keys("guest-ssh-add-authorized-keys", allowed.name), '{"return": {}}');
      assertEquals(
        await Deno.readTextFile(`${allowed.home}/.ssh/authorized_keys`),
        key,
      );
      assertEquals(await keys("guest-ssh-remove-authorized-keys", allowed.name), '{"return": {}}');
      c.close();
      await agent.stop().catch(() => {});
      assertEquals(await records(audit), [
        {
          command: "guest-ssh-add-authorized-keys",
          user: denied.name,
          keys: [key],
          error: `user '${denied.name}' is denied by deny-user`,
        },
        { command: "guest-ssh-add-authorized-keys", user: allowed.name, keys: [key] },
        { command: "guest-ssh-remove-authorized-keys", user: allowed.name, keys: [key] },
      ]);
    } finally {
      await agent.dispose();
      await denied.remove();
      await allowed.remove();
    }
  },
);

realTest(
  "audit: a record made while frozen is held and written after the thaw",
  ["ext4"],
  async () => {
    await withLoopFs("ext4", async (mnt) => {
      assertOwnLoopMount(mnt);
      // The audit file lives on the filesystem being frozen.
      const auditPath = `${mnt}/audit.jsonl`;
      const agent = await startAgent({ impl: "denoga", args: [`--audit-log=${auditPath}`] });
      try {
        const c = await RawClient.connect(agent.socketPath);
        const pidReply = await ask(c, exec("guest-exec", '{"path":"/bin/true"}'));
        const pid = Number(/"pid": (\d+)/.exec(pidReply)?.[1]);
        assertOk(pid > 0, pidReply);
        const freeze = exec("guest-fsfreeze-freeze-list", JSON.stringify({ mountpoints: [mnt] }));
        try {
          assertEquals(await ask(c, freeze), '{"return": 1}');
          assertOk(await kernelFrozen(mnt), "frozen in the kernel");
          assertEquals(await ask(c, exec("guest-ping")), '{"return": {}}');
          assertEquals((await records(auditPath)).map((r) => r.command), ["guest-exec"]);
          // Held, not blocked: a write to the frozen file would leave a thread in state D.
          const tasks = [...Deno.readDirSync(`/proc/${agent.proc.pid}/task`)];
          const blocked = tasks.filter((t) =>
            procState(`/proc/${agent.proc.pid}/task/${t.name}/stat`) === "D"
          );
          assertEquals(blocked.length, 0);
        } finally {
          // (The count is not asserted: another test may thaw every mount meanwhile.)
          const thaw = await ask(c, exec("guest-fsfreeze-thaw"));
          assertOk(/^\{"return": \d+\}$/.test(thaw), thaw);
        }
        c.close();
        await agent.stop().catch(() => {});
        const all = await records(auditPath);
        assertEquals(all.slice(0, 2), [
          { command: "guest-exec", path: "/bin/true", argv: [], pid },
          { command: "guest-fsfreeze-freeze-list", mountpoints: [mnt], frozen: 1 },
        ]);
        assertEquals(all[2].command, "guest-fsfreeze-thaw");
        assertEquals(all.length, 3);
      } finally {
        await agent.dispose();
      }
    });
  },
);

Deno.test("policy: -D dumps the policy and audit keys; options accumulate", async () => {
  const base = ["-D", "-m", "unix-listen", "-p", "/tmp/x.sock"];
  const out = await runAgentOnce("denoga", [
    ...base,
    "--allow-exec=/bin/true,/usr/bin/env",
    "--allow-exec=/opt/tools/",
    "--allow-file-path=/srv/in",
    "--deny-user=root,admin",
    "--audit",
    "--audit-log=/var/log/denoga-audit.jsonl",
  ]);
  assertEquals(out.code, 0, out.stderr);
  const tail = out.stdout.split("\n").slice(-6).join("\n");
  assertEquals(
    tail,
    "allow-exec=/bin/true,/usr/bin/env,/opt/tools/\n" +
      "allow-file-path=/srv/in\n" +
      "deny-user=root,admin\n" +
      "audit=true\n" +
      "audit-log=/var/log/denoga-audit.jsonl\n",
  );
  const plain = await runAgentOnce("denoga", base);
  assertOk(!/allow-exec|allow-file-path|deny-user|audit/.test(plain.stdout), plain.stdout);
});
