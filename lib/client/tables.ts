/**
 * Readable tables of the client's informational subcommands (info, ifconfig, fsinfo, osinfo).
 * Each takes the command's `return` value as the agent sent it.
 *
 * @module
 */

import type { Json } from "./connection.ts";

type Obj = { [member: string]: Json };

/** Left-aligned columns separated by two spaces, the first row being the header. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map((row) =>
    row.map((c, i) => i === row.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd() + "\n"
  ).join("");
}

function text(v: Json | undefined): string {
  if (v === undefined || v === null) return "-";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function bytes(v: Json | undefined): string {
  if (typeof v !== "number" && typeof v !== "bigint") return "-";
  const n = Number(v);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${units[i]}`;
}

/** guest-info: the version, then each command with its flags. */
export function infoTable(info: Json): string {
  const o = info as Obj;
  const commands = (o.supported_commands ?? []) as Obj[];
  const rows = [["COMMAND", "ENABLED", "SUCCESS-RESPONSE"]];
  for (const c of [...commands].sort((a, b) => String(a.name).localeCompare(String(b.name)))) {
    rows.push([text(c.name), c.enabled ? "yes" : "no", c["success-response"] ? "yes" : "no"]);
  }
  return `version: ${text(o.version)}\n` + table(rows);
}

/** guest-network-get-interfaces: one row per address (an interface without one gets a row). */
export function ifconfigTable(interfaces: Json): string {
  const rows = [["INTERFACE", "HARDWARE-ADDRESS", "TYPE", "ADDRESS"]];
  for (const i of interfaces as Obj[]) {
    const addresses = (i["ip-addresses"] ?? []) as Obj[];
    const hw = text(i["hardware-address"]);
    if (addresses.length === 0) rows.push([text(i.name), hw, "-", "-"]);
    for (const a of addresses) {
      rows.push([
        text(i.name),
        hw,
        text(a["ip-address-type"]),
        `${text(a["ip-address"])}/${text(a.prefix)}`,
      ]);
    }
  }
  return table(rows);
}

/** guest-get-fsinfo: one row per mounted filesystem. */
export function fsinfoTable(filesystems: Json): string {
  const rows = [["MOUNTPOINT", "TYPE", "DEVICE", "USED", "TOTAL", "DISKS"]];
  for (const f of filesystems as Obj[]) {
    const disks = ((f.disk ?? []) as Obj[]).map((d) =>
      text(d.dev ?? d.serial ?? (d.address as Obj | undefined)?.["bus-type"])
    );
    rows.push([
      text(f.mountpoint),
      text(f.type),
      text(f.name),
      bytes(f["used-bytes"]),
      bytes(f["total-bytes"]),
      disks.join(",") || "-",
    ]);
  }
  return table(rows);
}

/** guest-get-osinfo (or any flat object): `key: value` lines, aligned. */
export function keyValueTable(value: Json): string {
  const o = value as Obj;
  return table(Object.keys(o).map((k) => [`${k}:`, text(o[k])]));
}
