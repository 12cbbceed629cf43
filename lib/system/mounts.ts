/**
 * The mount list used by guest-fsfreeze-* (and by fsinfo/fstrim): a faithful port of newest
 * qemu-ga's `build_fs_mount_list` / `build_fs_mount_list_from_mtab` (qga/commands-linux.c,
 * qemu-ga-behaviour.md §3.4).
 *
 * - Source: `/proc/self/mountinfo`, parsed the way qemu-ga's two `sscanf` calls do (fields 3, 5
 *   and the two fields after the ` - ` separator), mount point and source octal-unescaped like its
 *   `decode_mntname` (`\\` and `\ooo` with a first digit 0–3; anything else is kept literally).
 * - major 0 (proc, sysfs, tmpfs, overlay, NFS, …) is skipped, except btrfs, whose source device
 *   is stat'ed for the real major:minor (a directory or non-block source means skip).
 * - A major:minor already in the list is skipped (bind mounts; qemu-ga 10.0+, 7.2 kept them).
 * - When mountinfo cannot be opened: `/proc/self/mounts` read the way glibc's getmntent does,
 *   keeping entries whose source starts with `/`, dropping smbfs/cifs and directory sources; if
 *   that cannot be opened either the error is `failed to open mtab file: '/proc/self/mounts'`.
 *
 * Works on bytes, so escapes decode to the exact bytes; the strings returned are those bytes read
 * as UTF-8. Files are read and stat'ed through the platform's `os` facet (off the event loop: a
 * btrfs source device on a dead transport must not stall the agent; tests pass fixture roots).
 *
 * @module
 */

import { genericError } from "../errors.ts";
import { decodeModUtf8Lossy } from "../protocol/utf8.ts";

/** What stat() tells the mount list about a source device. */
interface DeviceInfo {
  readonly isDirectory: boolean;
  readonly isBlockDevice: boolean;
  readonly rdev: number;
}

/**
 * What the mount list reads: the mount table, and stat() of btrfs / mtab sources (the platform's
 * `os` facet fits).
 */
export interface MountFiles {
  readFile(path: string): Promise<Uint8Array>;
  stat(path: string): Promise<DeviceInfo>;
}

/** One filesystem of the freeze mount list. */
export interface MountEntry {
  /** Mount point, unescaped, as a string (invalid UTF-8 shown as QEMU's writer would). */
  dirname: string;
  /** Mount point, unescaped, exact bytes: what system calls get. */
  path: Uint8Array;
  /** Filesystem type as the kernel names it (`ext4`, `xfs`, `btrfs`, …). */
  devtype: string;
  /** Device major number (for btrfs: of the stat'ed source device). */
  devmajor: number;
  /** Device minor number. */
  devminor: number;
}

const DEFAULT_MOUNTINFO = "/proc/self/mountinfo";
const DEFAULT_MOUNTS = "/proc/self/mounts";

const BACKSLASH = 0x5c;
const decoder = new TextDecoder(); // non-fatal: invalid UTF-8 becomes U+FFFD

/**
 * The fsfreeze mount list exactly as newest qemu-ga builds it from /proc/self/mountinfo (octal
 * unescaping of \040 etc., major 0 skipped except btrfs whose device is stat'ed, dedup by
 * major:minor), with the /proc/self/mounts fallback and its error text
 * `failed to open mtab file: '/proc/self/mounts'`.
 *
 * @param mountinfoPath injectable for tests (default `/proc/self/mountinfo`)
 * @param mountsPath the fallback, injectable for tests (default `/proc/self/mounts`); it also
 *   appears in the error text, as qemu-ga prints the path it tried
 * @throws QgaError (GenericError) when neither file can be opened
 */
export async function buildMountList(
  os: MountFiles,
  mountinfoPath: string = DEFAULT_MOUNTINFO,
  mountsPath: string = DEFAULT_MOUNTS,
): Promise<MountEntry[]> {
  const mountinfo = await os.readFile(mountinfoPath).catch(() => undefined);
  if (mountinfo === undefined) return await buildFromMtab(os, mountsPath);

  const mounts: MountEntry[] = [];
  for (const line of lines(mountinfo)) {
    const fields = parseMountinfoLine(line);
    if (fields === undefined) continue;
    let { devmajor, devminor } = fields;
    const devtype = decoder.decode(fields.type);
    if (devmajor === 0) {
      // btrfs reports major 0 (anonymous device); ask the source device node instead.
      if (devtype !== "btrfs") continue;
      const dev = await devMajorMinor(os, cString(decodeMntname(fields.source)));
      if (typeof dev === "number") continue; // stat failed (-1) or a directory (-2)
      ({ devmajor, devminor } = dev);
    }
    if (devExists(mounts, devmajor, devminor)) continue; // bind mount of a listed device
    const path = cBytes(decodeMntname(fields.dir));
    mounts.push({ dirname: decodeModUtf8Lossy(path), path, devtype, devmajor, devminor });
  }
  return mounts;
}

