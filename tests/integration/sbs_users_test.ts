/**
 * guest-ssh-*-authorized-keys, guest-set-user-password and guest-suspend-* side by side with the
 * newest upstream qemu-ga (10.2.50), on a throwaway user (`useradd -M`, home in a temp dir,
 * deleted with `userdel` afterwards).
 *
 * Each case first lays the user's home out as it needs (host step), then sends the same bytes
 * to both agents, then shows what is on disk: every entry of `~/.ssh` with its type, mode, owner
 * and content. qemu-ga runs the whole case first, then denoga, on the same user.
 *
 * Safety: guest-set-user-password is only sent where it fails before chpasswd would run (bad
 * base64, forbidden characters, missing argument); guest-suspend-* only with an unexpected
 * argument, refused before the command runs.
 */

import { assertEquals } from "../assert.ts";
import {
  type Case,
  type CaseContext,
  type Impl,
  needQemuGaNewest,
  needRoot,
  RawClient,
  realTest,
  registerSideBySide,
  type Requirement,
  showBytes,
  startAgent,
} from "./harness.ts";
import {
  canManageUsers,
  createThrowawayUser,
  throwawayName,
  type ThrowawayUser,
} from "../fixtures/users/throwaway.ts";

const USER = throwawayName();
let userPromise: Promise<ThrowawayUser> | undefined;
const user = () => (userPromise ??= createThrowawayUser(USER));

const latin1 = new TextDecoder("latin1");
const enc = new TextEncoder();

/** How a case wants the home directory before it starts. */
interface HomeLayout {
  /** Create the home directory (default true). */
  readonly home?: boolean;
  /** `~/.ssh`: a directory (default when `keys` is given), a plain file, or absent. */
  readonly ssh?: "dir" | "file" | "absent";
  /** `~/.ssh/authorized_keys`: content, a directory, or a symlink to `~/other`. */
  readonly keys?: string | Uint8Array | { dir: true } | { symlink: string };
  /** Owner of the pre-existing authorized_keys (default the user) and its mode (0644). */
  readonly keysOwner?: "root" | "user";
  readonly keysMode?: number;
}

function layout(l: HomeLayout) {
  return {
    host: async (_ctx: CaseContext): Promise<void> => {
      const u = await user();
      await Deno.remove(u.home, { recursive: true }).catch(() => {});
      if (l.home === false) return;
      await Deno.mkdir(u.home, { recursive: true, mode: 0o755 });
      await Deno.chown(u.home, u.uid, u.gid);
      const ssh = l.ssh ?? (l.keys !== undefined ? "dir" : "absent");
      if (ssh === "file") await Deno.writeFile(`${u.home}/.ssh`, enc.encode("not a dir"));
      if (ssh !== "dir") return;
      await Deno.mkdir(`${u.home}/.ssh`, { mode: 0o700 });
      await Deno.chown(`${u.home}/.ssh`, u.uid, u.gid);
      const path = `${u.home}/.ssh/authorized_keys`;
      const k = l.keys;
      if (k === undefined) return;
      if (typeof k === "object" && "dir" in k) {
        await Deno.mkdir(path);
        return;
      }
      if (typeof k === "object" && "symlink" in k) {
        await Deno.writeFile(`${u.home}/other`, enc.encode(k.symlink));
        await Deno.symlink(`${u.home}/other`, path);
        return;
      }
      await Deno.writeFile(path, typeof k === "string" ? enc.encode(k) : k);
      await Deno.chmod(path, l.keysMode ?? 0o644);
      if ((l.keysOwner ?? "user") === "user") await Deno.chown(path, u.uid, u.gid);
    },
  };
}

