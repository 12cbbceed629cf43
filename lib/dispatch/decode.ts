/**
 * Argument decoding with qemu-ga's exact error texts (qemu-ga-behaviour.md §2.6): members are
 * visited in schema order, the first problem wins, leftovers are rejected afterwards.
 *
 * @module
 */

import { genericError } from "../errors.ts";
import { qdictOrder } from "../protocol/qdict_order.ts";
import type { QDict, QValue } from "../protocol/value.ts";
import { firstLeftover } from "./ghash_order.ts";
import type { AlternateType, ArgType, DecodedMembers, EnumType, Member } from "./schema.ts";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** QEMU's name for the JSON type a visitor expected. */
function typeError(fullName: string, expected: string): Error {
  return genericError(`Invalid parameter type for '${fullName}', expected: ${expected}`);
}

/** Joins a container path and a member name the way QEMU's full_name() does. */
function memberPath(prefix: string, name: string): string {
  return prefix === "" ? name : `${prefix}.${name}`;
}

function decodeEnum(v: QValue, fullName: string, bareName: string, e: EnumType): string {
  if (typeof v !== "string") throw typeError(fullName, "string");
  if (!e.values.includes(v)) {
    throw genericError(`Parameter '${bareName}' does not accept value '${v}'`);
  }
  return v;
}

function decodeInt(v: QValue, fullName: string): bigint {
  if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) {
    throw typeError(fullName, "integer");
  }
  return v;
}

function decodeAlternate(
  v: QValue,
  fullName: string,
  bareName: string,
  alt: AlternateType,
): { branch: "scalar"; value: bigint | boolean } | { branch: "enum"; value: string } {
  if (typeof v === "string") {
    return { branch: "enum", value: decodeEnum(v, fullName, bareName, alt.enumType) };
  }
  if (alt.scalar.kind === "int" && (typeof v === "bigint" || typeof v === "number")) {
    return { branch: "scalar", value: decodeInt(v, fullName) };
  }
  if (alt.scalar.kind === "bool" && typeof v === "boolean") {
    return { branch: "scalar", value: v };
  }
  // The generated alternate visitor reports the bare member name here, not the full path.
  throw typeError(bareName, alt.name);
}

/**
 * Decodes one value of `type`. `fullName` is the dotted/indexed path used by most texts,
 * `bareName` the member name (or "null" inside lists) used by enum and alternate texts.
 */
function decodeValue(v: QValue, type: ArgType, fullName: string, bareName: string): unknown {
  switch (type.kind) {
    case "int":
      return decodeInt(v, fullName);
    case "uint64":
      if (typeof v === "bigint" && v >= INT64_MIN && v <= UINT64_MAX) {
        return v < 0n ? v + (1n << 64n) : v;
      }
      // Even non-numbers get this text: QEMU's uint64 visitor has a single error path.
      throw genericError(`Parameter '${fullName}' expects uint64`);
    case "str":
      if (typeof v !== "string") throw typeError(fullName, "string");
      return v;
    case "bool":
      if (typeof v !== "boolean") throw typeError(fullName, "boolean");
      return v;
    case "number":
      if (typeof v === "bigint") return Number(v);
      if (typeof v !== "number") throw typeError(fullName, "number");
      return v;
    case "enum":
      return decodeEnum(v, fullName, bareName, type);
    case "alternate":
      return decodeAlternate(v, fullName, bareName, type);
    case "list": {
      if (!Array.isArray(v)) throw typeError(fullName, "array");
      return v.map((item, i) => decodeValue(item, type.of, `${fullName}[${i}]`, "null"));
    }
    case "struct": {
      if (!(v instanceof Map)) throw typeError(fullName, "object");
      return decodeStruct(type.members, v, fullName);
    }
  }
}

/** What a request without `arguments` decodes from; read only. */
const NO_ARGUMENTS: QDict = new Map();

function decodeStruct(
  members: readonly Member[],
  dict: QDict,
  prefix: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let used = 0;
  // An indexed loop, and a member's path only made for a member that is there: this runs for
  // every request, and a booting guest's host may have queued hundreds of resyncs.
  for (let k = 0; k < members.length; k++) {
    const m = members[k];
    const v = dict.get(m.name);
    if (v === undefined) {
      if (m.optional) continue;
      throw genericError(`Parameter '${memberPath(prefix, m.name)}' is missing`);
    }
    out[m.name] = decodeValue(v, m.type, memberPath(prefix, m.name), m.name);
    used++;
  }
  // Leftover members are reported after every known one decoded; with several, QEMU names
  // the first its GLib hash table yields. Only a request with leftovers pays for finding it.
  if (used < dict.size) {
    const consumed = members.filter((m) => dict.has(m.name)).map((m) => m.name);
    const leftover = firstLeftover(qdictOrder([...dict.keys()]), consumed)!;
    throw genericError(`Parameter '${memberPath(prefix, leftover)}' is unexpected`);
  }
  return out;
}

/**
 * Decodes a request's `arguments` object (absent ⇒ empty) against a member list.
 *
 * @example
 * ```ts
 * const args = decodeArguments([{ name: "id", type: t.int }] as const, new Map([["id", 5n]]));
 * // args.id === 5n
 * ```
 */
export function decodeArguments<const M extends readonly Member[]>(
  members: M,
  args: QDict | undefined,
): DecodedMembers<M> {
  return decodeStruct(members, args ?? NO_ARGUMENTS, "") as DecodedMembers<M>;
}
