/**
 * qemu-ga's configuration file (§5.2): a GLib key file read with GLib's rules, and the `-D`
 * dump written the way `g_key_file_to_data` writes it.
 *
 * Reading follows GLib 2.74 (Debian 12), the library qemu-ga links against:
 * - lines end at `\n`, one trailing `\r` is dropped; leading whitespace is ignored;
 * - `#` lines and blank lines are comments; `[name]` (spaces/tabs may follow `]`) starts a group,
 *   repeated groups merge; `key = value` trims whitespace around `=` but keeps trailing
 *   whitespace of the value; the last occurrence of a key wins;
 * - string values unescape `\s \n \t \r \\`; any other escape, a trailing `\`, or a value that
 *   is not UTF-8 is an error; booleans are `true`/`1`/`false`/`0` (trailing whitespace allowed);
 * - error texts are GLib's (`Key file does not start with a group`, …).
 *
 * The file is handled as bytes (one JS char per byte) so invalid UTF-8 can be detected where
 * GLib detects it.
 *
 * @module
 */

import { osErrorText } from "./errors.ts";

/** A key-file error with GLib's message text (UTF-8, with GLib's curly quotes). */
export class KeyFileError extends Error {
  /** True for a missing file (`G_FILE_ERROR_NOENT`), the only error a default path tolerates. */
  readonly noent: boolean;

  constructor(message: string, noent = false) {
    super(message);
    this.name = "KeyFileError";
    this.noent = noent;
  }
}

/** One parsed key file: group name → key → raw (still escaped) value, as byte strings. */
export class KeyFile {
  readonly #groups = new Map<string, Map<string, string>>();

  /** Group names in file order (byte strings). */
  groups(): string[] {
    return [...this.#groups.keys()];
  }

  /** `g_key_file_has_key`. */
  hasKey(group: string, key: string): boolean {
    return this.#groups.get(group)?.has(key) ?? false;
  }

  /** The raw value of `key`, or undefined. */
  rawValue(group: string, key: string): string | undefined {
    return this.#groups.get(group)?.get(key);
  }

  /** `g_key_file_get_string`: the unescaped UTF-8 value. */
  getString(group: string, key: string): string {
    const raw = this.#require(group, key);
    const bytes = binaryToBytes(raw);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new KeyFileError(
        `Key file contains key “${lossy(key)}” with value “${lossy(raw)}” which is not UTF-8`,
      );
    }
    const out = unescapeValue(text);
    if (out === undefined) {
      throw new KeyFileError(
        `Key file contains key “${lossy(key)}” which has a value that cannot be interpreted.`,
      );
    }
    return out;
  }

  /** `g_key_file_get_boolean`. */
  getBoolean(group: string, key: string): boolean {
    const raw = this.#require(group, key).replace(/[ \t\n\v\f\r]+$/, "");
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new KeyFileError(
      `Key file contains key “${lossy(key)}” which has a value that cannot be interpreted.`,
    );
  }

  /**
   * `g_key_file_get_integer`: strtol(value, 10) — leading C whitespace (vertical tab too), a
   * sign, digits; after them the end or any whitespace (the rest is then ignored) — that fits a
   * 32-bit int. Throws GLib's error for the key; GLib's return value then is 0, which is what
   * callers that ignore the error (qemu-ga's state file) get.
   */
  getInteger(group: string, key: string): number {
    const value = parseGInt(this.#require(group, key));
    if (value === undefined) {
      throw new KeyFileError(
        `Key file contains key “${lossy(key)}” in group “${
          lossy(group)
        }” which has a value that cannot be interpreted.`,
      );
    }
    return value;
  }

  #require(group: string, key: string): string {
    const g = this.#groups.get(group);
    if (!g) throw new KeyFileError(`Key file does not have group “${lossy(group)}”`);
    const v = g.get(key);
    if (v === undefined) {
      throw new KeyFileError(
        `Key file does not have key “${lossy(key)}” in group “${lossy(group)}”`,
      );
    }
    return v;
  }

