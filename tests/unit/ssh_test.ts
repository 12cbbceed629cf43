/**
 * guest-ssh-*-authorized-keys over a temp dir standing in for / (osFiles(root)): a fake
 * /etc/passwd, the user's home under it. Error paths with a wrapped facet that fails one call.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import {
  buildFilename,
  guestSshAddAuthorizedKeys,
  guestSshGetAuthorizedKeys,
  guestSshRemoveAuthorizedKeys,
} from "../../lib/commands/ssh.ts";
import { OsFileError, type OsFiles, osFiles } from "../../lib/platform/files.ts";
import { agentWith, isQga } from "./users_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");
const UID = 4242;
const GID = 4343;

async function withRoot(body: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denoga-ssh-" });
  try {
    await Deno.mkdir(`${root}/etc`);
    await Deno.mkdir(`${root}/home/u`, { recursive: true });
    await Deno.writeTextFile(
      `${root}/etc/passwd`,
      `root:x:0:0:root:/root:/bin/sh\nu:x:${UID}:${GID}::/home/u/:/bin/sh\n`,
    );
    await body(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("buildFilename joins like g_build_filename", () => {
  assertEquals(
    buildFilename("/home/u/", ".ssh", "authorized_keys"),
    "/home/u/.ssh/authorized_keys",
  );
  assertEquals(buildFilename("/", ".ssh", "authorized_keys"), "/.ssh/authorized_keys");
  assertEquals(buildFilename("//", ".ssh"), "//.ssh");
  assertEquals(buildFilename("", ".ssh", "authorized_keys"), ".ssh/authorized_keys");
  assertEquals(buildFilename("/a//b//", ".ssh"), "/a//b/.ssh");
});

Deno.test("add creates ~/.ssh and the file, owned by the user; get and remove", async () => {
  await withRoot(async (root) => {
    const agent = agentWith({ os: osFiles(root) });
    const run = { username: "u", keys: ["k1", "k2", "k1"] };
    assertEquals(await guestSshAddAuthorizedKeys.run(run, agent), undefined);
    const ssh = await Deno.stat(`${root}/home/u/.ssh`);
    assertEquals([ssh.mode! & 0o7777, ssh.uid, ssh.gid], [0o700, UID, GID]);
    const file = `${root}/home/u/.ssh/authorized_keys`;
    const st = await Deno.stat(file);
    assertEquals([st.mode! & 0o7777, st.uid, st.gid], [0o600, UID, GID]);
    assertEquals(await Deno.readTextFile(file), "k1\nk2");
    assertEquals(await guestSshGetAuthorizedKeys.run({ username: "u" }, agent), {
      keys: ["k2", "k1"],
    });
    await guestSshRemoveAuthorizedKeys.run({ username: "u", keys: ["k1"] }, agent);
    assertEquals(await Deno.readTextFile(file), "k2");
    // No temp file is left behind.
    assertEquals([...Deno.readDirSync(`${root}/home/u/.ssh`)].map((e) => e.name), [
      "authorized_keys",
    ]);
  });
});

Deno.test("bytes are kept: NUL ends the content, invalid UTF-8 survives a rewrite", async () => {
  await withRoot(async (root) => {
    const agent = agentWith({ os: osFiles(root) });
    await Deno.mkdir(`${root}/home/u/.ssh`);
    const file = `${root}/home/u/.ssh/authorized_keys`;
    await Deno.writeFile(file, new Uint8Array([...enc.encode("a \xff"), 0xff, 0x0a, 0x62]));
    await guestSshAddAuthorizedKeys.run({ username: "u", keys: ["c\u00e9"] }, agent);
    assertEquals(dec.decode(await Deno.readFile(file)), "a \xc3\xbf\xff\nb\nc\xc3\xa9");
    assertEquals(await guestSshGetAuthorizedKeys.run({ username: "u" }, agent), {
      keys: ["c\u00e9", "b", "a \u00ff\ufffd"],
    });
    await Deno.writeFile(file, enc.encode("x\ny\0z\nw"));
    assertEquals(await guestSshGetAuthorizedKeys.run({ username: "u" }, agent), {
      keys: ["y", "x"],
    });
  });
});

Deno.test("keys are checked before the user is looked up", async () => {
  const agent = agentWith({}); // any OS access would throw "not faked"
  for (const key of ["#c", "a\nb"]) {
    await assertRejects(
      () =>
        Promise.resolve(guestSshAddAuthorizedKeys.run({ username: "x", keys: ["ok", key] }, agent)),
      isQga(`invalid OpenSSH public key: '${key}'`),
    );
    await assertRejects(
      () =>
        Promise.resolve(guestSshRemoveAuthorizedKeys.run({ username: "x", keys: [key] }, agent)),
      isQga(`invalid OpenSSH public key: '${key}'`),
    );
  }
});

/** `getent passwd` as NSS would answer it: exit 2 and nothing for an unknown key. */
function getent(lines: Record<string, string>) {
  const calls: string[][] = [];
  const runOutput = (argv: readonly string[]) => {
    calls.push([...argv]);
    const line = lines[argv[argv.length - 1]];
    return Promise.resolve(
      line === undefined
        ? { code: 2, stdout: new Uint8Array() }
        : { code: 0, stdout: new TextEncoder().encode(line + "\n") },
    );
  };
  return { calls, runOutput };
}

