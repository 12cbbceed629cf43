/**
 * The `network` facet: the kernel's links and addresses as getifaddrs(3) reads them (an
 * RTM_GETLINK and an RTM_GETADDR dump, one blocking call off the event loop), parsed. No file
 * system, so it cannot hang on a stuck mount.
 *
 * @module
 */

import { netlinkDump, strerror } from "../../ffi/netlink.ts";
import {
  type Address,
  type Link,
  NetlinkError,
  parseAddresses,
  parseLinks,
} from "../system/netlink.ts";
import { OsFileError } from "./files.ts";

export type { Address, Link, LinkStats } from "../system/netlink.ts";

/** Links in the kernel's order, then the IPv4 and IPv6 addresses in its order. */
export interface NetworkTables {
  readonly links: readonly Link[];
  readonly addresses: readonly Address[];
}

/** The facet. */
export interface NetworkFacet {
  /** Throws an OsFileError (path `getifaddrs`) when the kernel refuses. */
  tables(): Promise<NetworkTables>;
}

/** The real facet. */
export const networkFacet: NetworkFacet = {
  async tables() {
    const r = await netlinkDump();
    if (!r.ok) throw new OsFileError(r.strerror, r.errno, "getifaddrs");
    try {
      const links = parseLinks(new Uint8Array(r.links));
      return { links, addresses: parseAddresses(new Uint8Array(r.addresses), links) };
    } catch (e) {
      if (e instanceof NetlinkError) {
        throw new OsFileError(strerror(e.errno), e.errno, "getifaddrs");
      }
      throw e;
    }
  },
};
