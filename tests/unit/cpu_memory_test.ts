/**
 * guest-get/set-vcpus and the memory block commands over a fake /sys laid out in a temp dir
 * (`osFiles(root)`): replies, exact error texts and codes, and the bytes written. `/dev/full`
 * stands in for an attribute whose store fails (reads give NULs, writes ENOSPC).
 */

import { assertEquals, assertRejects } from "../assert.ts";
import { Agent } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import {
  guestGetMemoryBlockInfo,
  guestGetMemoryBlocks,
  guestGetVcpus,
  guestSetMemoryBlocks,
  guestSetVcpus,
} from "../../lib/commands/cpu_memory.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import { type OsFiles, osFiles } from "../../lib/platform/files.ts";
import { fakePlatform } from "../../lib/platform/mod.ts";
import { StateDir } from "../../lib/state.ts";

const dec = new TextDecoder();

/** A file (string content), a directory (object), or a symbolic link. */
type Tree = { [name: string]: string | Tree | { link: string } };

async function lay(dir: string, tree: Tree): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, v] of Object.entries(tree)) {
    const path = `${dir}/${name}`;
    if (typeof v === "string") await Deno.writeTextFile(path, v);
    else if ("link" in v && typeof v.link === "string") await Deno.symlink(v.link, path);
    else await lay(path, v as Tree);
  }
}