/** getline(): lines *including* their trailing newline (the scanf `%c` checks rely on it). */
function* lines(data: Uint8Array): Generator<Uint8Array> {
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    const end = nl === -1 ? data.length : nl + 1;
    yield data.subarray(start, end);
    start = end;
  }
}

/** C isspace() in the "C" locale: the set scanf's whitespace directives and %s use. */
function isSpace(b: number | undefined): boolean {
  return b === 0x20 || (b !== undefined && b >= 0x09 && b <= 0x0d);
}

/** A tiny cursor emulating the scanf directives qemu-ga uses. */
class Scanner {
  pos = 0;
  constructor(readonly s: Uint8Array) {}

  /** A whitespace directive: skip any amount (including none). */
  ws(): void {
    while (isSpace(this.s[this.pos])) this.pos++;
  }

  /** `%u`: optional leading whitespace, then decimal digits; undefined on a matching failure. */
  uint(): number | undefined {
    this.ws();
    const start = this.pos;
    let v = 0;
    while (this.pos < this.s.length && this.s[this.pos] >= 0x30 && this.s[this.pos] <= 0x39) {
      v = (v * 10 + (this.s[this.pos] - 0x30)) % 2 ** 32; // stored into an unsigned int
      this.pos++;
    }
    return this.pos === start ? undefined : v;
  }

  /** `%s` (or `%*s`): skip whitespace, take ≥ 1 non-space bytes; [start, end) or undefined. */
  word(): [number, number] | undefined {
    this.ws();
    const start = this.pos;
    while (this.pos < this.s.length && !isSpace(this.s[this.pos])) this.pos++;
    return this.pos === start ? undefined : [start, this.pos];
  }

  /** A literal byte in the format. */
  lit(b: number): boolean {
    if (this.s[this.pos] !== b) return false;
    this.pos++;
    return true;
  }

  /** `%c`: any one byte must be left. */
  anyChar(): boolean {
    if (this.pos >= this.s.length) return false;
    this.pos++;
    return true;
  }
}

interface MountinfoFields {
  devmajor: number;
  devminor: number;
  dir: Uint8Array;
  type: Uint8Array;
  source: Uint8Array;
}

/**
 * One mountinfo line as qemu-ga reads it:
 * `sscanf(line, "%*u %*u %u:%u %*s %n%*s%n%c", …) >= 3`, then `strstr(line + dir_e, " - ")` and
 * `sscanf(dash, " - %n%*s%n %n%*s%n%c", …) >= 1`. Lines failing either are skipped.
 */
export function parseMountinfoLine(line: Uint8Array): MountinfoFields | undefined {
  const sc = new Scanner(line);
  if (sc.uint() === undefined) return undefined; // mount id
  sc.ws();
  if (sc.uint() === undefined) return undefined; // parent id
  sc.ws();
  const devmajor = sc.uint();
  if (devmajor === undefined || !sc.lit(0x3a /* : */)) return undefined;
  const devminor = sc.uint();
  if (devminor === undefined) return undefined;
  sc.ws();
  if (sc.word() === undefined) return undefined; // root within the fs
  sc.ws();
  const dir = sc.word();
  if (dir === undefined || !sc.anyChar()) return undefined;

  const dash = indexOfSeq(line, [0x20, 0x2d, 0x20], /* " - " */ dir[1]);
  if (dash === -1) return undefined;
  const ds = new Scanner(line);
  ds.pos = dash;
  ds.ws();
  if (!ds.lit(0x2d /* - */)) return undefined;
  ds.ws();
  const type = ds.word();
  if (type === undefined) return undefined;
  ds.ws();
  const source = ds.word();
  if (source === undefined || !ds.anyChar()) return undefined;

  return {
    devmajor,
    devminor,
    dir: line.subarray(dir[0], dir[1]),
    type: line.subarray(type[0], type[1]),
    source: line.subarray(source[0], source[1]),
  };
}

