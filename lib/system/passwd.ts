/**
 * `/etc/passwd` read the way glibc's `files` NSS module answers getpwnam(), which is what
 * qemu-ga's user lookup (GLib's g_unix_get_passwd_entry) ends in on a guest whose nsswitch.conf
 * says `passwd: files …`:
 *
 * - one entry per line; leading C-locale white space is skipped; empty lines and lines starting
 *   with `#` are ignored; a line ends at its first NUL as C strings do;
 * - fields `name:passwd:uid:gid:gecos:dir:shell`, a missing trailing field is empty and the
 *   shell is the rest of the line (colons included);
 * - uid and gid are read like strtoul (leading white space, an optional sign, decimal digits,
 *   wrapping to 32 bits); a line whose uid or gid has no digits, or has anything but `:` after
 *   them, is not an entry;
 * - the first entry with the exact name wins, and a name starting with `+` or `-` (NIS compat
 *   markers) never matches.
 *
 * Pure: the caller reads the file.
 *
 * @module
 */

/** One user, as getpwnam() returns it. */
export interface PasswdEntry {
  readonly name: string;
  readonly passwd: string;
  readonly uid: number;
  readonly gid: number;
  readonly gecos: string;
  readonly dir: string;
  readonly shell: string;
}

const decoder = new TextDecoder(); // non-fatal: invalid UTF-8 becomes U+FFFD

/** isspace() in the C locale. */
function isCSpace(c: string): boolean {
  return c === " " || (c >= "\t" && c <= "\r");
}

/**
 * strtoul(s, &end, 10) cast to a 32-bit id: the value and where the number ended, or
 * `undefined` when no digit was read.
 */
function parseId(s: string, from: number): { value: number; end: number } | undefined {
  let k = from;
  while (k < s.length && isCSpace(s[k])) k++;
  let negative = false;
  if (s[k] === "+" || s[k] === "-") {
    negative = s[k] === "-";
    k++;
  }
  const start = k;
  while (k < s.length && s[k] >= "0" && s[k] <= "9") k++;
  if (k === start) return undefined;
  let v = BigInt(s.slice(start, k));
  // strtoul saturates at ULONG_MAX (64-bit) and negates in unsigned arithmetic.
  if (v > 0xffff_ffff_ffff_ffffn) v = 0xffff_ffff_ffff_ffffn;
  else if (negative) v = BigInt.asUintN(64, -v);
  return { value: Number(BigInt.asUintN(32, v)), end: k };
}

/** Parses one line (without its newline); `undefined` for comments, blanks and bad lines. */
export function parsePasswdLine(raw: string): PasswdEntry | undefined {
  const nul = raw.indexOf("\0");
  let line = nul < 0 ? raw : raw.slice(0, nul);
  let k = 0;
  while (k < line.length && isCSpace(line[k])) k++;
  line = line.slice(k);
  if (line === "" || line[0] === "#") return undefined;

  let pos = 0;
  const field = (): string => {
    const colon = line.indexOf(":", pos);
    const end = colon < 0 ? line.length : colon;
    const value = line.slice(pos, end);
    pos = colon < 0 ? line.length : colon + 1;
    return value;
  };
  const id = (): number | undefined => {
    const r = parseId(line, pos);
    if (r === undefined) return undefined;
    if (r.end < line.length && line[r.end] !== ":") return undefined;
    pos = r.end < line.length ? r.end + 1 : r.end;
    return r.value;
  };

  const name = field();
  const passwd = field();
  const uid = id();
  if (uid === undefined) return undefined;
  const gid = id();
  if (gid === undefined) return undefined;
  const gecos = field();
  const dir = field();
  const shell = line.slice(pos);
  return { name, passwd, uid, gid, gecos, dir, shell };
}

/** Every entry of a passwd file, in file order. */
export function parsePasswd(content: Uint8Array | string): PasswdEntry[] {
  const text = typeof content === "string" ? content : decoder.decode(content);
  const entries: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const e = parsePasswdLine(line);
    if (e) entries.push(e);
  }
  return entries;
}

/**
 * getpwnam(name) over a passwd file's content: the first entry with that exact name, or
 * `undefined`.
 *
 * @example
 * ```ts
 * lookupUser("root:x:0:0:root:/root:/bin/sh\n", "root")?.dir; // "/root"
 * ```
 */
export function lookupUser(content: Uint8Array | string, name: string): PasswdEntry | undefined {
  if (name.startsWith("+") || name.startsWith("-")) return undefined;
  return parsePasswd(content).find((e) => e.name === name);
}