/** A fake root with `tree` under /sys/devices/system, and the writes the commands made. */
async function withSys(
  tree: Tree,
  fn: (agent: Agent, writes: string[], root: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denoga-sysfs-" });
  try {
    await lay(`${root}/sys/devices/system`, tree);
    const real = osFiles(root);
    const writes: string[] = [];
    const os: OsFiles = {
      ...real,
      writeInPlace: (path, data) => {
        writes.push(`${path} <- ${dec.decode(data)}`);
        return real.writeInPlace(path, data);
      },
      writeFile: () => Promise.reject(new Error("commands store attributes in place")),
    };
    const agent = new Agent({
      table: commandTable(),
      options: { blockedRpcs: [] },
      state: new StateDir("/nonexistent"),
      log: new Logger({ verbose: false, sink: { write() {} } }),
      platform: fakePlatform({ os }),
    });
    await fn(agent, writes, root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const isQga = (desc: string) => (e: unknown) => {
  if (e instanceof QgaError && e.desc === desc && e.klass === "GenericError") return true;
  throw new Error(`expected GenericError "${desc}", got ${e instanceof QgaError ? e.desc : e}`);
};

/** Directory order of the fake tree, which get-vcpus and get-memory-blocks must follow. */
async function dirOrder(path: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  return names;
}

const CPUS: Tree = {
  cpu: {
    cpu0: { topology: {} }, // no `online`: the boot processor
    cpu1: { online: "1\n" },
    cpu2: { online: "0\n" },
    cpu01: {}, // looked up as cpu1
    cpufreq: {},
    cpuidle: {},
    online: "0-1\n",
    kernel_max: "8191\n",
  },
};

Deno.test("get-vcpus: processors in directory order, by number, cpu0 fixed online", async () => {
  await withSys(CPUS, async (agent, writes, root) => {
    const byName: Record<string, unknown> = {
      cpu0: { "logical-id": 0n, online: true, "can-offline": false },
      cpu1: { "logical-id": 1n, online: true, "can-offline": true },
      cpu01: { "logical-id": 1n, online: true, "can-offline": true },
      cpu2: { "logical-id": 2n, online: false, "can-offline": true },
    };
    const order = await dirOrder(`${root}/sys/devices/system/cpu`);
    assertEquals(
      await guestGetVcpus.run({}, agent),
      order.filter((n) => n in byName).map((n) => byName[n]),
    );
    assertEquals(writes, []);
  });
});

Deno.test("get-vcpus: error texts", async () => {
  await withSys({}, async (agent) => {
    await assertRejects(
      async () => await guestGetVcpus.run({}, agent),
      isQga("failed to list entries: /sys/devices/system/cpu: No such file or directory"),
    );
  });
  await withSys({ cpu: { cpu3: { online: {} } } }, async (agent) => {
    await assertRejects(
      async () => await guestGetVcpus.run({}, agent),
      isQga('pread("/sys/devices/system/cpu/cpu3//online"): Is a directory'),
    );
  });
  await withSys({ cpu: { cpu3: { online: "" } } }, async (agent) => {
    await assertRejects(
      async () => await guestGetVcpus.run({}, agent),
      isQga('pread("/sys/devices/system/cpu/cpu3//online"): unexpected EOF'),
    );
  });
  await withSys({ cpu: { cpu4: "not a directory" } }, async (agent) => {
    await assertRejects(
      async () => await guestGetVcpus.run({}, agent),
      isQga("Could not open '/sys/devices/system/cpu/cpu4/': Not a directory"),
    );
  });
  await withSys({ cpu: { cpu5: { online: { link: "missing" } } } }, async (agent) => {
    // A dangling `online` is ENOENT at open: treated as a processor without one.
    assertEquals(await guestGetVcpus.run({}, agent), [
      { "logical-id": 5n, online: true, "can-offline": false },
    ]);
  });
});

const vcpu = (id: number, online: boolean, canOffline?: boolean) => ({
  "logical-id": BigInt(id),
  online,
  ...(canOffline === undefined ? {} : { "can-offline": canOffline }),
});

Deno.test("set-vcpus: writes 0/1 only when the state differs, in order", async () => {
  await withSys(CPUS, async (agent, writes, root) => {
    const online = (id: number) =>
      Deno.readTextFile(`${root}/sys/devices/system/cpu/cpu${id}/online`);
    assertEquals(await guestSetVcpus.run({ vcpus: [] }, agent), 0);
    // Already in state: cpu1 online, cpu2 offline, cpu0 (no file) online.
    assertEquals(
      await guestSetVcpus.run({ vcpus: [vcpu(1, true), vcpu(2, false), vcpu(0, true)] }, agent),
      3,
    );
    assertEquals(writes, []);
    // can-offline is ignored on input.
    assertEquals(
      await guestSetVcpus.run({ vcpus: [vcpu(1, false, false), vcpu(2, true)] }, agent),
      2,
    );
    assertEquals(writes, [
      "/sys/devices/system/cpu/cpu1//online <- 0",
      "/sys/devices/system/cpu/cpu2//online <- 1",
    ]);
    assertEquals([await online(1), await online(2)], ["0\n", "1\n"]);
    // The same processor twice: both writes happen.
    writes.length = 0;
    assertEquals(await guestSetVcpus.run({ vcpus: [vcpu(1, true), vcpu(1, false)] }, agent), 2);
    assertEquals(writes, [
      "/sys/devices/system/cpu/cpu1//online <- 1",
      "/sys/devices/system/cpu/cpu1//online <- 0",
    ]);
  });
});

Deno.test("set-vcpus: the first element's error is the reply, a later one ends the count", async () => {
  await withSys(CPUS, async (agent, writes) => {
    const run = (vcpus: ReturnType<typeof vcpu>[]) => guestSetVcpus.run({ vcpus }, agent);
    await assertRejects(
      async () => await run([vcpu(0, false)]),
      isQga("logical processor #0 can't be offlined"),
    );
    await assertRejects(
      async () => await run([vcpu(7, true), vcpu(1, false)]),
      isQga("Could not open '/sys/devices/system/cpu/cpu7/': No such file or directory"),
    );
    await assertRejects(
      async () => await run([vcpu(-1, true)]),
      isQga("Could not open '/sys/devices/system/cpu/cpu-1/': No such file or directory"),
    );
    assertEquals(writes, []);
    assertEquals(await run([vcpu(1, false), vcpu(0, false), vcpu(2, true)]), 1);
    assertEquals(await run([vcpu(1, true), vcpu(7, true)]), 1);
    assertEquals(writes, [
      "/sys/devices/system/cpu/cpu1//online <- 0",
      "/sys/devices/system/cpu/cpu1//online <- 1",
    ]);
  });
});

Deno.test("set-vcpus: open, read and write failures of `online`", async () => {
  const tree: Tree = {
    cpu: {
      cpu1: { online: "1\n" },
      cpu3: { online: {} },
      cpu4: { online: { link: "/dev/full" } },
      cpu5: { online: "" },
    },
  };
  await withSys(tree, async (agent, writes) => {
    const run = (vcpus: ReturnType<typeof vcpu>[]) => guestSetVcpus.run({ vcpus }, agent);
    // qemu-ga opens `online` read-write: a directory fails at open, for either state.
    for (const on of [true, false]) {
      await assertRejects(
        async () => await run([vcpu(3, on)]),
        isQga("could not open /sys/devices/system/cpu/cpu3//online: Is a directory"),
      );
    }
    await assertRejects(
      async () => await run([vcpu(5, true)]),
      isQga('pread("/sys/devices/system/cpu/cpu5//online"): unexpected EOF'),
    );
    // /dev/full reads as NUL (online); offlining it fails at the write.
    assertEquals(await run([vcpu(4, true)]), 1);
    await assertRejects(
      async () => await run([vcpu(4, false)]),
      isQga('pwrite("/sys/devices/system/cpu/cpu4//online"): No space left on device'),
    );
    assertEquals(await run([vcpu(1, true), vcpu(4, false), vcpu(1, false)]), 1);
    assertEquals(writes, [
      "/sys/devices/system/cpu/cpu4//online <- 0",
      "/sys/devices/system/cpu/cpu4//online <- 0",
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Memory blocks

const MEMORY: Tree = {
  memory: {
    block_size_bytes: "8000000\n",
    auto_online_blocks: "offline\n",
    memory0: { state: "online\n", removable: "1\n" },
    memory1: { state: "offline\n", removable: "0\n" },
    memory2: { state: "online_movable\n" }, // no `removable`
    memory3: {}, // no `state` (old kernels)
    memory_notes: "a file named like a block\n",
    memory9link: { link: "memory0" }, // a link is not a directory entry
  },
};

Deno.test("get-memory-blocks: blocks in directory order, state and removable", async () => {
  await withSys(MEMORY, async (agent, writes, root) => {
    const byName: Record<string, unknown> = {
      memory0: { "phys-index": 0n, online: true, "can-offline": true },
      memory1: { "phys-index": 1n, online: false, "can-offline": false },
      memory2: { "phys-index": 2n, online: true, "can-offline": false },
      memory3: { "phys-index": 3n, online: true, "can-offline": false },
    };
    const order = await dirOrder(`${root}/sys/devices/system/memory`);
    assertEquals(
      await guestGetMemoryBlocks.run({}, agent),
      order.filter((n) => n in byName).map((n) => byName[n]),
    );
    assertEquals(writes, []);
  });
});

Deno.test("get-memory-blocks: no directory, no blocks, error texts", async () => {
  await withSys({}, async (agent) => {
    assertEquals(await guestGetMemoryBlocks.run({}, agent), []);
  });
  await withSys({ memory: { block_size_bytes: "8000000\n" } }, async (agent) => {
    await assertRejects(
      async () => await guestGetMemoryBlocks.run({}, agent),
      isQga("guest reported zero memory blocks!"),
    );
  });
  await withSys({ memory: "a file" }, async (agent) => {
    await assertRejects(
      async () => await guestGetMemoryBlocks.run({}, agent),
      isQga(`Can't open directory"/sys/devices/system/memory/": Not a directory`),
    );
  });
  const cases: [Tree, string][] = [
    [{ memory4: { state: {} } }, 'pread sysfs file "state": Is a directory'],
    [{ memory4: { state: "" } }, 'pread sysfs file "state": unexpected EOF'],
    [
      { memory4: { state: "online", removable: "" } },
      'pread sysfs file "removable": unexpected EOF',
    ],
    [
      { memory4: { state: "online", removable: {} } },
      'pread sysfs file "removable": Is a directory',
    ],
    [
      { memory4: { state: { link: "state" } } },
      'open sysfs file "state": Too many levels of symbolic links',
    ],
  ];
  for (const [blocks, text] of cases) {
    await withSys({ memory: blocks }, async (agent) => {
      await assertRejects(async () => await guestGetMemoryBlocks.run({}, agent), isQga(text));
    });
  }
  // `memoryx` is looked up as memory0.
  await withSys({ memory: { memoryx: {} } }, async (agent) => {
    await assertRejects(
      async () => await guestGetMemoryBlocks.run({}, agent),
      isQga("Could not open '/sys/devices/system/memory/memory0/': No such file or directory"),
    );
  });
});

const blk = (index: bigint, online: boolean) => ({ "phys-index": index, online });
const reply = (index: bigint, response: string, errorCode?: number) => ({
  "phys-index": index,
  response,
  ...(errorCode === undefined ? {} : { "error-code": errorCode }),
});

Deno.test("set-memory-blocks: one response per element, writes only on change", async () => {
  const tree: Tree = {
    memory: {
      ...(MEMORY.memory as Tree),
      memory4: { state: { link: "/dev/full" } },
      memory5: { state: {} },
      memory6: { state: "" },
      memory7: "not a directory",
    },
  };
  await withSys(tree, async (agent, writes, root) => {
    const run = (blocks: ReturnType<typeof blk>[]) =>
      guestSetMemoryBlocks.run({ "mem-blks": blocks }, agent);
    assertEquals(await run([]), []);
    assertEquals(
      await run([
        blk(0n, true), // already online
        blk(1n, false), // already offline
        blk(1n, true), // onlined
        blk(0n, false), // offlined
        blk(3n, true), // no state: success, yet with ENOENT's code
        blk(3n, false), // no state: cannot offline
        blk(9n, true), // no such block
        blk((1n << 64n) - 1n, true), // memory-1
        blk(4n, true), // the store fails
        blk(5n, true), // state is a directory
        blk(6n, false), // state is empty: errno 0
        blk(7n, true), // memory7 is a file
      ]),
      [
        reply(0n, "success"),
        reply(1n, "success"),
        reply(1n, "success"),
        reply(0n, "success"),
        reply(3n, "success", 2),
        reply(3n, "operation-not-supported", 2),
        reply(9n, "not-found", 2),
        reply((1n << 64n) - 1n, "not-found", 2),
        reply(4n, "operation-failed", 28),
        reply(5n, "operation-failed", 21),
        reply(6n, "operation-failed", 0),
        reply(7n, "operation-failed", 20),
      ],
    );
    assertEquals(writes, [
      "/sys/devices/system/memory/memory1/state <- online",
      "/sys/devices/system/memory/memory0/state <- offline",
      "/sys/devices/system/memory/memory4/state <- online",
    ]);
    // Stored in place, not truncated, as a write to a real attribute would be.
    assertEquals(
      await Deno.readTextFile(`${root}/sys/devices/system/memory/memory1/state`),
      "onlinee\n",
    );
  });
});

Deno.test("set-memory-blocks: without /sys/devices/system/memory", async () => {
  await withSys({}, async (agent, writes) => {
    assertEquals(await guestSetMemoryBlocks.run({ "mem-blks": [blk(0n, true)] }, agent), [
      reply(0n, "operation-not-supported", 2),
    ]);
    assertEquals(writes, []);
  });
  // opendir failing otherwise leaves qemu-ga's response at `success`, with the errno.
  await withSys({ memory: "a file" }, async (agent) => {
    assertEquals(await guestSetMemoryBlocks.run({ "mem-blks": [blk(0n, false)] }, agent), [
      reply(0n, "success", 20),
    ]);
  });
});

Deno.test("get-memory-block-info: size, and error texts", async () => {
  await withSys(MEMORY, async (agent) => {
    assertEquals(await guestGetMemoryBlockInfo.run({}, agent), { size: 134217728n });
  });
  await withSys({}, async (agent) => {
    await assertRejects(
      async () => await guestGetMemoryBlockInfo.run({}, agent),
      isQga('open("/sys/devices/system/memory/"): No such file or directory'),
    );
  });
  await withSys({ memory: {} }, async (agent) => {
    await assertRejects(
      async () => await guestGetMemoryBlockInfo.run({}, agent),
      isQga('open sysfs file "block_size_bytes": No such file or directory'),
    );
  });
  await withSys({ memory: { block_size_bytes: "" } }, async (agent) => {
    await assertRejects(
      async () => await guestGetMemoryBlockInfo.run({}, agent),
      isQga('pread sysfs file "block_size_bytes": unexpected EOF'),
    );
  });
  await withSys({ memory: { block_size_bytes: "-10\n" } }, async (agent) => {
    assertEquals(await guestGetMemoryBlockInfo.run({}, agent), { size: (1n << 64n) - 16n });
  });
});
