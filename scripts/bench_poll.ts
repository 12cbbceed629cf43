/**
 * The poll part of `deno task bench`: what a management host costs a busy guest.
 *
 * - A KubeVirt-style poll cycle — guest-info, guest-get-osinfo, guest-get-users,
 *   guest-get-timezone, guest-get-host-name, guest-get-fsinfo, guest-network-get-interfaces,
 *   guest-get-time, guest-ping, sequentially on one connection — against qemu-ga, denoga and a
 *   floor: a bare Deno responder that answers each request with denoga's recorded reply, i.e. what
 *   Deno's runtime and a socket cost with no agent logic at all. Reported: agent CPU time per
 *   cycle (utime + stime from /proc/<pid>/stat over many cycles) and wall time per cycle.
 * - How that grows: from 2 to 200 network interfaces (bridges with an address: this kernel has
 *   no dummy driver; in a
 *   network namespace of the benchmark's own, in which all agents run) and from 5 to 200 mounted
 *   filesystems (read-only ext4 mounts of one small image through separate loop devices, under a
 *   temp dir; removed afterwards). Reported as CPU µs per added interface / mount: constant per
 *   item means linear growth.
 * - guest-exec of `/bin/true` until its final guest-exec-status: median round trip.
 *
 * Needs root (namespaces, loop devices), `ip`, `losetup`, `mkfs.ext4`. Only the agents' own
 * namespace and the benchmark's own mounts are touched.
 *
 * @module
 */

import { AgentProc, type Client, type Impl, request, startFloor } from "./bench.ts";

/** The requests of one KubeVirt poll cycle, in the order it sends them. */
export const POLL_CYCLE: readonly string[] = [
  "guest-info",
  "guest-get-osinfo",
  "guest-get-users",
  "guest-get-timezone",
  "guest-get-host-name",
  "guest-get-fsinfo",
  "guest-network-get-interfaces",
  "guest-get-time",
  "guest-ping",
];

/** One measured configuration. */
export interface PollPoint {
  interfaces: number;
  mounts: number;
  /** CPU ms per cycle by agent ("floor" = the bare Deno responder). */
  cpuMs: Record<string, number>;
  /** Wall ms per cycle by agent. */
  wallMs: Record<string, number>;
  /** CPU µs per command of the cycle by agent (base configuration only). */
  commandUs?: Record<string, Record<string, number>>;
}

/** What the poll benchmark reports. */
export interface PollSummary {
  /** Cycles per configuration (five times as many at the base one). */
  cycles: number;
  points: PollPoint[];
  /** CPU µs per added interface (2 → 200) and per added mount (5 → 200), by agent. */
  perInterfaceUs: Record<string, number>;
  perMountUs: Record<string, number>;
  /** guest-exec of /bin/true until exited, median ms, by agent. */
  execRoundTripMs: Record<string, number>;
  /** denoga CPU per cycle / qemu-ga's, at the base configuration. */
  cpuRatio: number | null;
  /** denoga exec round trip / qemu-ga's. */
  execRatio: number | null;
}

const BASE_INTERFACES = 2; // lo + one bridge
const MANY = 200;
const BASE_MOUNTS = 5;

