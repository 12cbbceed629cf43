/**
 * IP address text as the C library writes it: glibc's `inet_ntop` for IPv6 (which differs from
 * other formatters in when it writes an embedded IPv4 tail: `::1.2.3.4`, `::ffff:1.2.3.4`,
 * `::0.1.0.2`), and the parsers of address text its tests are written in.
 *
 * @module
 */

/** The 4 bytes of a dotted quad, or undefined when `text` is not one. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) {
    return undefined;
  }
  return Uint8Array.from(parts.map(Number));
}

/** The 16 bytes of an IPv6 address in any RFC 4291 text form (no zone), or undefined. */
export function parseIpv6(text: string): Uint8Array | undefined {
  let s = text;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.includes(".", lastColon)) {
    // An embedded IPv4 tail stands for the last two words.
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hex(v4[0], v4[1])}:${hex(v4[2], v4[3])}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const words = (h: string) => (h === "" ? [] : h.split(":"));
  const head = words(halves[0]);
  const rest = halves.length === 2 ? words(halves[1]) : [];
  if ([...head, ...rest].some((w) => !/^[0-9a-fA-F]{1,4}$/.test(w))) return undefined;
  const known = head.length + rest.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  const all = [
    ...head.map((w) => parseInt(w, 16)),
    ...new Array<number>(8 - known).fill(0),
    ...rest.map((w) => parseInt(w, 16)),
  ];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** glibc `inet_ntop(AF_INET6, ...)` of 16 bytes. */
export function formatIpv6(bytes: Uint8Array): string {
  const w = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  // The first longest run of two or more zero words becomes "::".
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = cur;
    } else {
      cur = { base: -1, len: 0 };
    }
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && w[5] === 0xffff))) {
      out += `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
      return out;
    }
    out += w[i].toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ":";
  return out;
}
