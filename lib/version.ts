/**
 * Version strings. Hosts see the qemu-ga version whose behaviour denoga reproduces
 * (the newest upstream, qemu-ga-behaviour.md §0); `-V` also names denoga itself.
 *
 * @module
 */

/** The upstream qemu-ga version whose wire behaviour we follow; `guest-info` reports it. */
export const QGA_COMPAT_VERSION = "10.2.50";

/** denoga's own release. */
export const DENOGA_VERSION = "0.1.0";
