/**
 * Side by side with the newest qemu-ga on this host: processors, memory blocks, disk and CPU
 * statistics (§3.10, §3.11).
 *
 * The read-only commands are compared byte for byte where their values stand still (vCPUs,
 * memory blocks) and by shape where counters move (diskstats, cpustats: same entries, same
 * members in the same order, denoga's later values not below qemu-ga's). guest-set-vcpus and
 * guest-set-memory-blocks get only inputs that both agents refuse or finish before anything
 * could be written: empty lists, argument errors, processors and blocks that do not exist.
 */

import assert from "node:assert/strict";
import {
  type Case,
  exec,
  type Json,
  needQemuGaNewest,
  RawClient,
  realTest,
  registerSideBySide,
  type Requirement,
  showBytes,
  startAgent,
} from "./harness.ts";

/** A processor and memory blocks no machine here has. */
const NO_CPU = 99999;
const NO_BLOCK = 4294967296;

const cases: Case[] = [
  { name: "get-vcpus", steps: [{ req: exec("guest-get-vcpus") }] },
  { name: "get-vcpus with an argument", steps: [{ req: exec("guest-get-vcpus", '{"x":1}') }] },
  { name: "get-memory-blocks", steps: [{ req: exec("guest-get-memory-blocks") }] },
  { name: "get-memory-block-info", steps: [{ req: exec("guest-get-memory-block-info") }] },
  {
    name: "set-vcpus: empty list",
    steps: [{ req: exec("guest-set-vcpus", '{"vcpus":[]}') }],
    expect: ['{"return": 0}'],
  },
  {
    name: "set-vcpus: a processor that does not exist, on and off, with an id",
    steps: [
      { req: exec("guest-set-vcpus", `{"vcpus":[{"logical-id":${NO_CPU},"online":true}]}`) },
      { req: exec("guest-set-vcpus", `{"vcpus":[{"logical-id":${NO_CPU},"online":false}]}`) },
      {
        req: `{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":${NO_CPU},` +
          `"online":false,"can-offline":true}]},"id":"v"}`,
      },
    ],
    expect: [
      `{"error": {"class": "GenericError", "desc": "Could not open '/sys/devices/system/cpu/cpu${NO_CPU}/': No such file or directory"}}`,
      `{"error": {"class": "GenericError", "desc": "Could not open '/sys/devices/system/cpu/cpu${NO_CPU}/': No such file or directory"}}`,
      `{"id": "v", "error": {"class": "GenericError", "desc": "Could not open '/sys/devices/system/cpu/cpu${NO_CPU}/': No such file or directory"}}`,
    ],
  },
  {
    name: "set-vcpus: negative and extreme ids, two missing processors",
    steps: [
      { req: exec("guest-set-vcpus", '{"vcpus":[{"logical-id":-1,"online":true}]}') },
      {
        req: exec(
          "guest-set-vcpus",
          '{"vcpus":[{"logical-id":-9223372036854775808,"online":false}]}',
        ),
      },
      {
        req: exec(
          "guest-set-vcpus",
          `{"vcpus":[{"logical-id":${NO_CPU},"online":true},{"logical-id":${
            NO_CPU + 1
          },"online":true}]}`,
        ),
      },
    ],
  },
  {
    name: "set-vcpus: argument errors",
    steps: [
      { req: exec("guest-set-vcpus") },
      { req: exec("guest-set-vcpus", "{}") },
      { req: exec("guest-set-vcpus", '{"vcpus":{}}') },
      { req: exec("guest-set-vcpus", '{"vcpus":[1]}') },
      { req: exec("guest-set-vcpus", '{"vcpus":[{"online":true}]}') },
      { req: exec("guest-set-vcpus", `{"vcpus":[{"logical-id":${NO_CPU}}]}`) },
      { req: exec("guest-set-vcpus", '{"vcpus":[{"logical-id":"1","online":true}]}') },
      { req: exec("guest-set-vcpus", '{"vcpus":[{"logical-id":1,"online":1}]}') },
      {
        req: exec("guest-set-vcpus", '{"vcpus":[{"logical-id":1,"online":true,"x":0}]}'),
      },
      {
        req: exec("guest-set-vcpus", '{"vcpus":[{"logical-id":1,"online":true,"can-offline":2}]}'),
      },
      {
        req: exec(
          "guest-set-vcpus",
          '{"vcpus":[{"logical-id":99999,"online":true},{"logical-id":1}]}',
        ),
      },
      {
        req: exec(
          "guest-set-vcpus",
          '{"vcpus":[{"logical-id":9223372036854775808,"online":true}]}',
        ),
      },
      { req: exec("guest-set-vcpus", '{"vcpus":[],"x":1}') },
    ],
  },
  {
    name: "set-memory-blocks: empty list",
    steps: [{ req: exec("guest-set-memory-blocks", '{"mem-blks":[]}') }],
    expect: ['{"return": []}'],
  },
  {
    name: "set-memory-blocks: blocks that do not exist",
    steps: [
      {
        req: exec(
          "guest-set-memory-blocks",
          `{"mem-blks":[{"phys-index":${NO_BLOCK},"online":true},` +
            `{"phys-index":${NO_BLOCK + 1},"online":false,"can-offline":false},` +
            '{"phys-index":-1,"online":false},' +
            '{"phys-index":18446744073709551614,"online":true}]}',
        ),
      },
    ],
    expect: [
      `{"return": [{"response": "not-found", "error-code": 2, "phys-index": ${NO_BLOCK}}, ` +
      `{"response": "not-found", "error-code": 2, "phys-index": ${NO_BLOCK + 1}}, ` +
      '{"response": "not-found", "error-code": 2, "phys-index": 18446744073709551615}, ' +
      '{"response": "not-found", "error-code": 2, "phys-index": 18446744073709551614}]}',
    ],
  },
  {
    name: "set-memory-blocks: argument errors",
    steps: [
      { req: exec("guest-set-memory-blocks") },
      { req: exec("guest-set-memory-blocks", '{"mem-blks":null}') },
      { req: exec("guest-set-memory-blocks", '{"mem-blks":[{"online":true}]}') },
      { req: exec("guest-set-memory-blocks", `{"mem-blks":[{"phys-index":${NO_BLOCK}}]}`) },
      {
        req: exec("guest-set-memory-blocks", '{"mem-blks":[{"phys-index":"1","online":true}]}'),
      },
      {
        req: exec(
          "guest-set-memory-blocks",
          '{"mem-blks":[{"phys-index":18446744073709551616,"online":true}]}',
        ),
      },
      {
        req: exec(
          "guest-set-memory-blocks",
          '{"mem-blks":[{"phys-index":1.5,"online":true}]}',
        ),
      },
      {
        req: exec(
          "guest-set-memory-blocks",
          `{"mem-blks":[{"phys-index":${NO_BLOCK},"online":true,"y":null}]}`,
        ),
      },
    ],
  },
];

