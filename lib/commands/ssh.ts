/**
 * guest-ssh-get-authorized-keys, guest-ssh-add-authorized-keys, guest-ssh-remove-authorized-keys
 * (§3.13, newest qga/commands-posix-ssh.c and commands-common-ssh.c).
 *
 * - The user is looked up in /etc/passwd (lib/system/passwd.ts); the file is
 *   `<home>/.ssh/authorized_keys`, the path joined the way g_build_filename joins it.
 * - Files are handled as bytes, as qemu-ga's C strings: the content ends at its first NUL,
 *   lines are split on `\n` only, keys are compared byte for byte (as the modified UTF-8 qemu-ga
 *   holds them in), and get strips GLib's ASCII white space (space, `\t`, `\n`, `\f`, `\r`).
 * - Writing replaces the file the way g_file_set_contents does: a new `<file>.XXXXXX` created
 *   0666 & ~umask, written, fsynced when the old file was not empty, renamed over the old one
 *   (a symlink is replaced, not followed); then chown to the user and chmod 0600.
 *
 * Every file access goes through `agent.platform.os`, so a home directory on a dead NFS server
 * or a stopped FUSE daemon holds only its own request.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { t } from "../dispatch/schema.ts";
import { audited } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError, QgaError } from "../errors.ts";
import { OsFileError } from "../platform/files.ts";
import { decodeModUtf8Lossy, encodeModUtf8 } from "../protocol/utf8.ts";
import { lookupUser, type PasswdEntry } from "../system/passwd.ts";

const PASSWD = "/etc/passwd";
const EISDIR = 21;

/** A line of the file as a byte string: one char per byte (latin1), compared exactly. */
type ByteLine = string;

function toByteString(bytes: Uint8Array): ByteLine {
  let s = "";
  for (let k = 0; k < bytes.length; k += 8192) {
    s += String.fromCharCode(...bytes.subarray(k, k + 8192));
  }
  return s;
}

function fromByteString(s: ByteLine): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let k = 0; k < s.length; k++) out[k] = s.charCodeAt(k);
  return out;
}

/** A key as qemu-ga holds it (modified UTF-8), as a byte string. */
function keyBytes(key: string): ByteLine {
  return toByteString(encodeModUtf8(key));
}

/** check_openssh_pub_key: no `#` first, no newline. An empty key passes. */
function checkKeys(keys: readonly string[]): void {
  for (const key of keys) {
    if (key.startsWith("#") || key.includes("\n")) {
      throw genericError(`invalid OpenSSH public key: '${key}'`);
    }
  }
}

/** `<what>: <strerror>` as error_setg_errno builds it. */
function osFailure(what: string, e: unknown): QgaError {
  if (e instanceof OsFileError) return genericError(`${what}: ${e.text}`);
  throw e;
}

/**
 * g_unix_get_passwd_entry (getpwnam_r); a missing user is "not found" with errno 0. /etc/passwd
 * answers for local users; anyone else (LDAP, sssd, systemd-homed, dynamic users) is asked of
 * NSS through `getent passwd`, which consults the same sources getpwnam does.
 */
async function passwdEntry(agent: Agent, username: string): Promise<PasswdEntry> {
  let entry: PasswdEntry | undefined;
  try {
    entry = lookupUser(await agent.platform.os.readFile(PASSWD), username);
  } catch (e) {
    if (!(e instanceof OsFileError)) throw e;
    // nss_files reports an unreadable passwd file as "not found" too.
  }
  entry ??= await nssEntry(agent, username);
  if (!entry) throw genericError(`failed to lookup user '${username}': Success`);
  return entry;
}

/** The user from `getent passwd`, if NSS knows it by that exact name. */
async function nssEntry(agent: Agent, username: string): Promise<PasswdEntry | undefined> {
  // getent takes an all-digit key for a uid and stops at a NUL; getpwnam would do neither.
  if (username === "" || username.includes("\0")) return undefined;
  const out = await agent.platform.runOutput(["getent", "passwd", "--", username]);
  if (out === undefined || out.code !== 0) return undefined;
  const entry = lookupUser(out.stdout, username);
  return entry?.name === username ? entry : undefined;
}

/**
 * g_build_filename(dir, ...names): the directory's leading slashes kept, slashes between the
 * parts collapsed to one, empty parts dropped.
 */
