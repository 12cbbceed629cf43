/**
 * Side by side with the newest qemu-ga (10.2.50): guest-get-fsinfo and guest-get-disks on this
 * host, then again with loop filesystems the test mounts (ext4 under a mount point whose name
 * needs octal escapes, xfs, a bind mount); guest-fstrim only where
 * argument decoding fails, so neither agent ever trims anything.
 *
 * Both agents must see the same machine: other tests (and other processes) mount and unmount
 * while this runs, so each comparison queries both agents between two identical snapshots of
 * /proc/self/mountinfo and /sys/block. Used bytes of busy host filesystems may move between the
 * two queries: the reply lines are compared with those numbers masked, the numbers within a
 * tolerance — exactly on the test's own idle loop mounts.
 *
 * Safety: never a guest-fstrim that decodes (it would trim every filesystem of the host).
 *
 * @module
 */

import { assertEquals } from "../assert.ts";
import {
  type Agent,
  type Case,
  needQemuGaNewest,
  needRoot,
  RawClient,
  realTest,
  registerSideBySide,
  type Requirement,
  showBytes,
  startAgent,
} from "./harness.ts";
import { hasLoopSupport, run, withLoopFs } from "../fixtures/loopfs.ts";

const err = (desc: string) => `{"error": {"class": "GenericError", "desc": "${desc}"}}`;
const intType = err("Invalid parameter type for 'minimum', expected: integer");

// ---------------------------------------------------------------------------------------------
// Errors before anything runs

const ARGUMENT_CASES: Case[] = [
  ...['"4096"', "1.5", "true", "[]", "{}"].map((v) => ({
    name: `fstrim: minimum ${v} is refused`,
    steps: `{"execute":"guest-fstrim","arguments":{"minimum":${v}}}`,
  })),
  {
    name: "fstrim: an unexpected member is refused after a valid minimum",
    steps: '{"execute":"guest-fstrim","arguments":{"minimum":0,"bogus":1}}',
    expect: [err("Parameter 'bogus' is unexpected")],
  },
  {
    name: "fstrim: minimum as a string is a type error",
    steps: '{"execute":"guest-fstrim","arguments":{"minimum":"1"}}',
    expect: [intType],
  },
  {
    name: "fstrim: arguments that are not an object",
    steps: '{"execute":"guest-fstrim","arguments":[0]}',
  },
  {
    name: "get-fsinfo and get-disks take no arguments",
    steps: [
      { req: '{"execute":"guest-get-fsinfo","arguments":{"x":1}}' },
      { req: '{"execute":"guest-get-disks","arguments":{"x":1},"id":"d"}' },
    ],
  },
];

registerSideBySide("disks", ARGUMENT_CASES, { newest: true }, [needQemuGaNewest()]);

// ---------------------------------------------------------------------------------------------
// Both agents on the same machine state

/** What both agents must agree on before their replies can be compared. */
async function machineState(): Promise<string> {
  const parts = [await Deno.readTextFile("/proc/self/mountinfo")];
  for await (const e of Deno.readDir("/sys/block")) {
    const size = await Deno.readTextFile(`/sys/block/${e.name}/size`).catch(() => "?");
    parts.push(`${e.name} ${size.trim()}`);
  }
  return parts.sort().join("\n");
}

/** One reply line each from both agents, asked while the machine state held still. */
async function askBoth(agents: readonly Agent[], request: string): Promise<string[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = await machineState();
    const lines: string[] = [];
    for (const a of agents) {
      const c = await RawClient.connect(a.socketPath);
      try {
        await c.send(request);
        lines.push(showBytes(await c.recvLine(30_000)));
      } finally {
        c.close();
      }
    }
    if (await machineState() === before) return lines;
  }
  throw new Error("the machine's mounts or block devices kept changing");
}

/** Newest qemu-ga and denoga, started once per test. */
async function withAgents(fn: (agents: Agent[]) => Promise<void>): Promise<void> {
  const agents: Agent[] = [];
  try {
    agents.push(await startAgent({ impl: "qemu-ga", newest: true }));
    agents.push(await startAgent({ impl: "denoga" }));
    await fn(agents);
  } finally {
    for (const a of agents) await a.stop().catch(() => a.dispose());
  }
}