registerSideBySide("sbs stats", cases, { newest: true }, [needQemuGaNewest()]);

// ---------------------------------------------------------------------------------------------
// Moving counters: the same request to qemu-ga, then to denoga, compared by shape.

type Obj = { [member: string]: Json };

function isObj(v: Json): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The `return` list of a reply line, its entries as objects (member order kept). */
function returnedList(line: Uint8Array): Obj[] {
  const text = new TextDecoder().decode(line);
  const reply = JSON.parse(text) as Json;
  assert.ok(isObj(reply) && Array.isArray(reply.return), `not a list reply: ${showBytes(line)}`);
  const list = reply.return as Json[];
  for (const e of list) assert.ok(isObj(e), `entry is not an object: ${JSON.stringify(e)}`);
  return list as Obj[];
}

/**
 * Compares qemu-ga's entries with denoga's later ones: same members in the same order,
 * `fixed` members equal, `anyValue` members only non-negative integers, every other member
 * monotone non-decreasing. Returns the differences found (empty: the replies agree).
 */
function compareCounters(
  before: Obj[],
  after: Obj[],
  fixed: readonly string[],
  anyValue: readonly string[],
  nested?: string,
): string[] {
  const problems: string[] = [];
  if (before.length !== after.length) {
    return [`${before.length} entries from qemu-ga, ${after.length} from denoga`];
  }
  before.forEach((b, i) => {
    const a = after[i];
    const bo = nested ? b[nested] as Obj : b;
    const ao = nested ? a[nested] as Obj : a;
    const where = `entry ${i} (${JSON.stringify(fixed.map((f) => b[f]))})`;
    if (Object.keys(b).join() !== Object.keys(a).join()) {
      problems.push(`${where}: members ${Object.keys(b)} vs ${Object.keys(a)}`);
    }
    for (const f of fixed) {
      if (b[f] !== a[f]) problems.push(`${where}: ${f} ${b[f]} vs ${a[f]}`);
    }
    if (Object.keys(bo).join() !== Object.keys(ao).join()) {
      problems.push(`${where}: counters ${Object.keys(bo)} vs ${Object.keys(ao)}`);
      return;
    }
    for (const [k, v] of Object.entries(bo)) {
      if (fixed.includes(k) || (nested === undefined && k === "type")) continue;
      const w = ao[k];
      if (typeof v !== "number" || typeof w !== "number" || v < 0 || w < 0) {
        problems.push(`${where}: ${k} is not a counter: ${v} vs ${w}`);
      } else if (!anyValue.includes(k) && w < v) {
        problems.push(`${where}: ${k} went down from ${v} to ${w}`);
      }
    }
  });
  return problems;
}