Deno.test("a user NSS knows beyond /etc/passwd is found through getent passwd", async () => {
  await withRoot(async (root) => {
    await Deno.mkdir(`${root}/ldap/alice/.ssh`, { recursive: true });
    await Deno.writeTextFile(`${root}/ldap/alice/.ssh/authorized_keys`, "ssh-ed25519 AAAA a\n");
    const nss = getent({
      alice: `alice:*:70001:70001::${root}/ldap/alice:/bin/sh`,
      // An all-digit key is a uid to getent: its answer must not stand for a user named "0".
      "0": "root:x:0:0:root:/root:/bin/bash",
    });
    const agent = agentWith({ os: osFiles("/"), runOutput: nss.runOutput });
    assertEquals(
      await guestSshGetAuthorizedKeys.run({ username: "alice" }, agent),
      { keys: ["ssh-ed25519 AAAA a"] },
    );
    assertEquals(nss.calls[0], ["getent", "passwd", "--", "alice"]);
    await assertRejects(
      () => Promise.resolve(guestSshGetAuthorizedKeys.run({ username: "0" }, agent)),
      isQga("failed to lookup user '0': Success"),
    );
  });
});

Deno.test("missing user, unreadable passwd", async () => {
  await withRoot(async (root) => {
    const agent = agentWith({ os: osFiles(root), runOutput: getent({}).runOutput });
    await assertRejects(
      () => Promise.resolve(guestSshGetAuthorizedKeys.run({ username: "nobody" }, agent)),
      isQga("failed to lookup user 'nobody': Success"),
    );
    await Deno.remove(`${root}/etc/passwd`);
    await assertRejects(
      () => Promise.resolve(guestSshGetAuthorizedKeys.run({ username: "u" }, agent)),
      isQga("failed to lookup user 'u': Success"),
    );
  });
});

/** osFiles(root) with one method failing with `text`. */
function failing(root: string, method: keyof OsFiles, text: string, syscall?: string): OsFiles {
  const real = osFiles(root);
  return {
    ...real,
    [method]: (path: string) => Promise.reject(new OsFileError(text, 1, path, syscall)),
  };
}

Deno.test("mkdir, chown, chmod and write failures have qemu-ga's texts", async () => {
  await withRoot(async (root) => {
    const add = (os: OsFiles) =>
      Promise.resolve(
        guestSshAddAuthorizedKeys.run({ username: "u", keys: ["k"] }, agentWith({ os })),
      );
    await assertRejects(
      () => add(failing(root, "chown", "Operation not permitted")),
      isQga("failed to set ownership of directory '/home/u/.ssh': Operation not permitted"),
    );
    await Deno.remove(`${root}/home/u/.ssh`, { recursive: true });
    await assertRejects(
      () => add(failing(root, "chmod", "Read-only file system")),
      isQga("failed to set permissions of directory '/home/u/.ssh': Read-only file system"),
    );
    // .ssh exists now: the file's own chown/chmod fail.
    await assertRejects(
      () => add(failing(root, "chown", "Operation not permitted")),
      isQga(
        "failed to set ownership of directory '/home/u/.ssh/authorized_keys': Operation not permitted",
      ),
    );
    await assertRejects(
      () => add(failing(root, "chmod", "Read-only file system")),
      isQga("failed to set permissions of '/home/u/.ssh/authorized_keys': Read-only file system"),
    );
    let tmp = "";
    const full: OsFiles = {
      ...osFiles(root),
      writeFile: (path) => {
        tmp = path;
        return Promise.reject(new OsFileError("No space left on device", 28, path, "write"));
      },
    };
    const p = "/home/u/.ssh/authorized_keys";
    await assertRejects(
      () => add(full),
      (e) =>
        isQga(
          `failed to write to '${p}': Failed to write file \u201c${tmp}\u201d: write() failed: No space left on device`,
        )(e) && /^\/home\/u\/\.ssh\/authorized_keys\.[A-Za-z0-9]{6}$/.test(tmp),
    );
    await assertRejects(
      () => add(failing(root, "writeFile", "Permission denied", "open")),
      (e) =>
        e instanceof Error &&
        /Failed to create file \u201c.*\.[A-Za-z0-9]{6}\u201d: Permission denied$/.test(
          (e as { desc?: string }).desc ?? "",
        ),
    );
  });
});
