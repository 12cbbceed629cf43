/**
 * Writer (qemu-ga-behaviour.md §2.7): compact layout, string escaping, `%.17g` doubles and
 * QEMU's QDict member order. Expectations come from the reference, the 7.2 captures, and
 * differential runs against qemu-ga 7.2.22 and glibc printf.
 */
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { bucketOf, formatDouble, quote, tdbHash, toJson } from "../../lib/protocol/writer.ts";
import type { QDict, QValue, ReplyValue } from "../../lib/protocol/value.ts";

/** Member names of a serialized object, in output order (top level only, flat objects). */
function keysOf(json: string): string[] {
  return [...json.matchAll(/"((?:[^"\\]|\\.)*)": /g)].map((m) => m[1]);
}

/** A plain object whose properties are inserted in `keys` order. */
function objectOf(keys: string[]): Record<string, ReplyValue> {
  const o: Record<string, ReplyValue> = {};
  for (const k of keys) o[k] = 0n;
  return o;
}

// §2.7 "Precomputed orders": [struct, serialized member order].
const ORDER_TABLE: [string, string[]][] = [
  ["envelope (success)", ["return", "id"]],
  ["envelope (error)", ["id", "error"]],
  ["error object", ["class", "desc"]],
  ["GuestAgentInfo", ["version", "supported_commands"]],
  ["GuestAgentCommandInfo", ["enabled", "name", "success-response"]],
  ["GuestFileRead", ["count", "buf-b64", "eof"]],
  ["GuestFileWrite", ["count", "eof"]],
  ["GuestFileSeek", ["eof", "position"]],
  ["GuestFilesystemTrimResult", ["minimum", "path", "trimmed", "error"]],
  ["GuestIpAddress", ["ip-address-type", "ip-address", "prefix"]],
  ["GuestNetworkInterfaceStat", [
    "tx-packets",
    "tx-errs",
    "rx-bytes",
    "rx-dropped",
    "rx-packets",
    "rx-errs",
    "tx-bytes",
    "tx-dropped",
  ]],
  ["GuestNetworkInterface", ["name", "ip-addresses", "statistics", "hardware-address"]],
  ["GuestLogicalProcessor", ["online", "can-offline", "logical-id"]],
  ["GuestPCIAddress", ["bus", "slot", "domain", "function"]],
  ["GuestCCWAddress", ["cssid", "ssid", "subchno", "devno"]],
  ["GuestDiskAddress", [
    "ccw-address",
    "serial",
    "bus-type",
    "bus",
    "unit",
    "pci-controller",
    "dev",
    "target",
  ]],
  ["GuestDiskInfo", ["name", "smart", "dependencies", "partition", "address", "alias"]],
  ["GuestFilesystemInfo", [
    "name",
    "total-bytes",
    "total-bytes-privileged",
    "mountpoint",
    "disk",
    "used-bytes",
    "type",
  ]],
  ["GuestMemoryBlock", ["online", "can-offline", "phys-index"]],
  ["GuestMemoryBlockResponse", ["response", "error-code", "phys-index"]],
  ["GuestMemoryBlockInfo", ["size"]],
  ["GuestExecStatus", [
    "exitcode",
    "err-data",
    "out-data",
    "err-truncated",
    "signal",
    "out-truncated",
    "exited",
  ]],
  ["GuestExec", ["pid"]],
  ["GuestHostName", ["host-name"]],
  ["GuestUser", ["login-time", "domain", "user"]],
  ["GuestTimezone", ["zone", "offset"]],
  ["GuestOSInfo", [
    "name",
    "kernel-release",
    "version",
    "variant",
    "pretty-name",
    "version-id",
    "variant-id",
    "kernel-version",
    "machine",
    "id",
  ]],
  ["GuestAuthorizedKeys", ["keys"]],
  ["GuestDiskStats", [
    "discard-sectors",
    "write-ios",
    "discard-ios",
    "discard-ticks",
    "weight-ticks",
    "read-ios",
    "flush-ios",
    "write-sectors",
    "write-merges",
    "write-ticks",
    "ios-pgr",
    "read-sectors",
    "read-merges",
    "total-ticks",
    "discard-merges",
    "flush-ticks",
    "read-ticks",
  ]],
  ["GuestDiskStatsInfo", ["name", "stats", "minor", "major"]],
  ["GuestCpuStats (linux)", [
    "cpu",
    "guestnice",
    "idle",
    "steal",
    "iowait",
    "system",
    "guest",
    "nice",
    "irq",
    "type",
    "user",
    "softirq",
  ]],
  ["GuestNetworkRoute", [
    "flags",
    "source",
    "metric",
    "refcnt",
    "window",
    "version",
    "nexthop",
    "iface",
    "destination",
    "desprefixlen",
    "irtt",
    "gateway",
    "srcprefixlen",
    "use",
    "mtu",
    "mask",
  ]],
  ["GuestDeviceId(pci)", ["device-id", "vendor-id", "type"]],
];