/**
 * Asks qemu-ga, then denoga, and compares. Loop devices come and go while other suites run, and
 * a counter can step back (a device re-attached): a few attempts, the last one's differences
 * reported.
 */
async function compareMoving(
  command: string,
  check: (qemuGa: Obj[], denoga: Obj[]) => string[],
): Promise<void> {
  const qga = await startAgent({ impl: "qemu-ga", newest: true });
  const dga = await startAgent({ impl: "denoga" });
  const clients = [
    await RawClient.connect(qga.socketPath),
    await RawClient.connect(dga.socketPath),
  ];
  try {
    let problems: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const lines = [];
      for (const c of clients) {
        await c.send(exec(command));
        lines.push(await c.recvLine());
      }
      problems = check(returnedList(lines[0]), returnedList(lines[1]));
      if (problems.length === 0) return;
    }
    assert.fail(`${command} differs:\n${problems.slice(0, 20).join("\n")}`);
  } finally {
    for (const c of clients) c.close();
    await qga.stop();
    await dga.stop();
  }
}

/** Keys of the GuestDiskStats members qemu-ga's 10.2.50 writes, in its (hash) order. */
const DISKSTATS_ORDER = [
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
];

realTest("sbs stats: get-diskstats has qemu-ga's entries and members", [
  needQemuGaNewest(),
], async () => {
  await compareMoving("guest-get-diskstats", (q, d) => {
    const problems = compareCounters(q, d, ["name", "major", "minor"], ["ios-pgr"], "stats");
    for (const e of q) {
      const keys = Object.keys(e.stats as Obj);
      const want = DISKSTATS_ORDER.filter((k) => keys.includes(k));
      if (keys.join() !== want.join()) problems.push(`qemu-ga order ${keys}`);
    }
    if (q.length === 0) problems.push("no disks listed");
    return problems;
  });
});

realTest("sbs stats: get-cpustats has qemu-ga's CPUs and members", [
  needQemuGaNewest(),
], async () => {
  await compareMoving("guest-get-cpustats", (q, d) => {
    // iowait may decrease (proc(5)).
    const problems = compareCounters(q, d, ["cpu", "type"], ["iowait"]);
    if (q.length !== navigator.hardwareConcurrency) problems.push(`${q.length} CPUs`);
    return problems;
  });
});

// ---------------------------------------------------------------------------------------------
// Both agents over the same fake /sys/devices/system, bind-mounted in a private mount
// namespace: error paths the host's real sysfs never shows. Only requests that write nothing
// are sent (the state already matches, or the element fails before its write), and each agent
// starts only once the marker proves the fake tree is in place.

/** A file (string content), a directory (object), or a symbolic link. */
type Tree = { [name: string]: string | Tree | { link: string } };

const MARKER = "denoga-fake-sys";

async function lay(dir: string, tree: Tree): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, v] of Object.entries(tree)) {
    const path = `${dir}/${name}`;
    if (typeof v === "string") await Deno.writeTextFile(path, v);
    else if ("link" in v && typeof v.link === "string") await Deno.symlink(v.link, path);
    else await lay(path, v as Tree);
  }
}

const FAKE_SYS_SCRIPT = `set -e
mount --make-rprivate /
mount --bind "$1" /sys/devices/system
test -e /sys/devices/system/${MARKER}
shift
exec "$@"`;

/**
 * Runs `requests` on one agent started over the fake tree; returns the reply lines. The agent
 * is then killed outright: its exit status is not what this test is about, and qemu-ga signalled
 * with SIGTERM right after a client leaves can deadlock in its handler.
 */
async function transcriptOverFakeSys(
  impl: "qemu-ga" | "denoga",
  fake: string,
  requests: readonly string[],
): Promise<string[]> {
  const agent = await startAgent({
    impl,
    newest: true,
    logfile: false,
    wrap: ["unshare", "-m", "sh", "-c", FAKE_SYS_SCRIPT, "sh", fake],
  });
  try {
    const c = await RawClient.connect(agent.socketPath);
    try {
      const out = [];
      for (const r of requests) {
        await c.send(r);
        out.push(showBytes(await c.recvLine()));
      }
      return out;
    } finally {
      c.close();
    }
  } finally {
    await agent.dispose();
  }
}

function needUnshare(): Requirement {
  let present = Deno.uid() === 0;
  try {
    Deno.statSync("/usr/bin/unshare");
  } catch {
    present = false;
  }
  return { what: "root and unshare(1) for a private mount namespace", present };
}

