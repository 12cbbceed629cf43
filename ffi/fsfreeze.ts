/**
 * FIFREEZE / FITHAW on one mount point (qemu-ga-behaviour.md §3.4, clients-and-peers.md §4.2).
 *
 * Each call is one open → ioctl → close sequence run off the event loop by `runBlocking`
 * (`ffi/blocking.ts`). FIFREEZE can stay in the kernel for a long time (it syncs the filesystem
 * first, and waits forever if the device does not complete writes); meanwhile the event loop keeps
 * answering guest-fsfreeze-status, ping and sync, and other freezes/thaws proceed meanwhile.
 *
 * The walk over the mount list (reverse order for freeze, forward for thaw, mountpoints filter,
 * counting, thaw-on-error) belongs to the command layer; this module only decides what one mount
 * point's result means, exactly as `qmp_guest_fsfreeze_do_freeze_list` / `_do_thaw` do.
 *
 * @module
 */

import { runBlocking } from "./blocking.ts";
import { EBUSY, EOPNOTSUPP, type OsPath, strerror } from "./libc.ts";

/** What FIFREEZE on one mount point did. */
export type FreezeOutcome =
  /** FIFREEZE succeeded: count this filesystem. */
  | { ok: true }
  /** EOPNOTSUPP or EBUSY from FIFREEZE: not counted, not an error (§3.4). */
  | { ok: false; skipped: true; errno: number }
  /**
   * Any other failure. qemu-ga then thaws everything and reports
   * `failed to open <dir>: <strerror>` (stage "open") or `failed to freeze <dir>: <strerror>`.
   */
  | { ok: false; skipped: false; stage: "open" | "freeze"; errno: number; strerror: string };

/** Freeze and thaw of a single mount point. */
export interface FreezeSyscalls {
  /** open(dir, O_RDONLY|O_CLOEXEC) then ioctl(FIFREEZE) then close, off the event loop. */
  freeze(mountpoint: OsPath): Promise<FreezeOutcome>;
  /**
   * open then FITHAW repeatedly until it fails; resolves true when at least one FITHAW succeeded
   * (qemu-ga counts that fs once).
   *
   * An open failure resolves false: `qmp_guest_fsfreeze_do_thaw` simply `continue`s to the next
   * mount when `qga_open_cloexec` fails: no error, not counted.
   */
  thaw(mountpoint: OsPath): Promise<boolean>;
}

/** The real implementation, backed by the blocking pool. */
export const freezeSyscalls: FreezeSyscalls = {
  async freeze(mountpoint) {
    const reply = await runBlocking({ op: "freeze", path: mountpoint });
    if (reply.errno === 0) return { ok: true };
    // Only the ioctl's EOPNOTSUPP (fs without freeze support) and EBUSY (already frozen, e.g. a
    // second mount of the same fs) are benign; the same errno from open() is a real failure.
    if (reply.stage === "freeze" && (reply.errno === EOPNOTSUPP || reply.errno === EBUSY)) {
      return { ok: false, skipped: true, errno: reply.errno };
    }
    return {
      ok: false,
      skipped: false,
      stage: reply.stage === "open" ? "open" : "freeze",
      errno: reply.errno,
      strerror: reply.strerror ?? strerror(reply.errno),
    };
  },

  async thaw(mountpoint) {
    const reply = await runBlocking({ op: "thaw", path: mountpoint });
    return Number(reply.ret) > 0;
  },
};
