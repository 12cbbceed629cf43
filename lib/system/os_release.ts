/**
 * os-release (§3.7) the way qemu-ga reads it: the file's bytes up to the first NUL (it handles
 * them as a C string), which must be valid UTF-8, parsed as a GLib key file after a
 * `[os-release]` group line is put in front. A file that is not UTF-8 or not key-file syntax
 * yields nothing at all. Values are then unquoted with qemu-ga's own rules
 * ({@link unquoteOsReleaseValue}), which are not the shell rules os-release(5) describes.
 *
 * @module
 */

import { KeyFile } from "../config_file.ts";

/** The os-release fields guest-get-osinfo reports; a key missing from the file is absent. */
export interface OsRelease {
  readonly id?: string;
  readonly name?: string;
  readonly prettyName?: string;
  readonly version?: string;
  readonly versionId?: string;
  readonly variant?: string;
  readonly variantId?: string;
}

const FIELDS: readonly (readonly [keyof OsRelease, string])[] = [
  ["id", "ID"],
  ["name", "NAME"],
  ["prettyName", "PRETTY_NAME"],
  ["version", "VERSION"],
  ["versionId", "VERSION_ID"],
  ["variant", "VARIANT"],
  ["variantId", "VARIANT_ID"],
];

const GROUP = "os-release";
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses os-release bytes; undefined when qemu-ga would reject the whole file.
 *
 * @example
 * ```ts
 * parseOsRelease(new TextEncoder().encode('ID=debian\nNAME="Debian GNU/Linux"\n'));
 * // { id: "debian", name: "Debian GNU/Linux" }
 * ```
 */
export function parseOsRelease(data: Uint8Array): OsRelease | undefined {
  const nul = data.indexOf(0);
  const content = nul < 0 ? data : data.subarray(0, nul);
  try {
    utf8.decode(content);
  } catch {
    return undefined;
  }
  const header = new TextEncoder().encode(`[${GROUP}]\n`);
  const whole = new Uint8Array(header.length + content.length);
  whole.set(header);
  whole.set(content, header.length);
  let kf: KeyFile;
  try {
    kf = KeyFile.parse(whole);
  } catch {
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [field, key] of FIELDS) {
    const raw = kf.rawValue(GROUP, key);
    if (raw === undefined) continue;
    // rawValue is a byte string (one char per byte); the file was checked to be UTF-8.
    out[field] = unquoteOsReleaseValue(
      utf8.decode(Uint8Array.from(raw, (c) => c.charCodeAt(0))),
    );
  }
  return out;
}

const ESCAPABLE = new Set(["$", "'", '"', "\\", "`"]);

/**
 * qemu-ga's unquoting: a value starting with `"` runs to the next unescaped `"` (or the end),
 * a backslash before one of `$ ' " \ `` ` yields that character and any other backslash stays
 * (without a closing quote the value keeps a stray tail, see below);
 * every other value (single-quoted ones too) is cut at its first space, then at its first `;`.
 *
 * @example
 * ```ts
 * unquoteOsReleaseValue(`'single quoted'`); // "'single"
 * unquoteOsReleaseValue(`"a \\"b\\" \\n"`); // 'a "b" \\n'
 * ```
 */
export function unquoteOsReleaseValue(value: string): string {
  if (!value.startsWith('"')) {
    const space = value.indexOf(" ");
    const cut = space < 0 ? value : value.slice(0, space);
    const semi = cut.indexOf(";");
    return semi < 0 ? cut : cut.slice(0, semi);
  }
  let out = "";
  for (let i = 1; i < value.length; i++) {
    const c = value[i];
    if (c === "\\" && i + 1 < value.length && ESCAPABLE.has(value[i + 1])) {
      out += value[++i];
    } else if (c === '"') {
      return out;
    } else {
      out += c;
    }
  }
  // No closing quote: qemu-ga unquotes in place and writes no terminator, so the tail of the
  // original value stays behind what it copied (`"abc` gives `abcc`).
  return out + value.slice(out.length);
}
