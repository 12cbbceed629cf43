/**
 * The one error type a host can see. `klass` is the QAPI error class, `desc` the exact text
 * (qemu-ga-behaviour.md §2.5–2.7).
 *
 * @module
 */

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
 * ("Failed to spawn '/x': Permission denied (os error 13)", "No such file or directory (os
 * error 2): stat '/x'"); hosts must see the bare text, which the runtime took from the C
 * library's strerror. Needs no libc call, so start-up paths can use it freely.
 */
export function osErrorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /(?:^|: )([^:]*) \(os error \d+\)/.exec(msg);
  return m ? m[1] : msg;
}
