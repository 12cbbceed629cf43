/**
 * The utmp file (`/var/run/utmp`, glibc's `_PATH_UTMP`, which getutxent reads): fixed-size
 * binary records in the host's byte order, as glibc's `struct utmp` lays them out. The layout
 * differs between the two architectures denoga runs on (glibc bits/utmp.h):
 * - x86-64 (`__WORDSIZE_TIME64_COMPAT32` = 1): 384 bytes, `ut_session` and both `ut_tv`
 *   members are 32-bit, `ut_tv` at offset 340;
 * - aarch64 (`__WORDSIZE_TIME64_COMPAT32` = 0): 400 bytes, `long ut_session` at 336 and a
 *   64-bit `struct timeval ut_tv` at 344.
 * Both are little-endian. Like getutxent, a short record at the end of the file is not read.
 *
 * @module
 */

/** `ut_type` of a user's login session. */
export const USER_PROCESS = 7;
/** `ut_type` of a session that has ended. */
export const DEAD_PROCESS = 8;
/** `ut_type` of a getty waiting for a login. */
export const LOGIN_PROCESS = 6;

/** Where one architecture keeps the fields guest-get-users reads. */
export interface UtmpLayout {
  readonly size: number;
  /** Offset of `ut_tv`. */
  readonly tv: number;
  /** Width of `tv_sec` and `tv_usec`: 4 or 8 bytes. */
  readonly tvWidth: 4 | 8;
}

/** x86-64. */
export const UTMP_X86_64: UtmpLayout = { size: 384, tv: 340, tvWidth: 4 };
/** aarch64. */
export const UTMP_AARCH64: UtmpLayout = { size: 400, tv: 344, tvWidth: 8 };

const TYPE = 0;
const PID = 4;
const USER = 44;
const USER_SIZE = 32;

/** The layout of `arch` (as `Deno.build.arch` names it). */
export function utmpLayout(arch: string): UtmpLayout {
  return arch === "aarch64" ? UTMP_AARCH64 : UTMP_X86_64;
}

/** One record, reduced to what guest-get-users uses. */
export interface UtmpRecord {
  readonly type: number;
  readonly pid: number;
  /**
   * `ut_user` as a C string: up to its first NUL. The field has no room for a terminator, so a
   * full 32-byte name runs on into `ut_host` as C's string functions read it.
   */
  readonly user: Uint8Array;
  readonly tvSec: number;
  readonly tvUsec: number;
}

/**
 * Every whole record of a utmp file, in file order.
 *
 * @example
 * ```ts
 * const records = parseUtmp(await Deno.readFile("/var/run/utmp"), utmpLayout(Deno.build.arch));
 * ```
 */
export function parseUtmp(data: Uint8Array, layout: UtmpLayout): UtmpRecord[] {
  const out: UtmpRecord[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let off = 0; off + layout.size <= data.length; off += layout.size) {
    const rec = data.subarray(off, off + layout.size);
    let end = rec.indexOf(0, USER);
    if (end < 0) end = rec.length;
    const wide = layout.tvWidth === 8;
    const at = off + layout.tv;
    out.push({
      type: view.getInt16(off + TYPE, true),
      pid: view.getInt32(off + PID, true),
      user: rec.slice(USER, end),
      tvSec: wide ? Number(view.getBigInt64(at, true)) : view.getInt32(at, true),
      tvUsec: wide ? Number(view.getBigInt64(at + 8, true)) : view.getInt32(at + 4, true),
    });
  }
  return out;
}

/** One logged-in user: the earliest login time of all their sessions, in seconds. */
export interface LoggedInUser {
  readonly user: Uint8Array;
  readonly loginTime: number;
}

/**
 * The users of USER_PROCESS records, one per distinct name in first-appearance order, each with
 * the earliest `tv_sec + tv_usec / 1e6` (computed in doubles, as qemu-ga does).
 */
export function loggedInUsers(records: readonly UtmpRecord[]): LoggedInUser[] {
  const byName = new Map<string, { user: Uint8Array; loginTime: number }>();
  for (const r of records) {
    if (r.type !== USER_PROCESS) continue;
    const t = r.tvSec + r.tvUsec / 1_000_000;
    const key = r.user.join(",");
    const seen = byName.get(key);
    if (!seen) byName.set(key, { user: r.user, loginTime: t });
    else if (t < seen.loginTime) seen.loginTime = t;
  }
  return [...byName.values()];
}

/** A field width, for tests that build records. */
export const UTMP_USER_SIZE = USER_SIZE;