function indexOfSeq(hay: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const isOctal = (b: number | undefined, max: number) =>
  b !== undefined && b >= 0x30 && b <= 0x30 + max;

/**
 * qemu-ga's `decode_mntname`: `\\` → `\`, `\ooo` (first digit 0–3) → that byte, any other
 * backslash kept as is.
 */
export function decodeMntname(name: Uint8Array): Uint8Array {
  const out = new Uint8Array(name.length);
  let j = 0;
  for (let i = 0; i < name.length; i++) {
    if (name[i] !== BACKSLASH) {
      out[j++] = name[i];
    } else if (name[i + 1] === BACKSLASH) {
      out[j++] = BACKSLASH;
      i++;
    } else if (isOctal(name[i + 1], 3) && isOctal(name[i + 2], 7) && isOctal(name[i + 3], 7)) {
      out[j++] = (name[i + 1] - 0x30) * 64 + (name[i + 2] - 0x30) * 8 + (name[i + 3] - 0x30);
      i += 3;
    } else {
      out[j++] = name[i];
    }
  }
  return out.subarray(0, j);
}

/** glibc getmntent's `decode_name`: only \040, \011, \012, \134 and `\\` are escapes. */
export function decodeMntentName(name: Uint8Array): Uint8Array {
  const out = new Uint8Array(name.length);
  let j = 0;
  for (let i = 0; i < name.length; i++) {
    if (name[i] === BACKSLASH) {
      const code = String.fromCharCode(name[i + 1] ?? 0, name[i + 2] ?? 0, name[i + 3] ?? 0);
      const byte = MNTENT_ESCAPES.get(code);
      if (byte !== undefined) {
        out[j++] = byte;
        i += 3;
        continue;
      }
      if (name[i + 1] === BACKSLASH) {
        out[j++] = BACKSLASH;
        i++;
        continue;
      }
    }
    out[j++] = name[i];
  }
  return out.subarray(0, j);
}

const MNTENT_ESCAPES = new Map([["040", 0x20], ["011", 0x09], ["012", 0x0a], ["134", 0x5c]]);

/** The bytes as a C string would see them (cut at a decoded NUL). */
function cBytes(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return nul === -1 ? bytes.slice() : bytes.slice(0, nul);
}

/** The bytes as a C string would see them, read as UTF-8. */
function cString(bytes: Uint8Array): string {
  return decoder.decode(cBytes(bytes));
}

function devExists(mounts: MountEntry[], devmajor: number, devminor: number): boolean {
  return mounts.some((m) => m.devmajor === devmajor && m.devminor === devminor);
}

/**
 * qemu-ga's `dev_major_minor`: stat() (following symlinks) the device path. Returns the block
 * device's numbers, -2 for a directory (bind mount source), -1 otherwise (stat failure or
 * neither block device nor directory).
 */
async function devMajorMinor(
  os: MountFiles,
  devpath: string,
): Promise<{ devmajor: number; devminor: number } | -1 | -2> {
  let st: DeviceInfo;
  try {
    st = await os.stat(devpath);
  } catch {
    return -1;
  }
  if (st.isDirectory) return -2;
  if (st.isBlockDevice) return splitDev(st.rdev);
  return -1;
}

/** glibc's gnu_dev_major/gnu_dev_minor on a 64-bit dev_t. */
export function splitDev(rdev: number | bigint): { devmajor: number; devminor: number } {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return {
    devmajor: Number(BigInt.asUintN(32, major)),
    devminor: Number(BigInt.asUintN(32, minor)),
  };
}

/** The `/proc/self/mounts` fallback (`build_fs_mount_list_from_mtab`). */
async function buildFromMtab(os: MountFiles, mountsPath: string): Promise<MountEntry[]> {
  const data = await os.readFile(mountsPath).catch(() => undefined);
  if (data === undefined) throw genericError(`failed to open mtab file: '${mountsPath}'`);
  const mounts: MountEntry[] = [];
  for (const line of lines(data)) {
    const ent = parseMntentLine(line);
    if (ent === undefined) continue;
    const fsname = decoder.decode(ent.fsname);
    const type = decoder.decode(ent.type);
    // A source not starting with '/' is a pseudo or network fs; smbfs/cifs are network too.
    if (fsname[0] !== "/" || type === "smbfs" || type === "cifs") continue;
    const dev = await devMajorMinor(os, cString(ent.fsname));
    if (dev === -2) continue; // bind mount of a directory
    // Like qemu-ga, a source that is not a block device gets 0:0 and is still listed (once).
    const { devmajor, devminor } = typeof dev === "number" ? { devmajor: 0, devminor: 0 } : dev;
    if (devExists(mounts, devmajor, devminor)) continue;
    const path = cBytes(ent.dir);
    mounts.push({ dirname: decodeModUtf8Lossy(path), path, devtype: type, devmajor, devminor });
  }
  return mounts;
}

/**
 * glibc `getmntent_r` on one line: trailing blanks before the newline are dropped, blank and `#`
 * lines skipped, fields split on spaces/tabs (runs of them), names decoded with
 * {@link decodeMntentName}. Missing fields are empty.
 */
export function parseMntentLine(
  line: Uint8Array,
): { fsname: Uint8Array; dir: Uint8Array; type: Uint8Array } | undefined {
  let end = line.indexOf(0x0a);
  if (end === -1) end = line.length;
  while (end > 0 && (line[end - 1] === 0x20 || line[end - 1] === 0x09)) end--;
  const body = line.subarray(0, end);
  const isBlank = (b: number | undefined) => b === 0x20 || b === 0x09;
  let pos = 0;
  while (isBlank(body[pos])) pos++;
  if (pos >= body.length || body[pos] === 0x23 /* # */) return undefined;
  const fields: Uint8Array[] = [];
  for (let k = 0; k < 3; k++) {
    if (pos > body.length) {
      fields.push(new Uint8Array(0));
      continue;
    }
    const start = pos;
    while (pos < body.length && !isBlank(body[pos])) pos++;
    fields.push(decodeMntentName(body.subarray(start, pos)));
    pos++; // past the separator (strsep)
    while (isBlank(body[pos])) pos++;
  }
  return { fsname: fields[0], dir: fields[1], type: fields[2] };
}
