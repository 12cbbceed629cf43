/**
 * guest-get-diskstats and guest-get-cpustats over a fake /proc in a temp dir: QAPI members,
 * ticks to milliseconds, the wire order of members, and the file error texts.
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { guestGetCpustats, guestGetDiskstats } from "../../lib/commands/stats.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import { osFiles } from "../../lib/platform/files.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import type { ReplyValue } from "../../lib/protocol/value.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import { StateDir } from "../../lib/state.ts";

async function withProc(
  files: Record<string, string>,
  fn: (agent: Agent, logged: string[]) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denoga-proc-" });
  try {
    await Deno.mkdir(`${root}/proc`);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${root}/proc/${name}`, text);
    }
    const logged: string[] = [];
    const agent = new Agent({
      table: commandTable(),
      options: { blockedRpcs: [] },
      state: new StateDir("/nonexistent"),
      log: new Logger({ verbose: true, sink: { write: (l) => void logged.push(l) } }),
      platform: fakePlatform({ os: osFiles(root) }),
    });
    await fn(agent, logged);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const isQga = (desc: string) => (e: unknown) => e instanceof QgaError && e.desc === desc;

Deno.test("diskstats: QAPI members by field count, in qemu-ga's wire order", async () => {
  const text = " 259 0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n" +
    "   3 1 hda1 35486 38030 38031 38032\n   8 0 sdb 1 2 3 4 5 6 7\n";
  await withProc({ diskstats: text }, async (agent) => {
    const reply = await guestGetDiskstats.run({}, agent);
    assertEquals(
      toJson(reply as ReplyValue),
      '[{"name": "nvme0n1", "stats": {"discard-sectors": 14, "write-ios": 5, ' +
        '"discard-ios": 12, "discard-ticks": 15, "weight-ticks": 11, "read-ios": 1, ' +
        '"flush-ios": 16, "write-sectors": 7, "write-merges": 6, "write-ticks": 8, ' +
        '"ios-pgr": 9, "read-sectors": 3, "read-merges": 2, "total-ticks": 10, ' +
        '"discard-merges": 13, "flush-ticks": 17, "read-ticks": 4}, "minor": 0, "major": 259}, ' +
        '{"name": "hda1", "stats": {"write-ios": 38031, "read-ios": 35486, ' +
        '"write-sectors": 38032, "read-sectors": 38030}, "minor": 1, "major": 3}, ' +
        '{"name": "sdb", "stats": {}, "minor": 0, "major": 8}]',
    );
  });
});

Deno.test("cpustats: ticks to ms (×1000/100, unsigned wrap), members by column count", async () => {
  const text = "cpu  1 2 3 4 5 6 7 8 9 10\n" +
    "cpu0 123 0 7 18446744073709551615 1 2 3 4 5 6\n" +
    "cpu3 1 2 3 4 5\n" +
    "intr 5 6\n";
  await withProc({ stat: text }, async (agent, logged) => {
    const reply = await guestGetCpustats.run({}, agent);
    const wrapped = BigInt.asUintN(64, ((1n << 64n) - 1n) * 1000n) / 100n;
    assertEquals(
      toJson(reply as ReplyValue),
      `[{"cpu": 0, "guestnice": 60, "idle": ${wrapped}, "steal": 40, "iowait": 10, ` +
        '"system": 70, "guest": 50, "nice": 0, "irq": 20, "type": "linux", "user": 1230, ' +
        '"softirq": 30}, ' +
        '{"cpu": 3, "idle": 40, "iowait": 50, "system": 30, "nice": 20, "type": "linux", ' +
        '"user": 10}]',
    );
    assertEquals(logged, []);
  });
});

Deno.test("cpustats: a short cpuN line ends the list, logged", async () => {
  await withProc({ stat: "cpu0 1 2 3 4\ncpu1 1 2 3\ncpu2 1 2 3 4\n" }, async (agent, logged) => {
    assertEquals((await guestGetCpustats.run({}, agent) as unknown[]).length, 1);
    assertEquals(logged.length, 1);
    assertEquals(
      logged[0].endsWith(': info: Parsing cpu stat from /proc/stat failed, see "man proc"\n'),
      true,
    );
  });
});

Deno.test("missing files: qemu-ga's open texts", async () => {
  await withProc({}, async (agent) => {
    await assertRejects(
      async () => await guestGetDiskstats.run({}, agent),
      isQga("Could not open '/proc/diskstats': No such file or directory"),
    );
    await assertRejects(
      async () => await guestGetCpustats.run({}, agent),
      isQga("Could not open '/proc/stat': No such file or directory"),
    );
  });
});
