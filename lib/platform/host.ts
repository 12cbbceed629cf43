/**
 * The `host` facet: what the host-information commands learn from the process rather than from
 * files — the node name (gethostname), environment variables qemu-ga consults (`TZ`, `TZDIR`,
 * `QGA_OS_RELEASE`), the machine name when /proc does not give it, and the load averages.
 *
 * @module
 */

/** The facet. Every member is a cheap system call or a lookup: none blocks. */
export interface HostInfo {
  /** The node name, as gethostname reads it from uname. */
  hostName(): string;
  /** An environment variable of the agent process. */
  env(name: string): string | undefined;
  /** The kernel release (uname -r), for when /proc is not mounted. */
  kernelRelease(): string;
  /** The machine name (uname -m) of the architecture denoga runs on. */
  readonly arch: string;
  /**
   * The 1, 5 and 15 minute load averages as glibc's getloadavg computes them on Linux: sysinfo's
   * fixed-point `loads`, divided by 2^16 (not the rounded text of /proc/loadavg).
   */
  loadAverage(): [number, number, number];
}

/** The real host. */
export const systemHost: HostInfo = {
  hostName: () => Deno.hostname(),
  env: (name) => Deno.env.get(name),
  kernelRelease: () => Deno.osRelease(),
  arch: Deno.build.arch,
  // Deno computes these from sysinfo() exactly as glibc does.
  loadAverage: () => Deno.loadavg() as [number, number, number],
};
