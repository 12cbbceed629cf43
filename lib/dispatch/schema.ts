/**
 * QAPI argument types as data. A command declares its arguments once with these descriptors;
 * the decoder (`decode.ts`) validates a request against them with qemu-ga's exact texts, and
 * the TypeScript type of the decoded arguments is derived from the same declaration.
 *
 * @module
 */

import type { VerbatimString } from "../protocol/value.ts";

/** `int` (int64): JSON integers in int64 range only. */
export interface IntType {
  readonly kind: "int";
}
/** `uint64`: any JSON integer in uint64, and negative int64 values (wrapped, as QEMU does). */
export interface Uint64Type {
  readonly kind: "uint64";
}
/** `str`. */
export interface StrType {
  readonly kind: "str";
}
/** `bool`. */
export interface BoolType {
  readonly kind: "bool";
}
/** `number`: any JSON number, as a double. */
export interface NumberType {
  readonly kind: "number";
}
/** A QAPI enum: a string from a fixed set. */
export interface EnumType<V extends string = string> {
  readonly kind: "enum";
  readonly name: string;
  readonly values: readonly V[];
}
/** A list of one element type. */
export interface ListType<T extends ArgType = ArgType> {
  readonly kind: "list";
  readonly of: T;
}
/** A struct with named members. */
export interface StructType<M extends readonly Member[] = readonly Member[]> {
  readonly kind: "struct";
  readonly name: string;
  readonly members: M;
}
/**
 * A QAPI alternate of a scalar and an enum (GuestFileWhence: int or QGASeek;
 * GuestExecCaptureOutput: bool or GuestExecCaptureOutputMode).
 */
export interface AlternateType<S extends IntType | BoolType = IntType | BoolType> {
  readonly kind: "alternate";
  readonly name: string;
  readonly scalar: S;
  readonly enumType: EnumType;
}

/** Every argument type the decoder understands. */
export type ArgType =
  | IntType
  | Uint64Type
  | StrType
  | BoolType
  | NumberType
  | EnumType
  | ListType
  | StructType
  | AlternateType;

/** One member of an argument struct. */
export interface Member {
  readonly name: string;
  readonly type: ArgType;
  readonly optional?: boolean;
}

/** The decoded value of an alternate: which branch matched, and its value. */
export type AlternateValue<S> =
  | { readonly branch: "scalar"; readonly value: S }
  | { readonly branch: "enum"; readonly value: string };

/** The TypeScript type of a decoded value of `T`. */
export type Decoded<T extends ArgType> = T extends IntType ? bigint
  : T extends Uint64Type ? bigint
  : T extends StrType ? string
  : T extends BoolType ? boolean
  : T extends NumberType ? number
  : T extends EnumType<infer V> ? V
  : T extends ListType<infer E> ? Decoded<E>[]
  : T extends StructType<infer M> ? DecodedMembers<M>
  : T extends AlternateType<infer S> ? AlternateValue<S extends IntType ? bigint : boolean>
  : never;

/** The decoded arguments object of a member list. */
export type DecodedMembers<M extends readonly Member[]> =
  & {
    [K in M[number] as K["optional"] extends true ? never : K["name"]]: Decoded<K["type"]>;
  }
  & {
    [K in M[number] as K["optional"] extends true ? K["name"] : never]?: Decoded<K["type"]>;
  };

/**
 * The TypeScript type a handler returns for a value declared as `T`: integers may be `bigint`
 * or `number` (the writer prints both exactly), strings may be verbatim (base64), optional struct
 * members may be absent or undefined (the writer omits them).
 */
export type Returned<T extends ArgType> = T extends IntType | Uint64Type ? bigint | number
  : T extends StrType ? string | VerbatimString
  : T extends BoolType ? boolean
  : T extends NumberType ? number
  : T extends EnumType<infer V> ? V
  : T extends ListType<infer E> ? readonly Returned<E>[]
  : T extends StructType<infer M> ? ReturnedMembers<M>
  : never;

/** The returned object of a member list (output structs). */
export type ReturnedMembers<M extends readonly Member[]> =
  & {
    readonly [K in M[number] as K["optional"] extends true ? never : K["name"]]: Returned<
      K["type"]
    >;
  }
  & {
    readonly [K in M[number] as K["optional"] extends true ? K["name"] : never]?:
      | Returned<K["type"]>
      | undefined;
  };

/** Descriptor constructors, so declarations read like the QAPI schema. */
export const t = {
  int: { kind: "int" } as IntType,
  uint64: { kind: "uint64" } as Uint64Type,
  str: { kind: "str" } as StrType,
  bool: { kind: "bool" } as BoolType,
  number: { kind: "number" } as NumberType,
  enumOf<V extends string>(name: string, values: readonly V[]): EnumType<V> {
    return { kind: "enum", name, values };
  },
  list<T extends ArgType>(of: T): ListType<T> {
    return { kind: "list", of };
  },
  struct<const M extends readonly Member[]>(name: string, members: M): StructType<M> {
    return { kind: "struct", name, members };
  },
  alternate<S extends IntType | BoolType>(
    name: string,
    scalar: S,
    enumType: EnumType,
  ): AlternateType<S> {
    return { kind: "alternate", name, scalar, enumType };
  },
};