export function buildFilename(dir: string, ...names: string[]): string {
  const lead = /^\/*/.exec(dir)![0];
  const middle = dir.slice(lead.length).replace(/\/+$/, "");
  return lead + [middle, ...names].filter((p) => p !== "").join("/");
}

/**
 * read_authkeys: the file's lines (split on `\n`, up to the first NUL), or a GLib-worded error
 * text for `failed to read '<path>': <text>`.
 */
async function readAuthKeys(
  agent: Agent,
  path: string,
): Promise<{ lines: ByteLine[] } | { error: string }> {
  let data: Uint8Array;
  try {
    data = await agent.platform.os.readFile(path);
  } catch (e) {
    if (!(e instanceof OsFileError)) throw e;
    return { error: `failed to read '${path}': ${fileReadError(path, e)}` };
  }
  const nul = data.indexOf(0);
  const text = toByteString(nul < 0 ? data : data.subarray(0, nul));
  // g_strsplit of an empty string is an empty vector.
  return { lines: text === "" ? [] : text.split("\n") };
}

/** g_file_get_contents' message for a failed read. */
function fileReadError(path: string, e: OsFileError): string {
  const name = `\u201c${path}\u201d`;
  if (e.syscall === "read") {
    // A directory opens and fails on read, through GLib's stdio path.
    return e.errno === EISDIR
      ? `Error reading file ${name}: ${e.text}`
      : `Failed to read from file ${name}: ${e.text}`;
  }
  return `Failed to open file ${name}: ${e.text}`;
}

/** A random mkstemp-style suffix. */
function tempSuffix(): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => chars[b % chars.length]).join("");
}

/** g_file_set_contents: the GLib-worded error text on failure, undefined on success. */
async function setContents(
  agent: Agent,
  path: string,
  data: Uint8Array,
): Promise<string | undefined> {
  const os = agent.platform.os;
  let oldSize = 0;
  try {
    const st = await os.lstat(path);
    oldSize = st.size;
  } catch (e) {
    if (!(e instanceof OsFileError)) throw e;
  }
  const tmp = `${path}.${tempSuffix()}`;
  try {
    await os.writeFile(tmp, data, { exclusive: true, mode: 0o666, sync: oldSize > 0 });
  } catch (e) {
    if (!(e instanceof OsFileError)) throw e;
    if (e.syscall === "open") return `Failed to create file \u201c${tmp}\u201d: ${e.text}`;
    await os.remove(tmp).catch(() => {});
    return `Failed to write file \u201c${tmp}\u201d: ${e.syscall}() failed: ${e.text}`;
  }
  try {
    await os.rename(tmp, path);
  } catch (e) {
    if (!(e instanceof OsFileError)) throw e;
    await os.remove(tmp).catch(() => {});
    return `Failed to rename file \u201c${tmp}\u201d to \u201c${path}\u201d: g_rename() failed: ${e.text}`;
  }
  return undefined;
}

/** write_authkeys: lines joined with `\n`, then owner and mode 0600. */
async function writeAuthKeys(
  agent: Agent,
  path: string,
  lines: readonly ByteLine[],
  user: PasswdEntry,
): Promise<void> {
  const failure = await setContents(agent, path, fromByteString(lines.join("\n")));
  if (failure !== undefined) throw genericError(`failed to write to '${path}': ${failure}`);
  const os = agent.platform.os;
  try {
    await os.chown(path, user.uid, user.gid);
  } catch (e) {
    // sic: qemu-ga says "directory" for the file too.
    throw osFailure(`failed to set ownership of directory '${path}'`, e);
  }
  try {
    await os.chmod(path, 0o600);
  } catch (e) {
    throw osFailure(`failed to set permissions of '${path}'`, e);
  }
}

/** mkdir_for_user: mkdir, chown, chmod. */
async function mkdirForUser(
  agent: Agent,
  path: string,
  user: PasswdEntry,
  mode: number,
): Promise<void> {
  const os = agent.platform.os;
  try {
    await os.mkdir(path, mode);
  } catch (e) {
    throw osFailure(`failed to create directory '${path}'`, e);
  }
  try {
    await os.chown(path, user.uid, user.gid);
  } catch (e) {
    throw osFailure(`failed to set ownership of directory '${path}'`, e);
  }
  try {
    await os.chmod(path, mode);
  } catch (e) {
    throw osFailure(`failed to set permissions of directory '${path}'`, e);
  }
}