/** What is on disk afterwards: home, ~/.ssh and each entry in it (type, mode, owner, content). */
const show = {
  host: async (_ctx: CaseContext): Promise<string[]> => {
    const u = await user();
    const owner = (uid: number | null) =>
      uid === u.uid ? "user" : uid === 0 ? "root" : `uid ${uid}`;
    const describe = async (path: string, label: string): Promise<string> => {
      const st = await Deno.lstat(path);
      const mode = ((st.mode ?? 0) & 0o7777).toString(8).padStart(4, "0");
      const kind = st.isSymlink ? "symlink" : st.isDirectory ? "dir" : "file";
      let s = `${label}: ${kind} ${mode} ${owner(st.uid)}`;
      if (st.isFile) s += ` ${JSON.stringify(latin1.decode(await Deno.readFile(path)))}`;
      return s;
    };
    const lines: string[] = [];
    try {
      await Deno.lstat(u.home);
    } catch {
      return ["no home"];
    }
    try {
      lines.push(await describe(`${u.home}/.ssh`, ".ssh"));
    } catch {
      return ["no .ssh"];
    }
    if ((await Deno.lstat(`${u.home}/.ssh`)).isDirectory) {
      const names: string[] = [];
      for await (const e of Deno.readDir(`${u.home}/.ssh`)) names.push(e.name);
      for (const n of names.sort()) lines.push(await describe(`${u.home}/.ssh/${n}`, n));
    }
    return lines;
  },
};

const j = (v: unknown) => JSON.stringify(v);
const get = (id: string, username = USER) =>
  `{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":${
    j(username)
  }},"id":"${id}"}`;
const add = (id: string, keys: string[], reset?: boolean, username = USER) =>
  `{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":${j(username)},"keys":${
    j(keys)
  }${reset === undefined ? "" : `,"reset":${reset}`}},"id":"${id}"}`;
const remove = (id: string, keys: string[], username = USER) =>
  `{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":${j(username)},"keys":${
    j(keys)
  }},"id":"${id}"}`;
const b64 = (s: string) => btoa(s);
const passwd = (id: string, username: string, password: string, crypted = false) =>
  `{"execute":"guest-set-user-password","arguments":{"username":${j(username)},"password":${
    j(password)
  },"crypted":${crypted}},"id":"${id}"}`;

const K1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 one@host";
const K2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKey2 two@host";
const K3 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhKey3 three";

const NO_USER = "denoga-no-such-user";

