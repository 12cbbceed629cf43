import { assertEquals, assertThrows } from "../assert.ts";
import { decodeArguments } from "../../lib/dispatch/decode.ts";
import { t } from "../../lib/dispatch/schema.ts";
import { QgaError } from "../../lib/errors.ts";
import type { QDict, QValue } from "../../lib/protocol/value.ts";

const dict = (o: Record<string, QValue>): QDict => new Map(Object.entries(o));

function failsWith(fn: () => unknown, desc: string) {
  assertThrows(fn, (e: unknown) => {
    assertEquals(e instanceof QgaError && e.klass, "GenericError");
    assertEquals((e as QgaError).desc, desc);
    return true;
  });
}

const SYNC = [{ name: "id", type: t.int }] as const;
const READ = [{ name: "handle", type: t.int }, {
  name: "count",
  type: t.int,
  optional: true,
}] as const;
const SEEK = [
  { name: "handle", type: t.int },
  { name: "offset", type: t.int },
  {
    name: "whence",
    type: t.alternate("GuestFileWhence", t.int, t.enumOf("QGASeek", ["set", "cur", "end"])),
  },
] as const;

Deno.test("int members: exact int64 range, no floats, no uint64 above INT64_MAX", () => {
  assertEquals(decodeArguments(SYNC, dict({ id: 9223372036854775807n })).id, 9223372036854775807n);
  assertEquals(decodeArguments(SYNC, dict({ id: -9223372036854775808n })).id, -(1n << 63n));
  for (const bad of [9223372036854775808n, 1.0, 1.5, true, "1", null]) {
    failsWith(
      () => decodeArguments(SYNC, dict({ id: bad })),
      "Invalid parameter type for 'id', expected: integer",
    );
  }
});

Deno.test("missing and unexpected members", () => {
  failsWith(() => decodeArguments(SYNC, undefined), "Parameter 'id' is missing");
  failsWith(() => decodeArguments([], dict({ foo: 42n })), "Parameter 'foo' is unexpected");
  // Known members are decoded (and their errors reported) before leftovers.
  failsWith(
    () => decodeArguments(SYNC, dict({ foo: 1n, id: "x" })),
    "Invalid parameter type for 'id', expected: integer",
  );
  failsWith(
    () => decodeArguments(SYNC, dict({ id: 1n, foo: 1n })),
    "Parameter 'foo' is unexpected",
  );
});

Deno.test("optional members may be absent; present null is a type error", () => {
  assertEquals(decodeArguments(READ, dict({ handle: 1000n })), { handle: 1000n });
  failsWith(
    () => decodeArguments(READ, dict({ handle: 1000n, count: null })),
    "Invalid parameter type for 'count', expected: integer",
  );
});

Deno.test("alternate GuestFileWhence: int, enum name, or a type error naming the alternate", () => {
  const base = { handle: 1n, offset: 0n };
  assertEquals(decodeArguments(SEEK, dict({ ...base, whence: 2n })).whence, {
    branch: "scalar",
    value: 2n,
  });
  assertEquals(decodeArguments(SEEK, dict({ ...base, whence: "cur" })).whence, {
    branch: "enum",
    value: "cur",
  });
  failsWith(
    () => decodeArguments(SEEK, dict({ ...base, whence: "bogus" })),
    "Parameter 'whence' does not accept value 'bogus'",
  );
  failsWith(
    () => decodeArguments(SEEK, dict({ ...base, whence: 1.5 })),
    "Invalid parameter type for 'whence', expected: integer",
  );
  for (const bad of [true, null, [], new Map()]) {
    failsWith(
      () => decodeArguments(SEEK, dict({ ...base, whence: bad as QValue })),
      "Invalid parameter type for 'whence', expected: GuestFileWhence",
    );
  }
});

Deno.test("lists and structs use indexed, dotted paths", () => {
  const LIST = [{ name: "mountpoints", type: t.list(t.str), optional: true }] as const;
  assertEquals(decodeArguments(LIST, dict({ mountpoints: ["/a", "/b"] })).mountpoints, [
    "/a",
    "/b",
  ]);
  failsWith(
    () => decodeArguments(LIST, dict({ mountpoints: ["/a", 1n] })),
    "Invalid parameter type for 'mountpoints[1]', expected: string",
  );
  failsWith(
    () => decodeArguments(LIST, dict({ mountpoints: "/a" })),
    "Invalid parameter type for 'mountpoints', expected: array",
  );
  const CPU = t.struct("GuestLogicalProcessor", [
    { name: "logical-id", type: t.int },
    { name: "online", type: t.bool },
    { name: "can-offline", type: t.bool, optional: true },
  ]);
  const VCPUS = [{ name: "vcpus", type: t.list(CPU) }] as const;
  failsWith(
    () => decodeArguments(VCPUS, dict({ vcpus: [dict({ "logical-id": 0n })] })),
    "Parameter 'vcpus[0].online' is missing",
  );
  failsWith(
    () => decodeArguments(VCPUS, dict({ vcpus: [dict({ "logical-id": 0n, online: 1n })] })),
    "Invalid parameter type for 'vcpus[0].online', expected: boolean",
  );
  failsWith(
    () => decodeArguments(VCPUS, dict({ vcpus: [1n] })),
    "Invalid parameter type for 'vcpus[0]', expected: object",
  );
  failsWith(
    () =>
      decodeArguments(VCPUS, dict({ vcpus: [dict({ "logical-id": 0n, online: true, x: 1n })] })),
    "Parameter 'vcpus[0].x' is unexpected",
  );
});

Deno.test("uint64 wraps negative int64 and rejects everything else with one text", () => {
  const U = [{ name: "phys-index", type: t.uint64 }] as const;
  assertEquals(decodeArguments(U, dict({ "phys-index": -1n }))["phys-index"], (1n << 64n) - 1n);
  assertEquals(
    decodeArguments(U, dict({ "phys-index": (1n << 64n) - 1n }))["phys-index"],
    (1n << 64n) - 1n,
  );
  for (const bad of [1.5, "1", true]) {
    failsWith(
      () => decodeArguments(U, dict({ "phys-index": bad })),
      "Parameter 'phys-index' expects uint64",
    );
  }
});

Deno.test("number and bool members", () => {
  const N = [{ name: "n", type: t.number }, { name: "b", type: t.bool }] as const;
  assertEquals(decodeArguments(N, dict({ n: 3n, b: false })), { n: 3, b: false });
  failsWith(
    () => decodeArguments(N, dict({ n: "3", b: false })),
    "Invalid parameter type for 'n', expected: number",
  );
  failsWith(
    () => decodeArguments(N, dict({ n: 3, b: 0n })),
    "Invalid parameter type for 'b', expected: boolean",
  );
});