/** g_file_test(path, G_FILE_TEST_IS_DIR) / G_FILE_TEST_EXISTS (both follow symlinks). */
async function statOf(agent: Agent, path: string): Promise<{ isDirectory: boolean } | undefined> {
  try {
    return await agent.platform.os.stat(path);
  } catch (e) {
    if (e instanceof OsFileError) return undefined;
    throw e;
  }
}

/** GLib's g_strstrip: ASCII space, `\t`, `\n`, `\f`, `\r` (not `\v`) at both ends. */
function strip(line: ByteLine): ByteLine {
  return line.replace(/^[ \t\n\f\r]+/, "").replace(/[ \t\n\f\r]+$/, "");
}

/** The user's keys: stripped, without blank and `#` lines, last line first. */
export const guestSshGetAuthorizedKeys = defineCommand({
  name: "guest-ssh-get-authorized-keys",
  summary: "List the public keys in a user's ~/.ssh/authorized_keys",
  args: [{ name: "username", type: t.str }],
  returns: t.struct("GuestAuthorizedKeys", [{ name: "keys", type: t.list(t.str) }]),
  run: async ({ username }, agent) => {
    agent.policy.checkUser(username);
    const user = await passwdEntry(agent, username);
    const path = buildFilename(user.dir, ".ssh", "authorized_keys");
    const read = await readAuthKeys(agent, path);
    if ("error" in read) throw genericError(read.error);
    const keys: string[] = [];
    for (const line of read.lines) {
      const key = strip(line);
      if (key === "" || key.startsWith("#")) continue;
      keys.unshift(decodeModUtf8Lossy(fromByteString(key)));
    }
    return { keys };
  },
});

/** Appends the keys not already present (or replaces the file with `reset`). */
export const guestSshAddAuthorizedKeys = defineCommand({
  name: "guest-ssh-add-authorized-keys",
  summary: "Add public keys to a user's ~/.ssh/authorized_keys (or replace them with reset)",
  args: [
    { name: "username", type: t.str },
    { name: "keys", type: t.list(t.str) },
    { name: "reset", type: t.bool, optional: true },
  ],
  run: ({ username, keys, reset }, agent) =>
    audited(agent, "guest-ssh-add-authorized-keys", { user: username, keys, reset }, async () => {
      agent.policy.checkUser(username);
      checkKeys(keys);
      const user = await passwdEntry(agent, username);
      const sshDir = buildFilename(user.dir, ".ssh");
      const path = buildFilename(sshDir, "authorized_keys");
      let lines: ByteLine[] | undefined;
      if (reset !== true) {
        const read = await readAuthKeys(agent, path);
        if ("lines" in read) lines = read.lines;
      }
      if (lines === undefined) {
        if (!(await statOf(agent, sshDir))?.isDirectory) {
          await mkdirForUser(agent, sshDir, user, 0o700);
        }
        lines = [];
      }
      for (const key of keys) {
        const k = keyBytes(key);
        if (!lines.includes(k)) lines.push(k);
      }
      await writeAuthKeys(agent, path, lines, user);
      return undefined;
    }),
});

/** Drops every line equal to one of the keys; a missing file is left missing. */
export const guestSshRemoveAuthorizedKeys = defineCommand({
  name: "guest-ssh-remove-authorized-keys",
  summary: "Remove public keys from a user's ~/.ssh/authorized_keys",
  args: [
    { name: "username", type: t.str },
    { name: "keys", type: t.list(t.str) },
  ],
  run: ({ username, keys }, agent) =>
    audited(agent, "guest-ssh-remove-authorized-keys", { user: username, keys }, async () => {
      agent.policy.checkUser(username);
      checkKeys(keys);
      const user = await passwdEntry(agent, username);
      const path = buildFilename(user.dir, ".ssh", "authorized_keys");
      if (!(await statOf(agent, path))) return undefined;
      const read = await readAuthKeys(agent, path);
      if ("error" in read) throw genericError(read.error);
      const drop = new Set(keys.map(keyBytes));
      await writeAuthKeys(agent, path, read.lines.filter((l) => !drop.has(l)), user);
      return undefined;
    }),
});

/** The family, for the command table. */
export const sshCommands = [
  guestSshGetAuthorizedKeys,
  guestSshAddAuthorizedKeys,
  guestSshRemoveAuthorizedKeys,
];
