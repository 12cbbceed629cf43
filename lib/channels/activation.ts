/**
 * The environment half of systemd socket activation (§5.1, util/systemd.c
 * check_socket_activation), kept free of FFI so that an agent that was not socket-activated
 * never loads the socket code (`lib/channels/listen_fd.ts` does the rest).
 *
 * @module
 */

/** systemd's first passed fd (`SD_LISTEN_FDS_START`). */
export const FIRST_SOCKET_ACTIVATION_FD = 3;

/** The environment as socket activation reads it (`Deno.env`, or a map in tests). */
export interface ActivationEnv {
  get(k: string): string | undefined;
  delete(k: string): void;
}

/**
 * The number of fds systemd passed: `LISTEN_FDS` when `LISTEN_PID` is `pid` and both parse,
 * else 0. When they do, LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES are removed from `env` (children
 * must not see them), as qemu-ga does.
 */
export function activatedFdCount(env: ActivationEnv, pid: number): number {
  const listenPid = parseUlong(env.get("LISTEN_PID"));
  if (listenPid === undefined || listenPid !== BigInt(pid)) return 0;
  const nrFds = parseUlong(env.get("LISTEN_FDS"));
  if (nrFds === undefined) return 0;
  env.delete("LISTEN_FDS");
  env.delete("LISTEN_PID");
  env.delete("LISTEN_FDNAMES");
  return Number(nrFds);
}

/** qemu_strtoul(s, NULL, 10): the whole string a decimal number (leading blanks allowed). */
function parseUlong(s: string | undefined): bigint | undefined {
  if (s === undefined) return undefined;
  const m = /^[ \t\n\v\f\r]*\+?([0-9]+)$/.exec(s);
  if (m === null) return undefined;
  const v = BigInt(m[1]);
  return v > 0xffff_ffff_ffff_ffffn ? undefined : v;
}
