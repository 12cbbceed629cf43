/**
 * Time zones the way GLib 2.74's GTimeZone builds them (qemu-ga's guest-get-timezone, §3.11):
 * from a TZif file (RFC 8536, versions 1–4, with the POSIX TZ footer that continues the table
 * past its last transition), from a POSIX TZ string, or from a constant offset such as `UTC` or
 * `+05:30`. A zone is a list of local time types and a list of transitions between them;
 * {@link zoneInfoAt} answers "which abbreviation and offset apply at this instant".
 *
 * GLib's own quirks are kept, because they are what a host sees: a TZ rule's zone is expanded
 * to transitions for the years 1916–2998 with GLib's date arithmetic (a `Jn` or `n` day is
 * taken in a non-leap year), a partly parsed daylight offset is kept, a constant offset is
 * written with the sign east of UTC (`+05:30`), and a version 2+ file whose footer is missing
 * or unreadable is not a zone at all.
 *
 * @module
 */

/** One local time type. */
export interface TimeType {
  /** Seconds east of UTC. */
  readonly offset: number;
  readonly isDst: boolean;
  readonly abbrev: string;
}

/** A change to `type` (an index into {@link Zone.types}) at `time` (Unix seconds). */
export interface Transition {
  readonly time: number;
  readonly type: number;
}

/** A time zone: types, and transitions (null for a constant offset). */
export interface Zone {
  readonly types: readonly TimeType[];
  readonly transitions: readonly Transition[] | null;
}

// ---------------------------------------------------------------------------------------------
// Offsets and times: GLib's parse_time / parse_constant_offset

interface Box {
  v: number;
}

/**
 * `h`, `hh[[:]mm[[:]ss]]`; with `rfc8536` (a transition time) colons are required and hours may
 * reach 167. Writes `out` as it goes, even when it then fails (GLib does, and one caller keeps
 * the partial value).
 */
function parseTime(s: string, out: Box, rfc8536: boolean): boolean {
  let i = 0;
  const digit = (lo = "0", hi = "9") => i < s.length && s[i] >= lo && s[i] <= hi;
  const take = () => s.charCodeAt(i++) - 48;
  if (!digit()) return false;
  out.v = 3600 * take();
  if (i === s.length) return true;
  if (s[i] !== ":") {
    if (!digit()) return false;
    out.v = out.v * 10 + 3600 * take();
    if (rfc8536) {
      if (digit()) out.v = out.v * 10 + 3600 * take();
      if (out.v > 167 * 3600) return false;
    } else if (out.v > 24 * 3600) return false;
    if (i === s.length) return true;
  }
  if (s[i] === ":") i++;
  else if (rfc8536) return false;
  if (!digit("0", "5")) return false;
  out.v += 600 * take();
  if (!digit()) return false;
  out.v += 60 * take();
  if (i === s.length) return true;
  if (s[i] === ":") i++;
  else if (rfc8536) return false;
  if (!digit("0", "5")) return false;
  out.v += 10 * take();
  if (!digit()) return false;
  out.v += take();
  return i === s.length;
}

function parseConstantOffset(s: string, out: Box, rfc8536: boolean): boolean {
  if (!rfc8536 && s === "UTC") {
    out.v = 0;
    return true;
  }
  if (s[0] >= "0" && s[0] <= "9") return parseTime(s, out, rfc8536);
  switch (s[0]) {
    case "Z":
      out.v = 0;
      return !rfc8536 && s.length === 1;
    case "+":
      return parseTime(s.slice(1), out, rfc8536);
    case "-":
      if (parseTime(s.slice(1), out, rfc8536)) {
        out.v = -out.v;
        return true;
      }
      return false;
    default:
      return false;
  }
}

/**
 * A constant-offset zone (`UTC`, `Z`, `+05:30`, `-8`, `0530`): its abbreviation is the
 * identifier itself. Undefined when `identifier` is not one.
 */
export function constantOffsetZone(identifier: string): Zone | undefined {
  const out = { v: 0 };
  if (!parseConstantOffset(identifier, out, false)) return undefined;
  return { types: [{ offset: out.v, isDst: false, abbrev: identifier }], transitions: null };
}

