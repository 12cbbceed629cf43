/**
 * Plain messages, recognised whole by V8's own regular expression engine and JSON parser.
 *
 * The lexer and parser walk a message byte by byte and token by token in JavaScript. Once V8
 * has compiled them that is cheap, but a freshly started agent runs them in V8's interpreter, at
 * thousands of instructions per byte, and a host that resynced while the agent was down has a
 * backlog of `0xFF` + `guest-sync-delimited` waiting for it (one every 250 ms of a boot); every
 * one of those must be answered before the host sees its own. A message in the plain subset of
 * the grammar is recognised in one native regular-expression match and built by `JSON.parse`:
 *
 * - printable ASCII only; strings double-quoted, without backslashes;
 * - integers of at most 15 digits without fraction or exponent (exact in a double), and the
 *   keywords `true`, `false`, `null`;
 * - objects and arrays nested at most {@link PLAIN_DEPTH} deep, no trailing commas;
 * - whitespace between tokens only as the lexer allows it (space, TAB, CR, LF).
 *
 * On that subset QEMU's grammar and JSON's agree, and the message ends exactly where the
 * streamer's brace and bracket counts return to zero. What `JSON.parse` does differently is
 * checked afterwards: a repeated key (QEMU fails the message, `JSON.parse` keeps the last) and
 * keys that look like array indices (a JS object lists them first) send the message down the
 * ordinary path, as does anything else outside the subset. The result is then the value the
 * lexer and parser would have built (`tests/unit/plain_message_test.ts` compares them).
 *
 * @module
 */

import type { QDict, QValue } from "./value.ts";

/** Deepest nesting of objects and arrays recognised. */
export const PLAIN_DEPTH = 2;

const WS = "[ \\t\\r\\n]*";
const STR = '"[ !#-\\[\\]-~]*"';
const SCALAR = `(?:${STR}|-?(?:0|[1-9][0-9]{0,14})|true|false|null)`;

/**
 * An object and an array whose members are nested at most `depth - 1` deep. A member or
 * element is followed by a comma that is not followed by the closer, or by the closer itself;
 * each level holds one copy of the level below.
 */
function containers(depth: number): string {
  const inner = depth === 1 ? SCALAR : `(?:${SCALAR}|${containers(depth - 1)})`;
  const object = `\\{${WS}(?:${STR}${WS}:${WS}${inner}${WS}(?:,${WS}(?=")|(?=\\})))*\\}`;
  const array = `\\[${WS}(?:${inner}${WS}(?:,${WS}(?!\\])|(?=\\])))*\\]`;
  return `${object}|${array}`;
}

let plainRe: RegExp | undefined;
const KEY_END = /"[ \t\r\n]*:/g;

/** A recognised message: its value and how many characters (= bytes) it spans. */
export interface PlainMessage {
  readonly value: QValue;
  readonly length: number;
}

/**
 * The message starting at `text[from]` (a `{` or `[`), when it lies whole in `text` and is in
 * the plain subset; otherwise undefined, and the caller lexes it as usual. `text` holds one
 * character per byte (latin1), so lengths are byte counts.
 */
export function plainMessage(text: string, from: number): PlainMessage | undefined {
  // Built on first use: the pattern is only needed once a host sends something.
  const re = plainRe ??= new RegExp(containers(PLAIN_DEPTH), "y");
  re.lastIndex = from;
  const m = re.exec(text);
  if (m === null) return undefined;
  const source = m[0];
  const keys = { count: 0 };
  const value = toQValue(JSON.parse(source), keys);
  if (value === undefined) return undefined;
  // Every key of the subset ends in `"` + whitespace + `:`, and nothing else does (strings
  // hold no `"`); fewer keys in the value means a repeated one.
  const written = source.match(KEY_END)?.length ?? 0;
  if (written !== keys.count) return undefined;
  return { value, length: source.length };
}

/**
 * `JSON.parse`'s result as the parser's value model; undefined for an object with a key that
 * may be an array index (a JS object would list it out of order).
 */
function toQValue(v: unknown, keys: { count: number }): QValue | undefined {
  switch (typeof v) {
    case "number":
      return BigInt(v);
    case "string":
    case "boolean":
      return v;
  }
  if (v === null) return null;
  if (Array.isArray(v)) {
    const out: QValue[] = [];
    for (const e of v) {
      const q = toQValue(e, keys);
      if (q === undefined) return undefined;
      out.push(q);
    }
    return out;
  }
  const dict: QDict = new Map();
  for (const k in v as Record<string, unknown>) {
    const c = k.charCodeAt(0);
    if (c >= 0x30 && c <= 0x39) return undefined;
    const q = toQValue((v as Record<string, unknown>)[k], keys);
    if (q === undefined) return undefined;
    dict.set(k, q);
    keys.count++;
  }
  return dict;
}
