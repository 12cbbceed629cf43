/**
 * The JSON value model shared by the protocol engine, the dispatcher and the commands.
 *
 * It mirrors QEMU's QObject: integers are kept exact as `bigint` (any JSON integer that fits
 * int64 or uint64), every other number is a `number` (a C double), objects are `Map`s whose
 * insertion order is kept so the writer can reproduce QEMU's hash order (§2.7).
 *
 * Commands may also return plain objects (`Record`) built in schema order; the writer treats
 * them like `QDict`s and omits members whose value is `undefined`.
 *
 * @module
 */

/** A parsed JSON object, as QEMU's QDict. */
export type QDict = Map<string, QValue>;

/** A parsed JSON value, as QEMU's QObject. */
export type QValue = null | boolean | bigint | number | string | QValue[] | QDict;

/**
 * A string the writer may emit as it is, without looking at it: its content must be printable
 * ASCII without `"` or `\` (base64 text, for instance). Replies carrying megabytes of base64
 * skip the escape scan and are copied once, straight into the output buffer.
 *
 * @example
 * ```ts
 * new VerbatimString(bytes.toBase64());
 * ```
 */
export class VerbatimString {
  /**
   * `text` may also be the ASCII bytes of the string; such bytes are handed over: the reply
   * builder releases them once copied, or, when their buffer has {@link VERBATIM_ROOM} spare
   * bytes before and after them, writes the rest of the reply line around them in place.
   */
  constructor(readonly text: string | Uint8Array) {}
}

/**
 * Spare bytes on each side of verbatim bytes that let the reply line be built in their own
 * buffer: a megabyte reply then exists once in memory instead of as its text and its line.
 */
export const VERBATIM_ROOM = 1024;

/** What a command may hand to the writer: parsed values, plus plain objects for output structs. */
export type ReplyValue =
  | VerbatimString
  | null
  | boolean
  | bigint
  | number
  | string
  | readonly ReplyValue[]
  | QDict
  | { readonly [member: string]: ReplyValue | undefined };

/** True when `v` is a parsed JSON object. */
export function isQDict(v: QValue | undefined): v is QDict {
  return v instanceof Map;
}