// ---------------------------------------------------------------------------------------------
// POSIX TZ rules: GLib's rules_from_identifier and init_zone_from_rules

const MIN_TZYEAR = 1916;
const MAX_TZYEAR = 2999;
const NAME_MAX = 32;

/** A DST boundary: Mm.w.d (week/wday set) or a fixed month/day, at `offset` seconds. */
interface Boundary {
  mon: number;
  mday: number;
  week: number;
  /** 1 = Monday … 7 = Sunday for Mm.w.d; 0 for a fixed day. */
  wday: number;
  offset: number;
}

interface Rule {
  stdName: string;
  dltName: string;
  /** Seconds east of UTC (already negated from POSIX's west-positive). */
  std: number;
  dlt: number;
  start: Boundary | undefined;
  end: Boundary | undefined;
}

const isAlpha = (c: string | undefined) => c !== undefined && /^[A-Za-z]$/.test(c);
const isAlnum = (c: string | undefined) => c !== undefined && /^[A-Za-z0-9]$/.test(c);

/** set_tz_name: `<...>` (alphanumerics, `+`, `-`) or letters, at least three. */
function tzName(s: string, pos: { i: number }): string | undefined {
  const quoted = s[pos.i] === "<";
  const start = quoted ? pos.i + 1 : pos.i;
  let i = start;
  if (quoted) {
    while (isAlnum(s[i]) || s[i] === "-" || s[i] === "+") i++;
    if (s[i] !== ">") return undefined;
  } else {
    while (isAlpha(s[i])) i++;
  }
  if (i - start < 3) return undefined;
  pos.i = i + (quoted ? 1 : 0);
  return s.slice(start, Math.min(i, start + NAME_MAX));
}

/** parse_offset: the run of `+-:0-9` as a constant offset. */
function tzOffset(s: string, pos: { i: number }, out: Box): boolean {
  const start = pos.i;
  while (pos.i < s.length && /[-+:0-9]/.test(s[pos.i])) pos.i++;
  return parseConstantOffset(s.slice(start, pos.i), out, false);
}

/** Month and day of day-of-year `day` (1-based) in a non-leap year; 366 is 1 January. */
function nonLeapMonthDay(day: number): { mon: number; mday: number } {
  const d = new Date(Date.UTC(2001, 0, day));
  return { mon: d.getUTCMonth() + 1, mday: d.getUTCDate() };
}

function tzBoundary(text: string): Boundary | undefined {
  let i = 0;
  let b: Boundary;
  const digit = (lo = "0", hi = "9") => i < text.length && text[i] >= lo && text[i] <= hi;
  if (text[0] === "M") {
    i = 1;
    if (!digit()) return undefined;
    let month = text.charCodeAt(i++) - 48;
    if ((month === 1 && digit("0", "2")) || (month === 0 && digit())) {
      month = month * 10 + text.charCodeAt(i++) - 48;
    }
    if (text[i++] !== "." || month === 0) return undefined;
    if (!digit("1", "5")) return undefined;
    const week = text.charCodeAt(i++) - 48;
    if (text[i++] !== ".") return undefined;
    if (!digit("0", "6")) return undefined;
    const day = text.charCodeAt(i++) - 48;
    b = { mon: month, mday: 0, week, wday: day === 0 ? 7 : day, offset: 0 };
  } else if (text[0] === "J" || (text[0] >= "0" && text[0] <= "9")) {
    const ignoreLeap = text[0] === "J";
    if (ignoreLeap) i = 1;
    let day = 0;
    while (digit()) day = day * 10 + text.charCodeAt(i++) - 48;
    if (ignoreLeap) {
      if (day < 1 || day > 365) return undefined;
      if (day >= 59) day++;
    } else {
      if (day > 365) return undefined;
      day++;
    }
    b = { ...nonLeapMonthDay(day), week: 0, wday: 0, offset: 0 };
  } else {
    return undefined;
  }
  if (text[i] === "/") {
    const out = { v: 0 };
    if (!parseConstantOffset(text.slice(i + 1), out, true)) return undefined;
    b.offset = out.v;
    return b;
  }
  b.offset = 7200;
  return i === text.length ? b : undefined;
}