const cases: Case[] = [
  // ---- user lookup and argument checks
  {
    name: "get: missing user",
    steps: [{ req: get("g", NO_USER) }],
    expect: [
      `{"id": "g", "error": {"class": "GenericError", "desc": "failed to lookup user '${NO_USER}': Success"}}`,
    ],
  },
  { name: "get: empty user name", steps: [{ req: get("g", "") }] },
  { name: "get: user name with a colon", steps: [{ req: get("g", `${USER}:x`) }] },
  { name: "get: NIS-style +name", steps: [{ req: get("g", "+root") }] },
  {
    name: "add: invalid key is refused before the user is looked up",
    steps: [{ req: add("a", [K1, "#comment"], undefined, NO_USER) }],
    expect: [
      `{"id": "a", "error": {"class": "GenericError", "desc": "invalid OpenSSH public key: '#comment'"}}`,
    ],
  },
  {
    name: "add: key with a newline",
    steps: [layout({ keys: `${K1}\n` }), { req: add("a", ["a\nb"]) }, show],
  },
  { name: "remove: invalid key", steps: [{ req: remove("r", ["# x"], NO_USER) }] },
  { name: "remove: missing user", steps: [{ req: remove("r", [K1], NO_USER) }] },
  { name: "add: missing user", steps: [{ req: add("a", [K1], true, NO_USER) }] },

  // ---- get
  { name: "get: home without .ssh", steps: [layout({}), { req: get("g") }] },
  { name: "get: no home at all", steps: [layout({ home: false }), { req: get("g") }] },
  { name: "get: empty file", steps: [layout({ keys: "" }), { req: get("g") }] },
  {
    name: "get: comments, blank lines, CRLF, white space; last line first",
    steps: [
      layout({
        keys: `# header\n\n${K1}\r\n   ${K2}\t \n\t# indented comment\n\v${K3}\v\n \f\r\n${K1}`,
      }),
      { req: get("g") },
    ],
  },
  {
    name: "get: content after a NUL byte is not seen",
    steps: [layout({ keys: `${K1}\n${K2}\0\n${K3}\n` }), { req: get("g") }],
  },
  {
    name: "get: non-ASCII and invalid UTF-8",
    steps: [
      layout({
        keys: new Uint8Array([
          ...enc.encode(`${K1} caf\u00e9 \u{1F511}\n`),
          ...enc.encode("ssh-rsa AAAA bad"),
          0xff,
          0xc3,
          0x28,
          0x0a,
        ]),
      }),
      { req: get("g") },
    ],
  },
  {
    name: "get: authorized_keys is a directory",
    steps: [layout({ keys: { dir: true } }), { req: get("g") }],
  },
  {
    name: "get: authorized_keys is a symlink",
    steps: [layout({ keys: { symlink: `${K2}\n` } }), { req: get("g") }],
  },

  // ---- add
  {
    name: "add: home without .ssh creates it 0700 and the file 0600, owned by the user",
    steps: [layout({}), { req: add("a", [K1, K2]) }, show, { req: get("g") }],
  },
  {
    name: "add: no home directory: .ssh cannot be created",
    steps: [layout({ home: false }), { req: add("a", [K1]) }, show],
  },
  {
    name: "add: .ssh is a file",
    steps: [layout({ ssh: "file" }), { req: add("a", [K1]) }, show],
  },
  {
    name: "add: keeps existing lines (trailing newline too), skips present and repeated keys",
    steps: [
      layout({ keys: `# mine\n${K1}\n\n${K2}\r\n`, keysMode: 0o644 }),
      { req: add("a", [K1, K3, K3, K2, ""]) },
      show,
      { req: get("g") },
    ],
  },
  {
    name: "add: existing file owned by root, mode 0644, becomes the user's, 0600",
    steps: [layout({ keys: `${K1}`, keysOwner: "root", keysMode: 0o644 }), {
      req: add("a", [K2]),
    }, show],
  },
  {
    name: "add: reset true replaces the content",
    steps: [layout({ keys: `${K1}\n${K2}\n` }), { req: add("a", [K3], true) }, show],
  },
  {
    name: "add: reset true with no keys empties the file",
    steps: [layout({ keys: `${K1}\n` }), { req: add("a", [], true) }, show],
  },
  {
    name: "add: reset false is the default",
    steps: [layout({ keys: `${K1}` }), { req: add("a", [K2], false) }, show],
  },
  {
    name: "add: no keys, no reset, no file",
    steps: [layout({}), { req: add("a", []) }, show],
  },
  {
    name: "add: authorized_keys is a symlink: the link is replaced by a file",
    steps: [layout({ keys: { symlink: `${K1}\n` } }), { req: add("a", [K2]) }, show],
  },
  {
    name: "add: non-ASCII key, then get",
    steps: [layout({}), { req: add("a", [`${K1} caf\u00e9`, "x\u0000y"]) }, show, {
      req: get("g"),
    }],
  },
  {
    name: "add: reset true with no .ssh",
    steps: [layout({}), { req: add("a", [K1], true) }, show],
  },

  // ---- remove
  {
    name: "remove: no file is a success and creates nothing",
    steps: [layout({}), { req: remove("r", [K1]) }, show],
  },
  {
    name: "remove: no home",
    steps: [layout({ home: false }), { req: remove("r", [K1]) }, show],
  },
  {
    name: "remove: drops every exact match (duplicates too), keeps CRLF variants",
    steps: [
      layout({ keys: `${K1}\n${K2}\n${K1}\n${K1}\r\n # c\n${K3}\n`, keysOwner: "root" }),
      { req: remove("r", [K1, "absent key"]) },
      show,
    ],
  },
  {
    name: "remove: everything",
    steps: [layout({ keys: `${K1}` }), { req: remove("r", [K1]) }, show],
  },
  {
    name: "remove: authorized_keys is a directory",
    steps: [layout({ keys: { dir: true } }), { req: remove("r", [K1]) }, show],
  },

  // ---- guest-set-user-password: only paths that fail before chpasswd runs
  {
    name: "set-user-password: invalid base64",
    steps: [{ req: passwd("p", USER, "not base64!") }],
    expect: [
      `{"id": "p", "error": {"class": "GenericError", "desc": "Base64 data contains invalid characters"}}`,
    ],
  },
  {
    name: "set-user-password: newline in the raw password",
    steps: [{ req: passwd("p", USER, b64("pass\nword")) }, {
      req: passwd("q", `${USER}:x`, b64("a\nb"), true),
    }],
    expect: [
      `{"id": "p", "error": {"class": "GenericError", "desc": "forbidden characters in raw password"}}`,
      `{"id": "q", "error": {"class": "GenericError", "desc": "forbidden characters in raw password"}}`,
    ],
  },
  {
    name: "set-user-password: colon or newline in the user name",
    steps: [
      { req: passwd("p", `${USER}:0`, b64("secret")) },
      { req: passwd("q", `${USER}\nroot`, b64("secret"), true) },
    ],
    expect: [
      `{"id": "p", "error": {"class": "GenericError", "desc": "forbidden characters in username"}}`,
      `{"id": "q", "error": {"class": "GenericError", "desc": "forbidden characters in username"}}`,
    ],
  },
  {
    name: "set-user-password: missing and unexpected arguments",
    steps: [
      { req: `{"execute":"guest-set-user-password","arguments":{"username":"x","password":""}}` },
      {
        req:
          `{"execute":"guest-set-user-password","arguments":{"username":"x:","password":"","crypted":false,"x":1}}`,
      },
      {
        req:
          `{"execute":"guest-set-user-password","arguments":{"username":"x:","password":"","crypted":"no"}}`,
      },
    ],
  },

  // ---- guest-suspend-*: an unexpected argument is refused before the command runs
  {
    name: "suspend: unexpected argument",
    steps: [
      { req: `{"execute":"guest-suspend-disk","arguments":{"mode":"x"},"id":1}` },
      { req: `{"execute":"guest-suspend-ram","arguments":{"now":true},"id":2}` },
      { req: `{"execute":"guest-suspend-hybrid","arguments":{"a":null},"id":3}` },
    ],
    expect: [
      `{"id": 1, "error": {"class": "GenericError", "desc": "Parameter 'mode' is unexpected"}}`,
      `{"id": 2, "error": {"class": "GenericError", "desc": "Parameter 'now' is unexpected"}}`,
      `{"id": 3, "error": {"class": "GenericError", "desc": "Parameter 'a' is unexpected"}}`,
    ],
  },
];