const VERBOSE = Deno.env.get("DENOGA_SBS_VERBOSE") === "1";

/** Tolerance for used bytes of a busy host filesystem between two queries. */
const BUSY_TOLERANCE = 512 * 2 ** 20;
const SIZE_MEMBER = /"(used-bytes|total-bytes)": (\d+)/g;

interface FsEntry {
  mountpoint: string;
  "used-bytes"?: number;
  "total-bytes"?: number;
}

/**
 * Compares two guest-get-fsinfo lines: byte for byte with used/total bytes masked, then those
 * numbers exactly for mount points in `exact`, within {@link BUSY_TOLERANCE} elsewhere.
 */
function compareFsinfo(qga: string, deno: string, exact: ReadonlySet<string>): string[] {
  const mask = (l: string) => l.replace(SIZE_MEMBER, '"$1": N');
  assertEquals(mask(deno), mask(qga), "fsinfo replies differ beyond used/total bytes");
  const q = (JSON.parse(qga) as { return: FsEntry[] }).return;
  const d = (JSON.parse(deno) as { return: FsEntry[] }).return;
  const notes: string[] = [];
  q.forEach((qe, i) => {
    for (const m of ["used-bytes", "total-bytes"] as const) {
      const a = qe[m];
      const b = d[i][m];
      if (a === b) continue;
      const why = `${qe.mountpoint} ${m}: qemu-ga ${a}, denoga ${b}`;
      if (exact.has(qe.mountpoint) || a === undefined || b === undefined) throw new Error(why);
      if (Math.abs(a - b) > BUSY_TOLERANCE) throw new Error(`${why} (beyond tolerance)`);
      notes.push(why);
    }
  });
  return notes;
}

async function compareHost(exact: ReadonlySet<string>, expectMounts: readonly string[] = []) {
  await withAgents(async (agents) => {
    const [qFs, dFs] = await askBoth(agents, '{"execute":"guest-get-fsinfo"}');
    if (VERBOSE) console.log(`qemu-ga: ${qFs}\ndenoga:  ${dFs}`);
    const notes = compareFsinfo(qFs, dFs, exact);
    for (const n of notes) console.log(`  busy filesystem moved between queries: ${n}`);
    const listed = (JSON.parse(qFs) as { return: FsEntry[] }).return.map((e) => e.mountpoint);
    for (const m of expectMounts) {
      if (!listed.includes(m)) throw new Error(`qemu-ga does not list ${m}: ${qFs}`);
    }
    const [qDisks, dDisks] = await askBoth(agents, '{"execute":"guest-get-disks"}');
    if (VERBOSE) console.log(`qemu-ga: ${qDisks}\ndenoga:  ${dDisks}`);
    assertEquals(dDisks, qDisks);
  });
}

const NEED_AGENTS: Requirement[] = [needQemuGaNewest()];

realTest(
  "disks: fsinfo and get-disks of this host, as qemu-ga 10.2.50",
  NEED_AGENTS,
  () => compareHost(new Set()),
);

// ---------------------------------------------------------------------------------------------
// With the test's own loop filesystems

const NEED_LOOPS: Requirement[] = [needQemuGaNewest(), needRoot(), {
  what: "loop devices, mkfs.ext4 and mkfs.xfs",
  present: hasLoopSupport(["ext4", "xfs"]),
}];

realTest(
  "disks: fsinfo and get-disks with ext4 (escaped mount point), xfs and a bind mount",
  NEED_LOOPS,
  async () => {
    await withLoopFs("ext4", async (ext4) => {
      await withLoopFs("xfs", async (xfs) => {
        const bind = await Deno.makeTempDir({ prefix: "denoga-bind-" });
        await run("mount", ["--bind", ext4, bind]);
        try {
          // The bind mount repeats ext4's device: newest qemu-ga lists that device once.
          await compareHost(new Set([ext4, xfs]), [ext4, xfs]);
        } finally {
          await run("umount", [bind]).catch(() => run("umount", ["-l", bind]));
          await Deno.remove(bind).catch(() => {});
        }
      });
    }, { mountName: "mnt point\\ with\ttab" });
  },
);
