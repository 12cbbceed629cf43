import { assertEquals } from "../assert.ts";
import { parseStateFile, renderStateFile, StateDir } from "../../lib/state.ts";

Deno.test("qga.state is created with qemu-ga's exact content and counts from 1000", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = new StateDir(dir);
    s.load(false);
    assertEquals(Deno.readTextFileSync(`${dir}/qga.state`), "[global]\nfd_counter=1000\n");
    assertEquals(s.takeHandle(), { handle: 1000n, persisted: true });
    assertEquals(s.takeHandle(), { handle: 1001n, persisted: true });
    assertEquals(Deno.readTextFileSync(`${dir}/qga.state`), "[global]\nfd_counter=1002\n");
    const again = new StateDir(dir);
    again.load(false);
    assertEquals(again.takeHandle().handle, 1002n);
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

Deno.test("key file parsing", () => {
  assertEquals(parseStateFile(renderStateFile(1234n)), 1234n);
  assertEquals(parseStateFile("[other]\nfd_counter=5\n"), undefined);
  assertEquals(parseStateFile("# c\n[global]\n fd_counter = 7 \n"), 7n);
});
