/**
 * What an agent costs in its guest, as the agent itself reports it: its `/proc/self/stat` and
 * `/proc/self/status` read through guest-file-open/read/close, so no guest-exec and no process
 * but the agent's own is involved.
 *
 * @module
 */

import type { QgaClient } from "./connection.ts";
import { readGuestText } from "./transfer.ts";

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ on every Linux port). */
export const USER_HZ = 100;

/** An agent's CPU time and resident memory. */
export interface AgentUsage {
  /** User + system CPU time in clock ticks of 1/{@link USER_HZ} s. */
  cpuTicks: number;
  /** VmRSS in KiB. */
  rssKiB: number;
}

/**
 * User + system time (clock ticks) from a `/proc/<pid>/stat` line. The command name may hold
 * spaces and parentheses, so fields are counted from the last `)`: utime and stime are the
 * 14th and 15th fields.
 */
export function parseStatCpuTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`not a /proc stat line: ${stat.slice(0, 80)}`);
  return ticks;
}

/** VmRSS (KiB) from a `/proc/<pid>/status` text. */
export function parseStatusRssKiB(status: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error("no VmRSS line in the status text");
  return Number(m[1]);
}

/** The agent's CPU time so far, read by the agent itself. */
export async function agentCpuTicks(client: QgaClient): Promise<number> {
  return parseStatCpuTicks(await readGuestText(client, "/proc/self/stat"));
}

/** The agent's CPU time and resident memory, read by the agent itself. */
export async function agentUsage(client: QgaClient): Promise<AgentUsage> {
  const rssKiB = parseStatusRssKiB(await readGuestText(client, "/proc/self/status"));
  return { cpuTicks: await agentCpuTicks(client), rssKiB };
}
