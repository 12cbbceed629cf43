/**
 * The one error type a host can see. `klass` is the QAPI error class, `desc` the exact text
 * (qemu-ga-behaviour.md §2.5–2.7).
 *
 * @module
 */

import { strerror } from "../ffi/libc.ts";

/** QAPI error classes qemu-ga uses on the wire. */
export type ErrorClass = "GenericError" | "CommandNotFound";

/**
 * An error that becomes `{"error": {"class": ..., "desc": ...}}` on the wire.
 *
 * @example
 * ```ts
 * throw new QgaError("GenericError", "handle '7' has not been found");
 * ```
 */
export class QgaError extends Error {
  readonly klass: ErrorClass;
  readonly desc: string;

  constructor(klass: ErrorClass, desc: string) {
    super(desc);
    this.name = "QgaError";
    this.klass = klass;
    this.desc = desc;
  }
}

/** Shorthand for the common `GenericError`. */
export function genericError(desc: string): QgaError {
  return new QgaError("GenericError", desc);
}

/**
 * The strerror text of an OS error raised by a Deno API. Deno's messages carry decorations
 * ("Failed to spawn '/x': Permission denied (os error 13)"); hosts must see glibc's bare text.
 */
export function osErrorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = / \(os error (\d+)\)/.exec(msg);
  if (m) return strerror(Number(m[1]));
  return msg;
}
