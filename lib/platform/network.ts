/**
 * The `network` facet: the IPv4 and IPv6 address entries of getifaddrs, in its order, as
 * Deno's `Deno.networkInterfaces()` returns them (one netlink exchange with the kernel, no file
 * system, so it cannot hang on a stuck mount). Link-only entries and hardware addresses come
 * from /proc and /sys through the `os` facet instead.
 *
 * @module
 */

import { toOsFileError } from "./files.ts";

/** One address entry of getifaddrs. */
export interface InterfaceAddress {
  readonly family: "IPv4" | "IPv6";
  /** The interface name, or an IPv4 address's label (`eth0:1`). */
  readonly name: string;
  /** Address text (Rust's formatting: callers re-format it as the C library would). */
  readonly address: string;
  readonly netmask: string;
}

/** The facet. */
export interface NetworkFacet {
  /** Throws an OsFileError (path `getifaddrs`) when the kernel refuses. */
  addresses(): Promise<InterfaceAddress[]>;
}

/** The real facet. */
export const networkFacet: NetworkFacet = {
  addresses() {
    try {
      return Promise.resolve(
        Deno.networkInterfaces().map(({ family, name, address, netmask }) => ({
          family,
          name,
          address,
          netmask,
        })),
      );
    } catch (e) {
      return Promise.reject(toOsFileError(e, "getifaddrs"));
    }
  },
};