// Structs whose members share hash buckets: the order then depends on insertion, which is the
// schema order (union base first). [struct, schema order, serialized order].
const COLLIDING: [string, string[], string[]][] = [
  ["GuestLoadAverage", ["load1m", "load5m", "load15m"], ["load15m", "load5m", "load1m"]],
  ["GuestDeviceInfo", ["driver-name", "driver-date", "driver-version", "id"], [
    "driver-date",
    "driver-name",
    "driver-version",
    "id",
  ]],
  ["GuestDiskSmart (nvme)", [
    "type",
    "critical-warning",
    "temperature",
    "available-spare",
    "available-spare-threshold",
    "percentage-used",
    "data-units-read-lo",
    "data-units-read-hi",
    "data-units-written-lo",
    "data-units-written-hi",
    "host-read-commands-lo",
    "host-read-commands-hi",
    "host-write-commands-lo",
    "host-write-commands-hi",
    "controller-busy-time-lo",
    "controller-busy-time-hi",
    "power-cycles-lo",
    "power-cycles-hi",
    "power-on-hours-lo",
    "power-on-hours-hi",
    "unsafe-shutdowns-lo",
    "unsafe-shutdowns-hi",
    "media-errors-lo",
    "media-errors-hi",
    "number-of-error-log-entries-lo",
    "number-of-error-log-entries-hi",
  ], [
    "available-spare",
    "host-write-commands-hi",
    "temperature",
    "power-on-hours-lo",
    "host-read-commands-hi",
    "host-read-commands-lo",
    "number-of-error-log-entries-hi",
    "unsafe-shutdowns-hi",
    "unsafe-shutdowns-lo",
    "host-write-commands-lo",
    "available-spare-threshold",
    "power-on-hours-hi",
    "controller-busy-time-hi",
    "controller-busy-time-lo",
    "data-units-read-hi",
    "data-units-read-lo",
    "power-cycles-hi",
    "power-cycles-lo",
    "media-errors-hi",
    "media-errors-lo",
    "data-units-written-hi",
    "data-units-written-lo",
    "type",
    "critical-warning",
    "percentage-used",
    "number-of-error-log-entries-lo",
  ]],
];

Deno.test("writer: member order table of §2.7, whatever the insertion order", () => {
  for (const [name, order] of ORDER_TABLE) {
    for (const insertion of [order, [...order].reverse()]) {
      deepStrictEqual(keysOf(toJson(objectOf(insertion))), order, `${name} (plain object)`);
      const map: QDict = new Map(insertion.map((k) => [k, null]));
      deepStrictEqual(keysOf(toJson(map)), order, `${name} (Map)`);
    }
  }
});

Deno.test("writer: same-bucket members come most recently inserted first", () => {
  for (const [name, schema, order] of COLLIDING) {
    deepStrictEqual(keysOf(toJson(objectOf(schema))), order, name);
  }
  strictEqual(bucketOf("load5m"), bucketOf("load1m"));
  // 300 keys k0..k299 inserted in numeric order (checked against qemu-ga 7.2.22 via `id`).
  const m: QDict = new Map();
  for (let k = 0; k < 300; k++) m.set(`k${k}`, BigInt(k));
  const expected =
    "5,29,28,27,26,25,24,23,22,21,20,8,59,58,57,56,55,54,53,52,51,50,299,298,297,296,295,294,293," +
    "292,291,290,289,288,287,286,285,284,283,282,281,280,279,278,277,276,275,274,273,272,271,270," +
    "269,268,267,266,265,264,263,262,261,260,259,258,257,256,255,254,253,252,251,250,249,248,247," +
    "246,245,244,243,242,241,240,239,238,237,236,235,234,233,232,231,230,229,228,227,226,225,224," +
    "223,222,221,220,219,218,217,216,215,214,213,212,211,210,209,208,207,206,205,204,203,202,201," +
    "200,89,88,87,86,85,84,83,82,81,80,1,4,19,18,17,16,15,14,13,12,11,10,7,49,48,47,46,45,44,43," +
    "42,41,40,199,198,197,196,195,194,193,192,191,190,189,188,187,186,185,184,183,182,181,180,179," +
    "178,177,176,175,174,173,172,171,170,169,168,167,166,165,164,163,162,161,160,159,158,157,156," +
    "155,154,153,152,151,150,149,148,147,146,145,144,143,142,141,140,139,138,137,136,135,134,133," +
    "132,131,130,129,128,127,126,125,124,123,122,121,120,119,118,117,116,115,114,113,112,111,110," +
    "109,108,107,106,105,104,103,102,101,100,79,78,77,76,75,74,73,72,71,70,0,3,6,39,38,37,36,35," +
    "34,33,32,31,30,9,69,68,67,66,65,64,63,62,61,60,99,98,97,96,95,94,93,92,91,90,2";
  deepStrictEqual(keysOf(toJson(m)).map((k) => k.slice(1)).join(","), expected);
});

