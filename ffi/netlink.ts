/**
 * The kernel's link and address tables through rtnetlink, off the event loop (`runBlocking`):
 * what getifaddrs(3) reads, for guest-network-get-interfaces. The bytes are parsed above ffi
 * (lib/system/netlink.ts).
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import type { NetlinkDumpResult } from "./ops/netlink_dump.ts";

export type { NetlinkDumpResult } from "./ops/netlink_dump.ts";

/**
 * An RTM_GETLINK and an RTM_GETADDR dump on one NETLINK_ROUTE socket: their messages, or the
 * errno of the step that failed.
 *
 * @example
 * ```ts
 * const r = await netlinkDump();
 * if (r.ok) console.log(r.links.byteLength, r.addresses.byteLength);
 * ```
 */
export function netlinkDump(): Promise<NetlinkDumpResult> {
  return runBlocking({ op: "netlinkDump" });
}

/** strerror(errno), for a failure the parser of the dumps found. */
export { strerror } from "./libc.ts";