const reqs: Requirement[] = [needQemuGaNewest(), needRoot(), {
  what: "useradd/userdel",
  present: canManageUsers(),
}];

registerSideBySide("users sbs", cases, { newest: true }, reqs);

// g_file_set_contents' temp file has a random `.XXXXXX` suffix that shows in this error text, so
// the case runs outside the harness and the suffix is masked before comparing.
realTest("users sbs: add: authorized_keys is a directory (rename fails)", reqs, async () => {
  const transcripts: string[][] = [];
  for (const impl of ["qemu-ga", "denoga"] as Impl[]) {
    const ctx = {} as CaseContext;
    await layout({ keys: { dir: true } }).host(ctx);
    const agent = await startAgent({ impl, newest: true });
    const c = await RawClient.connect(agent.socketPath);
    try {
      await c.send(add("a", [K1]));
      const line = showBytes(await c.recvLine());
      transcripts.push([
        line.replace(/authorized_keys\.[A-Za-z0-9]{6}\\u201C/g, "authorized_keys.XXXXXX\\u201C")
          .replace(/authorized_keys\.[A-Za-z0-9]{6}\\u201D/g, "authorized_keys.XXXXXX\\u201D"),
        ...(await show.host(ctx)),
      ]);
    } finally {
      c.close();
      await agent.stop();
    }
  }
  assertEquals(transcripts[1], transcripts[0]);
  assertEquals(transcripts[0][0].includes("g_rename() failed: Is a directory"), true);
});

realTest("users sbs: the throwaway user is deleted", reqs, async () => {
  await (await user()).remove();
});
