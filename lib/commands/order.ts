/**
 * The names of the 43 commands of newest qemu-ga on Linux, in schema (= registration) order
 * (qemu-ga-behaviour.md §1.1, a Linux build): all the command line needs (`-b help`, the block
 * and allow lists), apart from the families that declare them.
 *
 * @module
 */

/** The 43 commands of newest qemu-ga on Linux, in schema (= registration) order. */
export const SCHEMA_ORDER: readonly string[] = [
  "guest-sync-delimited",
  "guest-sync",
  "guest-ping",
  "guest-get-time",
  "guest-set-time",
  "guest-info",
  "guest-shutdown",
  "guest-file-open",
  "guest-file-close",
  "guest-file-read",
  "guest-file-write",
  "guest-file-seek",
  "guest-file-flush",
  "guest-fsfreeze-status",
  "guest-fsfreeze-freeze",
  "guest-fsfreeze-freeze-list",
  "guest-fsfreeze-thaw",
  "guest-fstrim",
  "guest-suspend-disk",
  "guest-suspend-ram",
  "guest-suspend-hybrid",
  "guest-network-get-interfaces",
  "guest-get-vcpus",
  "guest-set-vcpus",
  "guest-get-disks",
  "guest-get-fsinfo",
  "guest-set-user-password",
  "guest-get-memory-blocks",
  "guest-set-memory-blocks",
  "guest-get-memory-block-info",
  "guest-exec-status",
  "guest-exec",
  "guest-get-host-name",
  "guest-get-users",
  "guest-get-timezone",
  "guest-get-osinfo",
  "guest-ssh-get-authorized-keys",
  "guest-ssh-add-authorized-keys",
  "guest-ssh-remove-authorized-keys",
  "guest-get-diskstats",
  "guest-get-cpustats",
  "guest-get-load",
  "guest-network-get-route",
];
