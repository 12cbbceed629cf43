import { assertEquals, assertThrows } from "../assert.ts";
import { KeyFile, parseGInt } from "../../lib/config_file.ts";
import { fdCounterFromKeyFile, renderStateFile, StateDir } from "../../lib/state.ts";

const FIXTURES = new URL("../fixtures/keyfile/", import.meta.url);

Deno.test("qga.state is created with qemu-ga's exact content and counts from 1000", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = new StateDir(dir);
    s.load(false);
    assertEquals(Deno.readTextFileSync(`${dir}/qga.state`), "[global]\nfd_counter=1000\n");
    assertEquals(await s.takeHandle(), { handle: 1000n, persisted: true });
    assertEquals(await s.takeHandle(), { handle: 1001n, persisted: true });
    assertEquals(Deno.readTextFileSync(`${dir}/qga.state`), "[global]\nfd_counter=1002\n");
    const again = new StateDir(dir);
    again.load(false);
    assertEquals((await again.takeHandle()).handle, 1002n);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a frozen start does not create qga.state", async () => {
  const dir = await Deno.makeTempDir();
  try {
    new StateDir(dir).load(true);
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing state directory fails to load", () => {
  let msg = "";
  try {
    new StateDir("/nonexistent-denoga-dir").load(false);
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(
    msg.startsWith("failed to write persistent state to /nonexistent-denoga-dir/qga.state"),
    true,
  );
});

Deno.test("frozen marker lifecycle", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = new StateDir(dir);
    assertEquals(s.frozenMarkerExists(), false);
    assertEquals(s.createFrozenMarker(), undefined);
    assertEquals(s.frozenMarkerExists(), true);
    assertEquals((Deno.statSync(s.frozenMarkerPath).mode ?? 0) & 0o777, 0o600);
    assertEquals(s.removeFrozenMarker(), undefined);
    assertEquals(s.frozenMarkerExists(), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** What qemu-ga 10.2.50 (GLib 2.74) did with each fixture: its first handle, or its log line. */
const STATE_FIXTURES: [string, bigint | string][] = [
  ["int64_max.state", 0n],
  ["plus_spaces.state", 7000n],
  ["duplicate_key.state", 6n],
  ["repeated_group.state", 3n],
  ["int32_max.state", 2147483647n],
  ["int32_overflow.state", 0n],
  ["negative.state", -5n],
  ["trailing_garbage.state", 0n],
  ["trailing_after_tab.state", 12n],
  ["leading_vtab.state", 12n],
  ["trailing_vtab.state", 0n],
  ["empty_value.state", 0n],
  ["other_group.state", 1000n],
  ["empty.state", 1000n],
  ["crlf_comment.state", 8n],
  [
    "garbage.state",
    "Key file contains line “garbage” which is not a key-value pair, group, or comment",
  ],
  ["no_group.state", "Key file does not start with a group"],
  ["bad_encoding.state", "Key file contains unsupported encoding “latin1”"],
];

for (const [name, expected] of STATE_FIXTURES) {
  Deno.test(`state file ${name} loads as qemu-ga loads it`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.copyFile(new URL(name, FIXTURES), `${dir}/qga.state`);
      const before = await Deno.readFile(`${dir}/qga.state`);
      const s = new StateDir(dir);
      if (typeof expected === "string") {
        assertThrows(
          () => s.load(false),
          (e) =>
            (e as Error).message ===
              `error loading persistent state from path: ${dir}/qga.state, ${expected}`,
        );
        // A file qemu-ga refuses is left as it is.
        assertEquals(await Deno.readFile(`${dir}/qga.state`), before);
        return;
      }
      s.load(false);
      assertEquals(await s.takeHandle(), { handle: expected, persisted: true });
      assertEquals(
        await Deno.readTextFile(`${dir}/qga.state`),
        `[global]\nfd_counter=${BigInt.asIntN(32, expected + 1n)}\n`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the counter is written as a 32-bit int, as g_key_file_set_integer writes it", () => {
  assertEquals(renderStateFile(2147483648n), "[global]\nfd_counter=-2147483648\n");
  assertEquals(renderStateFile(1234n), "[global]\nfd_counter=1234\n");
});

Deno.test("parseGInt follows g_key_file_parse_value_as_integer", () => {
  const cases: [string, number | undefined][] = [
    ["7", 7],
    ["+7000 ", 7000],
    ["-2147483648", -2147483648],
    ["2147483647", 2147483647],
    ["2147483648", undefined],
    ["-2147483649", undefined],
    ["99999999999999999999999", undefined],
    ["", undefined],
    ["+", undefined],
    ["+-3", undefined],
    ["0x10", undefined],
    ["12 abc", 12],
    ["12\vabc", undefined],
    ["\v12", 12],
  ];
  for (const [raw, want] of cases) assertEquals(parseGInt(raw), want, JSON.stringify(raw));
});

Deno.test("fdCounterFromKeyFile: the default without the key, 0 for an unreadable value", () => {
  const parse = (s: string) => KeyFile.parse(new TextEncoder().encode(s));
  assertEquals(fdCounterFromKeyFile(parse("")), 1000n);
  assertEquals(fdCounterFromKeyFile(parse("[global]\nfd_counter=x\n")), 0n);
  assertEquals(fdCounterFromKeyFile(parse("[global]\nfd_counter=9\n")), 9n);
});