const fakeCases: { name: string; tree: Tree; requests: string[]; expect?: string[] }[] = [
  {
    name: "processors and blocks in every state",
    tree: {
      cpu: {
        cpu0: { topology: {} },
        cpu1: { online: "1\n" },
        cpu2: { online: "0\n" },
        cpu01: {},
        cpufreq: {},
        online: "0-1\n",
      },
      memory: {
        block_size_bytes: "8000000\n",
        memory0: { state: "online\n", removable: "1\n" },
        memory1: { state: "offline\n", removable: "0\n" },
        memory2: { state: "online_movable\n" },
        memory3: {},
        memory_notes: "a file\n",
        memory9link: { link: "memory0" },
      },
    },
    requests: [
      exec("guest-get-vcpus"),
      exec("guest-get-memory-blocks"),
      exec("guest-get-memory-block-info"),
      exec("guest-set-vcpus", '{"vcpus":[{"logical-id":0,"online":false}]}'),
      exec(
        "guest-set-vcpus",
        '{"vcpus":[{"logical-id":1,"online":true},{"logical-id":2,"online":false},' +
          '{"logical-id":0,"online":true},{"logical-id":0,"online":false}]}',
      ),
      exec(
        "guest-set-memory-blocks",
        '{"mem-blks":[{"phys-index":0,"online":true},{"phys-index":1,"online":false},' +
          '{"phys-index":3,"online":true},{"phys-index":3,"online":false},' +
          '{"phys-index":9,"online":true},{"phys-index":-1,"online":true}]}',
      ),
    ],
  },
  {
    name: "attributes that are directories",
    tree: {
      cpu: { cpu3: { online: {} } },
      memory: { block_size_bytes: "", memory5: { state: {} } },
    },
    requests: [
      exec("guest-get-vcpus"),
      exec("guest-set-vcpus", '{"vcpus":[{"logical-id":3,"online":true}]}'),
      exec("guest-set-vcpus", '{"vcpus":[{"logical-id":3,"online":false}]}'),
      exec("guest-get-memory-blocks"),
      exec("guest-set-memory-blocks", '{"mem-blks":[{"phys-index":5,"online":true}]}'),
      exec("guest-get-memory-block-info"),
    ],
  },
  {
    name: "empty attributes, a file for a processor, a dangling online",
    tree: {
      cpu: { cpu5: { online: "" } },
      memory: { memory4: { state: "online\n", removable: "" }, memory6: "x" },
    },
    requests: [
      exec("guest-get-vcpus"),
      exec("guest-set-vcpus", '{"vcpus":[{"logical-id":5,"online":true}]}'),
      exec("guest-get-memory-blocks"),
      exec(
        "guest-set-memory-blocks",
        '{"mem-blks":[{"phys-index":4,"online":true},{"phys-index":6,"online":true}]}',
      ),
      exec("guest-get-memory-block-info"),
    ],
  },
  {
    name: "no memory directory; a processor that is a file",
    tree: { cpu: { cpu4: "x", cpu6: { online: { link: "missing" } } } },
    requests: [
      exec("guest-get-vcpus"),
      exec("guest-set-vcpus", '{"vcpus":[{"logical-id":6,"online":true}]}'),
      exec("guest-set-vcpus", '{"vcpus":[{"logical-id":6,"online":false}]}'),
      exec("guest-get-memory-blocks"),
      exec("guest-set-memory-blocks", '{"mem-blks":[{"phys-index":0,"online":false}]}'),
      exec("guest-get-memory-block-info"),
    ],
  },
  {
    name: "a memory directory without blocks",
    tree: { cpu: { cpu0: {} }, memory: { block_size_bytes: "-10\n" } },
    requests: [exec("guest-get-memory-blocks"), exec("guest-get-memory-block-info")],
    expect: [
      '{"error": {"class": "GenericError", "desc": "guest reported zero memory blocks!"}}',
      '{"return": {"size": 18446744073709551600}}',
    ],
  },
];

for (const fc of fakeCases) {
  realTest(
    `sbs stats over a fake sysfs: ${fc.name}`,
    [needQemuGaNewest(), needUnshare()],
    async () => {
      const fake = await Deno.makeTempDir({ prefix: "denoga-fakesys-tree-" });
      try {
        await lay(fake, { ...fc.tree, [MARKER]: "" });
        const q = await transcriptOverFakeSys("qemu-ga", fake, fc.requests);
        const d = await transcriptOverFakeSys("denoga", fake, fc.requests);
        if (Deno.env.get("DENOGA_SBS_VERBOSE") === "1") console.log(q.join("\n"));
        assert.deepEqual(d, q);
        if (fc.expect) assert.deepEqual(q, fc.expect);
      } finally {
        await Deno.remove(fake, { recursive: true });
      }
    },
  );
}