function parseRule(tz: string): Rule | undefined {
  const pos = { i: 0 };
  const stdName = tzName(tz, pos);
  const std = { v: 0 };
  if (stdName === undefined || !tzOffset(tz, pos, std)) return undefined;
  if (pos.i === tz.length) {
    return { stdName, dltName: "", std: -std.v || 0, dlt: 0, start: undefined, end: undefined };
  }
  const dltName = tzName(tz, pos);
  if (dltName === undefined) return undefined;
  const dlt = { v: 0 };
  tzOffset(tz, pos, dlt); // its result is ignored in GLib, a partial value included
  if (dlt.v === 0) dlt.v = std.v - 3600;
  if (pos.i === tz.length || tz[pos.i] !== ",") return undefined;
  const rest = tz.slice(pos.i + 1);
  const comma = rest.indexOf(",");
  if (comma < 0) return undefined;
  const start = tzBoundary(rest.slice(0, comma));
  const tail = rest.slice(comma + 1);
  const endText = tail.includes(",") ? tail.slice(0, tail.indexOf(",")) : tail;
  const end = start && tzBoundary(endText);
  if (!start || !end) return undefined;
  return { stdName, dltName, std: -std.v || 0, dlt: -dlt.v || 0, start, end };
}

/** Unix seconds of a boundary in `year`, its wall time read at `offset`; 0 when it has none. */
function boundaryForYear(b: Boundary | undefined, year: number, offset: number): number {
  if (!b || b.mon === 0) return 0;
  let mday = b.mday;
  if (b.wday) {
    const daysInMonth = new Date(Date.UTC(year, b.mon, 0)).getUTCDate();
    const firstDay = new Date(Date.UTC(year, b.mon - 1, 1)).getUTCDay();
    const firstWday = firstDay === 0 ? 7 : firstDay;
    const week = firstWday > b.wday ? b.week + 1 : b.week;
    let days = 7 * (week - 1) + b.wday - firstWday;
    while (days >= daysInMonth) days -= 7;
    mday = 1 + days;
  }
  return Date.UTC(year, b.mon - 1, mday) / 1000 + b.offset - offset;
}

/**
 * The zone of a POSIX TZ string (`EST5EDT,M3.2.0,M11.1.0`, `<+0530>-5:30`, `IST-5:30`);
 * undefined when GLib would not accept it (a daylight name without rules included).
 */
export function posixRuleZone(tz: string): Zone | undefined {
  const r = parseRule(tz);
  if (!r) return undefined;
  const types: TimeType[] = [];
  const transitions: Transition[] = [];
  const noRules = !r.start?.mon && !r.end?.mon;
  let last = r.std;
  let index = 0;
  if ((r.std || r.dlt) && noRules) {
    types.push({ offset: r.std, isDst: false, abbrev: r.stdName });
    index = 1;
  } else {
    const dltFirst = (r.start?.mon ?? 0) > (r.end?.mon ?? 0);
    let skipFirstStd = true;
    types.push({ offset: r.std, isDst: false, abbrev: r.stdName });
    types.push({ offset: r.dlt, isDst: true, abbrev: r.dltName });
    for (let year = MIN_TZYEAR; year < MAX_TZYEAR; year++) {
      const stdTime = boundaryForYear(r.end, year, dltFirst ? last : r.dlt);
      const dltTime = boundaryForYear(r.start, year, dltFirst ? r.std : last);
      last = dltFirst ? r.dlt : r.std;
      if (dltFirst) {
        if (skipFirstStd) skipFirstStd = false;
        else if (stdTime) transitions.push({ time: stdTime, type: index });
        if (dltTime) transitions.push({ time: dltTime, type: index + 1 });
      } else {
        if (dltTime) transitions.push({ time: dltTime, type: index + 1 });
        if (stdTime) transitions.push({ time: stdTime, type: index });
      }
    }
    index += 2;
  }
  // A southern-hemisphere rule ends the table in daylight time: GLib adds a last return to
  // standard time in the final year.
  if ((r.start?.mon ?? 0) > (r.end?.mon ?? 0)) {
    types.push({ offset: r.std, isDst: false, abbrev: r.stdName });
    transitions.push({ time: boundaryForYear(r.end, MAX_TZYEAR, last), type: index });
  }
  return { types, transitions };
}

