/**
 * Minimal assertions for the test suites (JSR's @std/assert is unreachable from our build
 * machines; node:assert does the work).
 *
 * @module
 */

import assert from "node:assert/strict";

/** Deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Truthiness. */
export function assertOk(value: unknown, msg?: string): asserts value {
  assert.ok(value, msg);
}

/** `fn` throws, and `check` (if given) accepts the error. */
export function assertThrows(fn: () => unknown, check?: (e: unknown) => boolean): void {
  if (check) assert.throws(fn, (e: unknown) => check(e));
  else assert.throws(fn);
}

/** `fn()` rejects, and `check` (if given) accepts the error. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  check?: (e: unknown) => boolean,
): Promise<void> {
  if (check) await assert.rejects(fn, (e: unknown) => check(e));
  else await assert.rejects(fn);
}