Deno.test("writer: keys hash as modified UTF-8 (U+0000 is C0 80), checked against qemu-ga", () => {
  const m: QDict = new Map([
    ["b", 1n],
    ["a", 2n],
    ["execute", 3n],
    ["id", 4n],
    ["return", 5n],
    ["error", 6n],
    ["class", 7n],
    ["desc", 8n],
  ]);
  strictEqual(
    toJson(m),
    '{"class": 7, "a": 2, "execute": 3, "b": 1, "desc": 8, "return": 5, "id": 4, "error": 6}',
  );
  const u: QDict = new Map([["a\u0000", 1n], ["a\u0000b", 2n], ["é", 3n]]);
  strictEqual(toJson(u), '{"\\u00E9": 3, "a\\u0000": 1, "a\\u0000b": 2}');
  // The hash is unsigned 32-bit.
  strictEqual(tdbHash("") >>> 0, tdbHash(""));
  strictEqual(tdbHash(""), 12345);
});

Deno.test("writer: envelopes and structs from the 7.2 captures", () => {
  const cases: [ReplyValue, string][] = [
    [{ return: {} }, '{"return": {}}'],
    [{ id: 1n, return: {} }, '{"return": {}, "id": 1}'],
    [{ return: 12345n }, '{"return": 12345}'],
    [
      { error: { class: "CommandNotFound", desc: "The command nope has not been found" }, id: 5n },
      '{"id": 5, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}',
    ],
    [
      { error: { class: "GenericError", desc: "JSON parse error, stray '\uFFFD'" } },
      `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\\uFFFD'"}}`,
    ],
    [
      { error: { class: "GenericError", desc: "handle '1000' has not been found" } },
      `{"error": {"class": "GenericError", "desc": "handle '1000' has not been found"}}`,
    ],
    [
      { return: { count: 16n, "buf-b64": "aGVsbG8gcWdhCmxpbmUyCg==", eof: true } },
      '{"return": {"count": 16, "buf-b64": "aGVsbG8gcWdhCmxpbmUyCg==", "eof": true}}',
    ],
    [
      { return: { count: 0n, "buf-b64": "", eof: true } },
      '{"return": {"count": 0, "buf-b64": "", "eof": true}}',
    ],
    [{ return: { position: 10n, eof: false } }, '{"return": {"eof": false, "position": 10}}'],
    [{ return: { count: 16n, eof: false } }, '{"return": {"count": 16, "eof": false}}'],
    [{ return: { "host-name": "vm" } }, '{"return": {"host-name": "vm"}}'],
    [{ return: { zone: "UTC", offset: 0n } }, '{"return": {"zone": "UTC", "offset": 0}}'],
    [
      { return: { exitcode: 0n, exited: true, "out-data": "aGkK", "out-truncated": false } },
      '{"return": {"exitcode": 0, "out-data": "aGkK", "out-truncated": false, "exited": true}}',
    ],
    [{ return: 1795549550176350000n }, '{"return": 1795549550176350000}'],
    [
      {
        return: {
          version: "7.2.22",
          supported_commands: [
            { name: "guest-get-devices", enabled: false, "success-response": true },
            { name: "guest-suspend-hybrid", enabled: true, "success-response": false },
          ],
        },
      },
      '{"return": {"version": "7.2.22", "supported_commands": [{"enabled": false, "name": ' +
      '"guest-get-devices", "success-response": true}, {"enabled": true, "name": ' +
      '"guest-suspend-hybrid", "success-response": false}]}}',
    ],
    [
      {
        return: {
          id: "debian",
          name: "Debian GNU/Linux",
          "pretty-name": "Debian GNU/Linux 12 (bookworm)",
          "version-id": "12",
          version: "12 (bookworm)",
          "kernel-release": "6.18.44-fc-v509",
          "kernel-version": "#1 SMP PREEMPT_DYNAMIC @0",
          machine: "x86_64",
          variant: undefined,
          "variant-id": undefined,
        },
      },
      '{"return": {"name": "Debian GNU/Linux", "kernel-release": "6.18.44-fc-v509", "version": ' +
      '"12 (bookworm)", "pretty-name": "Debian GNU/Linux 12 (bookworm)", "version-id": "12", ' +
      '"kernel-version": "#1 SMP PREEMPT_DYNAMIC @0", "machine": "x86_64", "id": "debian"}}',
    ],
  ];
  for (const [v, text] of cases) strictEqual(toJson(v), text);
});