async function sh(argv: readonly string[]): Promise<string> {
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** The benchmark's network namespace: lo up, `count - 1` bridges with an address each. */
class Netns {
  readonly name = `denoga-bench-${Deno.pid}`;
  #dummies = 0;

  async create(): Promise<void> {
    await sh(["ip", "netns", "add", this.name]);
    await sh(["ip", "-n", this.name, "link", "set", "lo", "up"]);
  }

  async setInterfaces(count: number): Promise<void> {
    const want = count - 1;
    const batch: string[] = [];
    for (let i = this.#dummies; i < want; i++) {
      batch.push(`link add bd${i} type bridge`, `link set bd${i} up`);
      batch.push(`addr add 10.${(i >> 8) & 255}.${i & 255}.1/24 dev bd${i}`);
    }
    for (let i = want; i < this.#dummies; i++) batch.push(`link del bd${i}`);
    if (batch.length > 0) await ipBatch(this.name, batch);
    this.#dummies = want;
  }

  async remove(): Promise<void> {
    await sh(["ip", "netns", "del", this.name]).catch(() => {});
  }
}

async function ipBatch(ns: string, commands: readonly string[]): Promise<void> {
  const child = new Deno.Command("ip", {
    args: ["-n", ns, "-batch", "-"],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(commands.join("\n") + "\n"));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(`ip -batch: ${new TextDecoder().decode(out.stderr).trim()}`);
}

/** Read-only mounts of one small ext4 image through separate loop devices. */
class Mounts {
  readonly #dir: string;
  readonly #image: string;
  readonly #mounted: { mnt: string; loop: string }[] = [];

  constructor(dir: string) {
    this.#dir = dir;
    this.#image = `${dir}/fs.img`;
  }

  async prepare(): Promise<void> {
    await sh(["truncate", "-s", "2M", this.#image]);
    await sh(["mkfs.ext4", "-q", "-F", this.#image]);
  }

  get count(): number {
    return this.#mounted.length;
  }

  async setCount(count: number): Promise<void> {
    while (this.#mounted.length < count) {
      const mnt = `${this.#dir}/m${this.#mounted.length}`;
      await Deno.mkdir(mnt);
      const loop = (await sh(["losetup", "-r", "-f", "--show", this.#image])).trim();
      try {
        await sh(["mount", "-o", "ro,noload", "-t", "ext4", loop, mnt]);
      } catch (e) {
        await sh(["losetup", "-d", loop]).catch(() => {});
        throw e;
      }
      this.#mounted.push({ mnt, loop });
    }
    while (this.#mounted.length > count) await this.#unmountLast();
  }

  async #unmountLast(): Promise<void> {
    const m = this.#mounted.pop()!;
    await sh(["umount", m.mnt]).catch(() => {});
    await sh(["losetup", "-d", m.loop]).catch(() => {});
  }

  async removeAll(): Promise<void> {
    while (this.#mounted.length > 0) await this.#unmountLast();
  }
}

async function pollCycles(a: AgentProc, cycles: number): Promise<{ cpu: number; wall: number }> {
  // Built here, not at module load: bench.ts and this module import each other.
  const CYCLE_REQUESTS = POLL_CYCLE.map((c) => request(c));
  return await a.session("poll cycle", 600_000, async (c: Client) => {
    for (const r of CYCLE_REQUESTS) await c.call(r); // warm-up cycle
    const cpu0 = a.cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < cycles; i++) {
      for (const r of CYCLE_REQUESTS) {
        const reply = await c.call(r);
        if (!reply.has("return")) throw new Error(`poll: ${JSON.stringify([...reply])}`);
      }
    }
    const wall = (performance.now() - t0) / cycles;
    return { cpu: (a.cpuMs() - cpu0) / cycles, wall };
  });
}

/**
 * CPU µs per command of the cycle, from the agent's threads' schedstat around each reply (in a
 * pass of its own: reading /proc between commands would slow the cycle's wall time). Work an
 * agent finishes after a reply is charged to the next command.
 */
async function commandCpu(a: AgentProc, cycles: number): Promise<Record<string, number>> {
  const requests = POLL_CYCLE.map((c) => request(c));
  const ns = POLL_CYCLE.map(() => 0);
  await a.session("poll cycle by command", 600_000, async (c: Client) => {
    for (const r of requests) await c.call(r);
    for (let i = 0; i < cycles; i++) {
      for (let k = 0; k < requests.length; k++) {
        const t0 = a.threadsCpuNs();
        await c.call(requests[k]);
        ns[k] += a.threadsCpuNs() - t0;
      }
    }
  });
  return Object.fromEntries(POLL_CYCLE.map((name, k) => [name, ns[k] / cycles / 1000]));
}

async function execRoundTrips(a: AgentProc, n: number): Promise<number> {
  return await a.session("guest-exec", 120_000, async (c: Client) => {
    const times: number[] = [];
    const exec = request("guest-exec", { path: "/bin/true" });
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const pid = (await c.call(exec)).get("pid");
      if (pid === undefined) throw new Error("guest-exec returned no pid");
      const status = request("guest-exec-status", { pid: Number(pid) });
      while ((await c.call(status)).get("exited") !== "true");
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    return times[Math.floor(times.length / 2)];
  });
}

/** denoga's reply (with its newline) to each command of the cycle, for the floor to replay. */
async function recordReplies(a: AgentProc): Promise<Record<string, string>> {
  const replies: Record<string, string> = {};
  await a.session("record replies", 60_000, async (c: Client) => {
    for (const name of POLL_CYCLE) {
      await c.send(request(name));
      const l = await c.line();
      replies[name] = new TextDecoder().decode(l.buf.subarray(l.start, l.end + 1));
    }
  });
  return replies;
}

/** Options of {@link runPollBench}. */
export interface PollOptions {
  quick: boolean;
  /** The denoga entry (bundle) and the qemu-ga binary the main benchmark uses. */
  entry?: string;
  impls: readonly Impl[];
  log: (line: string) => void;
}

/** Runs the poll benchmark (module comment). */
export async function runPollBench(o: PollOptions): Promise<PollSummary> {
  const cycles = o.quick ? 10 : 100;
  const execRuns = o.quick ? 10 : 100;
  const dirs: string[] = [];
  const work = await Deno.makeTempDir({ prefix: "denoga-bench-poll-" });
  const netns = new Netns();
  const mounts = new Mounts(work);
  const agents = new Map<string, AgentProc>();
  try {
    await netns.create();
    await netns.setInterfaces(BASE_INTERFACES);
    await mounts.prepare();
    const wrap = ["ip", "netns", "exec", netns.name];
    // `ip netns exec` gives each agent a mount namespace of its own, a copy taken at start (the
    // host's / is private here): agents are started after the mounts of each configuration.
    const startAll = async () => {
      for (const impl of o.impls) {
        agents.set(impl, await AgentProc.start(impl, dirs, undefined, { entry: o.entry, wrap }));
      }
      const denoga = agents.get("denoga");
      if (denoga) {
        agents.set("floor", await startFloor(dirs, await recordReplies(denoga), wrap));
      }
    };
    const stopAll = async () => {
      for (const a of agents.values()) await a.stop();
      agents.clear();
    };
    const configs: [number, number][] = [
      [BASE_INTERFACES, BASE_MOUNTS],
      [MANY, BASE_MOUNTS],
      [BASE_INTERFACES, MANY],
    ];
    const points: PollPoint[] = [];
    for (const [interfaces, mountCount] of configs) {
      await netns.setInterfaces(interfaces);
      await mounts.setCount(mountCount);
      await stopAll();
      await startAll();
      const point: PollPoint = { interfaces, mounts: mountCount, cpuMs: {}, wallMs: {} };
      // The base cycle costs about a ms: five times the cycles keep stat's 10 ms ticks within
      // a few per cent of it.
      const n = points.length === 0 ? 5 * cycles : cycles;
      for (const [name, a] of agents) {
        const r = await pollCycles(a, n);
        point.cpuMs[name] = r.cpu;
        point.wallMs[name] = r.wall;
        o.log(
          `  poll cycle ${interfaces} ifs ${mountCount} mounts  ${name.padEnd(8)} ` +
            `${r.cpu.toFixed(2).padStart(8)} ms CPU  ${r.wall.toFixed(2).padStart(8)} ms wall`,
        );
      }
      if (points.length === 0) {
        point.commandUs = {};
        for (const [name, a] of agents) point.commandUs[name] = await commandCpu(a, cycles);
        for (const cmd of POLL_CYCLE) {
          o.log(
            `    ${cmd.padEnd(30)}` +
              [...agents.keys()].map((n) =>
                `${n} ${point.commandUs![n][cmd].toFixed(0).padStart(5)} µs`
              ).join("  "),
          );
        }
      }
      points.push(point);
    }
    const per = (p: PollPoint, added: number) =>
      Object.fromEntries(
        Object.keys(points[0].cpuMs).map((k) => [
          k,
          (p.cpuMs[k] - points[0].cpuMs[k]) * 1000 / added,
        ]),
      );
    const execRoundTripMs: Record<string, number> = {};
    for (const impl of o.impls) {
      execRoundTripMs[impl] = await execRoundTrips(agents.get(impl)!, execRuns);
      o.log(
        `  guest-exec /bin/true       ${impl.padEnd(8)} ${execRoundTripMs[impl].toFixed(2)} ms`,
      );
    }
    const base = points[0].cpuMs;
    return {
      cycles,
      points,
      perInterfaceUs: per(points[1], MANY - BASE_INTERFACES),
      perMountUs: per(points[2], MANY - BASE_MOUNTS),
      execRoundTripMs,
      cpuRatio: base["qemu-ga"] && base.denoga !== undefined ? base.denoga / base["qemu-ga"] : null,
      execRatio: execRoundTripMs["qemu-ga"] && execRoundTripMs.denoga !== undefined
        ? execRoundTripMs.denoga / execRoundTripMs["qemu-ga"]
        : null,
    };
  } finally {
    for (const a of agents.values()) await a.stop();
    await mounts.removeAll();
    await netns.remove();
    for (const dir of [...dirs, work]) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