  /** Parses key-file bytes (`g_key_file_load_from_data` with no flags). */
  static parse(data: Uint8Array): KeyFile {
    const kf = new KeyFile();
    const text = bytesToBinary(data);
    let current: Map<string, string> | undefined;
    let startGroup: string | undefined;
    let currentName: string | undefined;
    const lines = text.split("\n");
    // A final line without "\n" is parsed too; an empty one is a comment.
    // g_ascii_isspace: no vertical tab. One "\r" before a "\n" is dropped, not at the end.
    for (let [n, line] of lines.entries()) {
      if (n < lines.length - 1 && line.endsWith("\r")) line = line.slice(0, -1);
      const start = line.replace(/^[ \t\n\f\r]+/, "");
      if (start === "" || start.startsWith("#")) continue;
      if (isGroupLine(start)) {
        const name = start.slice(1, start.lastIndexOf("]"));
        if (
          name === "" || [...name].some((c) => c === "[" || c === "]" || c < " " || c === "\x7f")
        ) {
          throw new KeyFileError(`Invalid group name: ${lossy(name)}`);
        }
        let g = kf.#groups.get(name);
        if (!g) {
          g = new Map();
          kf.#groups.set(name, g);
        }
        startGroup ??= name;
        current = g;
        currentName = name;
        continue;
      }
      const eq = start.indexOf("=");
      if (eq <= 0) {
        throw new KeyFileError(
          `Key file contains line “${
            lossy(line)
          }” which is not a key-value pair, group, or comment`,
        );
      }
      if (!current) throw new KeyFileError("Key file does not start with a group");
      const key = start.slice(0, eq).replace(/[ \t\n\f\r]+$/, "");
      if (!isKeyName(key)) {
        throw new KeyFileError(`Invalid key name: ${lossy(key)}`);
      }
      const value = start.slice(eq + 1).replace(/^[ \t\n\f\r]+/, "");
      if (currentName === startGroup && key === "Encoding" && value.toUpperCase() !== "UTF-8") {
        throw new KeyFileError(`Key file contains unsupported encoding “${lossy(value)}”`);
      }
      current.set(key, value);
    }
    return kf;
  }
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * GLib's `g_key_file_parse_value_as_integer` on a raw value: undefined where GLib reports
 * "cannot be interpreted as a number" or "out of range".
 */
export function parseGInt(raw: string): number | undefined {
  // strtol skips C isspace (includes \v), takes one sign, then decimal digits.
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)(.?)/s.exec(raw);
  if (!m) return undefined;
  // GLib accepts the number when the first character after it is ASCII whitespace (no \v).
  if (m[3] !== "" && !" \t\n\f\r".includes(m[3])) return undefined;
  const n = BigInt(m[2]) * (m[1] === "-" ? -1n : 1n);
  if (n < BigInt(INT32_MIN) || n > BigInt(INT32_MAX)) return undefined;
  return Number(n);
}

/**
 * GLib's key-name rule: no `=`, `[` or `]` before an optional `[locale]` suffix, no space next
 * to that suffix or at either end, a locale of letters, digits, `-`, `_`, `.` and `@` only.
 */
function isKeyName(key: string): boolean {
  const open = key.search(/[[\]]/);
  const base = open < 0 ? key : key.slice(0, open);
  if (base === "" || base.startsWith(" ") || base.endsWith(" ")) return false;
  if (open < 0) return true;
  return /^\[[\p{L}\p{N}\-_.@]*\]$/u.test(lossy(key.slice(open)));
}

function isGroupLine(line: string): boolean {
  if (!line.startsWith("[")) return false;
  const close = line.indexOf("]", 1);
  if (close < 0) return false;
  return /^[ \t]*$/.test(line.slice(close + 1));
}

/** GLib's value unescaping; undefined on an invalid escape or a trailing backslash. */
function unescapeValue(v: string): string | undefined {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = v[++i];
    switch (e) {
      case "s":
        out += " ";
        break;
      case "n":
        out += "\n";
        break;
      case "t":
        out += "\t";
        break;
      case "r":
        out += "\r";
        break;
      case "\\":
        out += "\\";
        break;
      default:
        return undefined;
    }
  }
  return out;
}

/**
 * `g_key_file_set_string`'s escaping (`g_key_file_parse_string_as_value` without separator
 * escaping): leading spaces/tabs become `\s`/`\t` (a newline or CR does not end the leading
 * run), newline, CR and backslash are always escaped.
 */
export function escapeValue(s: string): string {
  let out = "";
  let leading = true;
  for (const c of s) {
    switch (c) {
      case " ":
        out += leading ? "\\s" : c;
        break;
      case "\t":
        out += leading ? "\\t" : c;
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\\":
        out += "\\\\";
        leading = false;
        break;
      default:
        out += c;
        leading = false;
    }
  }
  return out;
}

/** `g_key_file_to_data` for one group of string entries, in insertion order. */
export function keyFileToData(group: string, entries: readonly (readonly [string, string])[]) {
  let out = `[${group}]\n`;
  for (const [k, v] of entries) out += `${k}=${v}\n`;
  return out;
}

function bytesToBinary(b: Uint8Array): string {
  let s = "";
  const CHUNK = 8192;
  for (let i = 0; i < b.length; i += CHUNK) {
    s += String.fromCharCode(...b.subarray(i, i + CHUNK));
  }
  return s;
}

function binaryToBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** A byte string as text, invalid UTF-8 replaced (`g_utf8_make_valid`). */
function lossy(s: string): string {
  return new TextDecoder().decode(binaryToBytes(s));
}

/** Reads a file's bytes for {@link loadKeyFile}; the default is the real file system. */
export type FileReader = (path: string) => Uint8Array;

/** A file error as GLib reports it: its strerror text, and whether it was ENOENT. */
function keyFileError(e: unknown): KeyFileError {
  return new KeyFileError(osErrorText(e), e instanceof Deno.errors.NotFound);
}

/** The real reader: like `g_key_file_load_from_file` (open, then "Not a regular file" check). */
export function readConfigBytes(path: string): Uint8Array {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    throw keyFileError(e);
  }
  if (!st.isFile) throw new KeyFileError("Not a regular file");
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    throw keyFileError(e);
  }
}

/** Loads and parses a key file; every failure is a {@link KeyFileError}. */
export function loadKeyFile(path: string, read: FileReader = readConfigBytes): KeyFile {
  return KeyFile.parse(read(path));
}