Deno.test("writer: layout of scalars and containers", () => {
  strictEqual(toJson(null), "null");
  strictEqual(toJson(true), "true");
  strictEqual(toJson(false), "false");
  strictEqual(toJson([]), "[]");
  strictEqual(toJson({}), "{}");
  strictEqual(toJson(new Map()), "{}");
  strictEqual(toJson({ a: undefined }), "{}");
  strictEqual(toJson([1n, [2n, []], { x: null }]), '[1, [2, []], {"x": null}]');
  strictEqual(toJson(-9223372036854775808n), "-9223372036854775808");
  strictEqual(toJson(18446744073709551615n), "18446744073709551615");
  const nested: QValue = new Map<string, QValue>([["a", [1n, null, true, "x"]]]);
  strictEqual(toJson(nested), '{"a": [1, null, true, "x"]}');
});

Deno.test("writer: string escaping (pure ASCII output)", () => {
  const cases: [string, string][] = [
    ["", '""'],
    ["plain / text <>&'", `"plain / text <>&'"`],
    ['"\\', '"\\"\\\\"'],
    ["\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'],
    ["\u0000\u0001\u001f\u007f", '"\\u0000\\u0001\\u001F\\u007F"'],
    ["é€\u00a0\uabcd", '"\\u00E9\\u20AC\\u00A0\\uABCD"'],
    ["\u{1F600}\u{10FFFD}", '"\\uD83D\\uDE00\\uDBFF\\uDFFD"'],
    ["\u201Cquoted\u201D", '"\\u201Cquoted\\u201D"'],
    ["\uFFFD", '"\\uFFFD"'],
    // Not representable in QEMU's strings: shown as U+FFFD, as its writer does for bad UTF-8.
    ["a\ud83db", '"a\\uFFFDb"'],
    ["\ude00x", '"\\uFFFDx"'],
    ["x\ud83d", '"x\\uFFFD"'],
    ["\ufdd0\ufdef\ufffe\uffff", '"\\uFFFD\\uFFFD\\uFFFD\\uFFFD"'],
    ["\u{1FFFE}\u{10FFFF}\u{2FFFF}", '"\\uFFFD\\uFFFD\\uFFFD"'],
    ["\ufdcf\ufdf0\ufffd", '"\\uFDCF\\uFDF0\\uFFFD"'],
  ];
  for (const [s, text] of cases) {
    strictEqual(quote(s), text, JSON.stringify(s));
    strictEqual(toJson(s), text);
  }
  const long = "A".repeat(100000) + "\n" + "b".repeat(100000);
  strictEqual(toJson(long), '"' + "A".repeat(100000) + "\\n" + "b".repeat(100000) + '"');
  // Keys are escaped the same way.
  strictEqual(toJson({ "a\tb": 1n }), '{"a\\tb": 1}');
});

Deno.test("writer: doubles as C %.17g", () => {
  const cases: [number, string][] = [
    [0.1, "0.10000000000000001"],
    [1e2, "100"],
    [1, "1"],
    [-0, "-0"],
    [0, "0"],
    [1e-5, "1.0000000000000001e-05"],
    [0.01, "0.01"],
    [0.0001, "0.0001"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
    [NaN, "nan"],
    [-1.2345678901234567e19, "-1.2345678901234567e+19"],
    [18446744073709551616, "1.8446744073709552e+19"],
    [1e16, "10000000000000000"],
    [1e17, "1e+17"],
    [123456789012345678, "1.2345678901234568e+17"],
    [5e-324, "4.9406564584124654e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
    [1.5, "1.5"],
    [0.3, "0.29999999999999999"],
    [4.35, "4.3499999999999996"],
    [1e21, "1e+21"],
    [1.23e-18, "1.23e-18"],
    [1.5e300, "1.5000000000000001e+300"],
    [0.25, "0.25"],
    [2.5, "2.5"],
    [100.125, "100.125"],
    [0.5, "0.5"],
    // Exact ties at the 17th digit round to even, as glibc does (JS would round up).
    [2 ** -25, "2.9802322387695312e-08"],
    [1049 * 2 ** -20, "0.0010004043579101562"],
    [213 * 2 ** -21, "0.00010156631469726562"],
    [45 * 2 ** -22, "1.0728836059570312e-05"],
    [3 * 2 ** -27, "2.2351741790771484e-08"], // not a tie: plain rounding
  ];
  for (const [x, text] of cases) strictEqual(formatDouble(x), text, String(x));
  // A negative NaN (sign bit set) prints as glibc does.
  const f = new Float64Array([NaN]);
  new Uint8Array(f.buffer)[7] |= 0x80;
  strictEqual(formatDouble(f[0]), "-nan");
  strictEqual(toJson([0.5, 1n, -0]), "[0.5, 1, -0]");
});
