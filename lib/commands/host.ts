/**
 * Host information (§3.7, §3.11): guest-get-host-name, guest-get-users, guest-get-timezone,
 * guest-get-osinfo, guest-get-load. Parsing lives in lib/system/ (os_release, utmp, tzif);
 * this file finds the sources the way qemu-ga and the libraries it calls do, and
 * shapes the replies.
 *
 * @module
 */

import { sameBytes } from "../bytes.ts";
import type { Agent } from "../agent.ts";
import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import { OsFileError } from "../platform/files.ts";
import { decodeModUtf8Lossy } from "../protocol/utf8.ts";
import { parseOsRelease } from "../system/os_release.ts";
import {
  constantOffsetZone,
  parseTzif,
  posixRuleZone,
  type Zone,
  zoneInfoAt,
} from "../system/tzif.ts";
import { loggedInUsers, parseUtmp, utmpLayout } from "../system/utmp.ts";

/** glibc's `_PATH_UTMP`, the file getutxent reads. */
const UTMP = "/var/run/utmp";
/** glibc's HOST_NAME_MAX (sysconf(_SC_HOST_NAME_MAX)): the buffer qemu-ga hands gethostname. */
const HOST_NAME_MAX = 64;
const EINVAL = 22;

async function readOrUndefined(agent: Agent, path: string): Promise<Uint8Array | undefined> {
  try {
    return await agent.platform.os.readFile(path);
  } catch (e) {
    if (e instanceof OsFileError) return undefined;
    throw e;
  }
}

/**
 * `compute()`, or its last value while none of `paths` changed (the `os` facet's inotify cache,
 * where it has one). `compute` must read only `paths`.
 */
function watched<T>(
  agent: Agent,
  key: string,
  paths: readonly string[],
  compute: () => Promise<T>,
): Promise<T> {
  const os = agent.platform.os;
  return os.cached !== undefined ? os.cached(key, paths, compute) : compute();
}

/** First line of a /proc/sys file, as QEMU would print its bytes; undefined if unreadable. */
async function procLine(agent: Agent, path: string): Promise<string | undefined> {
  const data = await readOrUndefined(agent, path);
  if (data === undefined) return undefined;
  const nl = data.indexOf(0x0a);
  return decodeModUtf8Lossy(data, 0, nl < 0 ? data.length : nl);
}

/** `parse`, remembering its last input and result: these files rarely change between polls. */
function lastParse<T>(parse: (data: Uint8Array) => T): (data: Uint8Array) => T {
  let last: { data: Uint8Array; value: T } | undefined;
  return (data) => {
    if (last !== undefined && sameBytes(last.data, data)) return last.value;
    const value = parse(data);
    last = { data, value };
    return value;
  };
}

const parseZoneFile = lastParse(parseTzif);
const parseOsReleaseFile = lastParse(parseOsRelease);

/** uname's release, version and machine: fixed while the kernel runs. */
interface KernelIdentity {
  readonly release: string;
  readonly version: string | undefined;
  readonly machine: string;
}

const kernelIdentities = new WeakMap<object, Promise<KernelIdentity>>();

/** uname's release, version and machine, as /proc/sys/kernel shows them; read once. */
function kernelIdentity(agent: Agent): Promise<KernelIdentity> {
  const os = agent.platform.os;
  let identity = kernelIdentities.get(os);
  if (identity === undefined) {
    const host = agent.platform.host;
    identity = Promise.all([
      procLine(agent, "/proc/sys/kernel/osrelease"),
      procLine(agent, "/proc/sys/kernel/version"),
      procLine(agent, "/proc/sys/kernel/arch"),
    ]).then(([release, version, machine]) => ({
      release: release ?? host.kernelRelease(),
      version,
      machine: machine ?? host.arch,
    }));
    kernelIdentities.set(os, identity);
  }
  return identity;
}

// ---------------------------------------------------------------------------------------------
// The local time zone, found as GLib's g_time_zone_new_local does

const UTC: Zone = constantOffsetZone("UTC")!;