// ---------------------------------------------------------------------------------------------
// TZif: GLib's init_zone_from_iana_info

const HEADER = 44;

/**
 * Parses a TZif file (64-bit data and footer from version 2 on); undefined when it is not one
 * GLib would load.
 */
export function parseTzif(data: Uint8Array): Zone | undefined {
  if (data.length < HEADER || new TextDecoder().decode(data.subarray(0, 4)) !== "TZif") {
    return undefined;
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const counts = (at: number) => ({
    isut: view.getUint32(at + 20),
    isstd: view.getUint32(at + 24),
    leap: view.getUint32(at + 28),
    time: view.getUint32(at + 32),
    type: view.getUint32(at + 36),
    char: view.getUint32(at + 40),
  });
  const v2 = data[4] >= 0x32;
  let at = 0;
  let c = counts(0);
  if (v2) {
    at = HEADER + c.isut + c.isstd + 8 * c.leap + 5 * c.time + 6 * c.type + c.char;
    if (at + HEADER > data.length) return undefined;
    c = counts(at);
  }
  const timeSize = v2 ? 8 : 4;
  const times = at + HEADER;
  const indexes = times + timeSize * c.time;
  const ttinfos = indexes + c.time;
  const abbrs = ttinfos + 6 * c.type;
  if (abbrs + c.char > data.length) return undefined;

  let footer: Zone | undefined;
  if (v2) {
    const f = abbrs + c.char + 12 * c.leap + c.isstd + c.isut;
    if (f > data.length - 2 || data[f] !== 0x0a) return undefined;
    const last = data.indexOf(0x0a, f + 1);
    if (last < 0) return undefined;
    if (last !== f + 1) {
      footer = posixRuleZone(new TextDecoder("latin1").decode(data.subarray(f + 1, last)));
      if (!footer) return undefined;
    }
  }

  const types: TimeType[] = [];
  for (let k = 0; k < c.type; k++) {
    const p = ttinfos + 6 * k;
    let end = data.indexOf(0, abbrs + data[p + 5]);
    if (end < 0) end = data.length;
    types.push({
      offset: view.getInt32(p),
      isDst: data[p + 4] !== 0,
      abbrev: new TextDecoder().decode(data.subarray(Math.min(abbrs + data[p + 5], end), end)),
    });
  }
  const transitions: Transition[] = [];
  for (let k = 0; k < c.time; k++) {
    const time = v2 ? Number(view.getBigInt64(times + 8 * k)) : view.getInt32(times + 4 * k);
    const type = data[indexes + k];
    if (type >= c.type) return undefined;
    transitions.push({ time, type });
  }
  if (footer) {
    const lastExplicit = transitions.at(-1)?.time;
    types.push(...footer.types);
    for (const t of footer.transitions ?? []) {
      if (lastExplicit === undefined || lastExplicit < t.time) {
        transitions.push({ time: t.time, type: c.type + t.type });
      }
    }
  }
  return { types, transitions };
}

// ---------------------------------------------------------------------------------------------
// Lookup: g_time_zone_find_interval (universal time) and the interval's type

/** What guest-get-timezone reports for `zone` at Unix time `seconds`. */
export function zoneInfoAt(zone: Zone, seconds: number): TimeType {
  const tr = zone.transitions;
  let i = 0;
  if (tr) {
    while (i < tr.length && seconds > tr[i].time - 1) i++;
  }
  if (tr && i > 0) return zone.types[tr[i - 1].type];
  return zone.types.find((t) => !t.isDst) ?? zone.types[0];
}