async function isDirectory(agent: Agent, path: string): Promise<boolean> {
  try {
    return (await agent.platform.os.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * GLib's zone_identifier_unix: the name /etc/localtime stands for — its symlink's target made
 * absolute and canonical, with the zoneinfo directory stripped, or, when it is no symlink, the
 * first line of /var/db/zoneinfo or /etc/timezone — or undefined (GLib then uses UTC).
 */
async function localtimeIdentifier(agent: Agent): Promise<string | undefined> {
  const os = agent.platform.os;
  let identifier: string | undefined;
  let notASymlinkToZoneinfo = false;
  try {
    const target = await os.readLink("/etc/localtime");
    const absolute = target.startsWith("/") ? target : `/etc/${target}`;
    try {
      if ((await os.lstat(absolute)).isFile) identifier = canonicalPath(absolute);
      else notASymlinkToZoneinfo = true; // a symlink to a symlink, for example
    } catch {
      return undefined;
    }
  } catch (e) {
    notASymlinkToZoneinfo = e instanceof OsFileError && e.errno === EINVAL;
  }
  if (identifier === undefined) {
    if (!notASymlinkToZoneinfo) return undefined;
    const named = (await readOrUndefined(agent, "/var/db/zoneinfo")) ??
      (await readOrUndefined(agent, "/etc/timezone"));
    if (named === undefined) return undefined;
    identifier = decodeModUtf8Lossy(named).replace(/[\t\n\v\f\r ]+$/, "");
  }
  const tzdir = agent.platform.host.env("TZDIR") ?? "/usr/share/zoneinfo";
  if (tzdir !== "" && identifier.startsWith(tzdir)) {
    identifier = identifier.slice(tzdir.length).replace(/^\/+/, "");
  }
  return identifier;
}

/** `path` with `.`, `..` and repeated slashes resolved textually (g_canonicalize_filename). */
function canonicalPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/**
 * The zone GLib keeps for the local zone, per file facet, under its identifier ("UTC" when it
 * fell back): GLib reloads /etc/localtime only when the identifier changes, so a zone file
 * rewritten under the same name goes unnoticed by qemu-ga, and so here.
 */
const defaultZones = new WeakMap<object, { name: string; zone: Zone }>();

/**
 * The zone qemu-ga reports: `TZ` as a constant offset, a POSIX rule or a zoneinfo file (`:`
 * prefix allowed, relative to `$TZDIR` or /usr/share/zoneinfo); without `TZ`, /etc/localtime.
 * Anything GLib cannot load is UTC.
 */
export async function localZone(agent: Agent): Promise<Zone> {
  const { host, os } = agent.platform;
  const tz = host.env("TZ");
  if (tz === undefined) {
    // Every file the identifier comes from; the zone file itself is read only when it changes.
    const paths = ["/etc/localtime", "/var/db/zoneinfo", "/etc/timezone"];
    const id = await watched(agent, "localtime", paths, () => localtimeIdentifier(agent));
    const kept = defaultZones.get(os);
    if (kept !== undefined && (kept.name === id || (id === undefined && kept.name === "UTC"))) {
      return kept.zone;
    }
    const data = id === undefined ? undefined : await readOrUndefined(agent, "/etc/localtime");
    const zone = data && parseZoneFile(data);
    defaultZones.set(os, zone ? { name: id!, zone } : { name: "UTC", zone: UTC });
    return zone ?? UTC;
  }
  // GLib keeps the zone TZ names once it loaded, for as long as TZ stays the same: a zone file
  // changed afterwards goes unnoticed by qemu-ga, and so here.
  const tzdir = host.env("TZDIR");
  const key = `${tz}\0${tzdir}`;
  let kept = keptZones.get(os);
  const known = kept?.get(key);
  if (known !== undefined) return known;
  const zone = await zoneNamed(agent, tz, tzdir);
  if (zone === undefined) return UTC;
  if (kept === undefined) keptZones.set(os, kept = new Map());
  kept.set(key, zone);
  return zone;
}

/** The zones TZ named, per file facet and TZ/TZDIR value. */
const keptZones = new WeakMap<object, Map<string, Zone>>();

/**
 * The zone TZ names: a constant offset, a POSIX rule or a zoneinfo file (`:` prefix allowed,
 * relative to `$TZDIR` or /usr/share/zoneinfo); undefined when GLib cannot load it.
 */
async function zoneNamed(
  agent: Agent,
  tz: string,
  tzdir: string | undefined,
): Promise<Zone | undefined> {
  const fixed = constantOffsetZone(tz) ?? posixRuleZone(tz);
  if (fixed) return fixed;
  if (tzdir === undefined) {
    tzdir = !(await isDirectory(agent, "/usr/share/zoneinfo")) &&
        (await isDirectory(agent, "/usr/share/lib/zoneinfo"))
      ? "/usr/share/lib/zoneinfo"
      : "/usr/share/zoneinfo";
  }
  const name = tz.startsWith(":") ? tz.slice(1) : tz;
  const path = name.startsWith("/") ? name : `${tzdir.replace(/\/+$/, "")}/${name}`;
  const data = await readOrUndefined(agent, path);
  return (data && parseZoneFile(data)) ?? undefined;
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Reports the host name. */
export const guestGetHostName = defineCommand({
  name: "guest-get-host-name",
  summary: "Report the guest's host name",
  args: [],
  returns: t.struct("GuestHostName", [{ name: "host-name", type: t.str }]),
  run: (_args, agent) => {
    const name = agent.platform.host.hostName();
    // gethostname fails when the name and its NUL do not fit the buffer, and the error wins
    // over qemu-ga's `localhost` fallback.
    if (new TextEncoder().encode(name).length >= HOST_NAME_MAX) {
      throw genericError("cannot get hostname: File name too long");
    }
    return { "host-name": name };
  },
});

/** Reports the logged-in users. */
export const guestGetUsers = defineCommand({
  name: "guest-get-users",
  summary: "Report the users logged in to the guest and when they first logged in",
  args: [],
  returns: t.list(t.struct("GuestUser", [
    { name: "user", type: t.str },
    { name: "login-time", type: t.number },
    { name: "domain", type: t.str, optional: true },
  ])),
  run: (_args, agent) =>
    watched(agent, "utmp", [UTMP], async () => {
      // getutxent finds no records in a file it cannot open.
      const data = await readOrUndefined(agent, UTMP) ?? new Uint8Array();
      const records = parseUtmp(data, utmpLayout(agent.platform.host.arch));
      return loggedInUsers(records).map((u) => ({
        user: decodeModUtf8Lossy(u.user),
        "login-time": u.loginTime,
      }));
    }),
});

/** Reports the time zone in effect now. */
export const guestGetTimezone = defineCommand({
  name: "guest-get-timezone",
  summary: "Report the guest's current time zone abbreviation and offset from UTC",
  args: [],
  returns: t.struct("GuestTimezone", [
    { name: "zone", type: t.str, optional: true },
    { name: "offset", type: t.int },
  ]),
  run: async (_args, agent) => {
    // GLib falls back to UTC for any zone it cannot load, so qemu-ga's
    // `Couldn't retrieve local timezone` cannot happen.
    const zone = await localZone(agent);
    const now = agent.platform.clock.nowMicroseconds() / 1_000_000n;
    const info = zoneInfoAt(zone, Number(now));
    return { zone: info.abbrev, offset: info.offset };
  },
});

/** Reports kernel and distribution. */
export const guestGetOsinfo = defineCommand({
  name: "guest-get-osinfo",
  summary: "Report the guest's kernel and operating system (uname and os-release)",
  args: [],
  returns: t.struct("GuestOSInfo", [
    { name: "kernel-release", type: t.str, optional: true },
    { name: "kernel-version", type: t.str, optional: true },
    { name: "machine", type: t.str, optional: true },
    { name: "id", type: t.str, optional: true },
    { name: "name", type: t.str, optional: true },
    { name: "pretty-name", type: t.str, optional: true },
    { name: "version", type: t.str, optional: true },
    { name: "version-id", type: t.str, optional: true },
    { name: "variant", type: t.str, optional: true },
    { name: "variant-id", type: t.str, optional: true },
  ]),
  run: async (_args, agent) => {
    const { release, version, machine } = await kernelIdentity(agent);
    const env = agent.platform.host.env("QGA_OS_RELEASE");
    const parse = async (path: string) => {
      const data = await readOrUndefined(agent, path);
      return data && parseOsReleaseFile(data);
    };
    const paths = env !== undefined ? [env] : ["/etc/os-release", "/usr/lib/os-release"];
    // Any failure of /etc/os-release, an unreadable or invalid file alike, falls back.
    const os = await watched(agent, `os-release ${env}`, paths, async () => {
      for (const path of paths) {
        const found = await parse(path);
        if (found !== undefined) return found;
      }
      return undefined;
    });
    return {
      "kernel-release": release,
      "kernel-version": version,
      machine,
      id: os?.id,
      name: os?.name,
      "pretty-name": os?.prettyName,
      version: os?.version,
      "version-id": os?.versionId,
      variant: os?.variant,
      "variant-id": os?.variantId,
    };
  },
});

/** Reports the load averages. */
export const guestGetLoad = defineCommand({
  name: "guest-get-load",
  summary: "Report the guest's 1, 5 and 15 minute load averages",
  args: [],
  returns: t.struct("GuestLoadAverage", [
    { name: "load1m", type: t.number },
    { name: "load5m", type: t.number },
    { name: "load15m", type: t.number },
  ]),
  run: (_args, agent) => {
    // getloadavg is one sysinfo() call on Linux, which cannot fail for a valid buffer: qemu-ga's
    // "cannot query load average" is never seen there.
    const [load1m, load5m, load15m] = agent.platform.host.loadAverage();
    return { load1m, load5m, load15m };
  },
});

/** The family, for the command table. */
export const hostCommands = [
  guestGetHostName,
  guestGetUsers,
  guestGetTimezone,
  guestGetOsinfo,
  guestGetLoad,
];
