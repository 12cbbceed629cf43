/**
 * guest-exec and guest-exec-status (§3.3, newest behaviour). The child is started by the `exec`
 * facet (lib/platform/exec.ts); this file keeps the per-agent records a host polls.
 *
 * A record is finished when the child is reaped and its capture pipes are closed (a grandchild
 * holding a pipe keeps it running, as in qemu-ga); the first status that reports it finished
 * deletes it. Deliberate difference: qemu-ga keeps the records of children nobody asks about
 * forever; denoga keeps at most {@link MAX_UNQUERIED} finished ones and drops the oldest
 * finished first (running children are always kept), so a dropped pid answers like an unknown
 * one and its captured output is freed.
 *
 * @module
 */

import type { Agent } from "../agent.ts";
import { audited } from "../audit.ts";
import { decodeBase64, verbatimBase64 } from "../base64.ts";
import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import type { CaptureMode, ExecOutcome } from "../platform/exec.ts";

/** Finished records nobody has asked about yet that denoga keeps (qemu-ga: unbounded). */
export const MAX_UNQUERIED = 1024;

interface ExecRecord {
  readonly pid: number;
  outcome?: ExecOutcome;
}

/** One agent's children, oldest first; a pid may repeat once the kernel reuses it. */
class ExecTable {
  readonly #byPid = new Map<number, ExecRecord[]>();
  /** Finished, not yet reported records in the order they finished. */
  readonly #finished = new Set<ExecRecord>();

  add(rec: ExecRecord): void {
    const list = this.#byPid.get(rec.pid);
    if (list) list.push(rec);
    else this.#byPid.set(rec.pid, [rec]);
  }

  finish(rec: ExecRecord, outcome: ExecOutcome): void {
    rec.outcome = outcome;
    this.#finished.add(rec);
    if (this.#finished.size > MAX_UNQUERIED) {
      const oldest: ExecRecord = this.#finished.values().next().value!;
      this.remove(oldest);
    }
  }

  /** qemu-ga's guest_exec_info_find: the oldest record with this pid. */
  find(pid: number): ExecRecord | undefined {
    return this.#byPid.get(pid)?.[0];
  }

  remove(rec: ExecRecord): void {
    this.#finished.delete(rec);
    const list = this.#byPid.get(rec.pid);
    if (!list) return;
    const rest = list.filter((r) => r !== rec);
    if (rest.length) this.#byPid.set(rec.pid, rest);
    else this.#byPid.delete(rec.pid);
  }

  /** Records held, for tests. */
  get size(): number {
    let n = 0;
    for (const list of this.#byPid.values()) n += list.length;
    return n;
  }
}

const tables = new WeakMap<Agent, ExecTable>();

/** The agent's exec records (created on first use). */
export function execTable(agent: Agent): ExecTable {
  let table = tables.get(agent);
  if (!table) tables.set(agent, table = new ExecTable());
  return table;
}

const captureModes = t.enumOf("GuestExecCaptureOutputMode", [
  "none",
  "stdout",
  "stderr",
  "separated",
  "merged",
]);

const execStatusType = t.struct("GuestExecStatus", [
  { name: "exited", type: t.bool },
  { name: "exitcode", type: t.int, optional: true },
  { name: "signal", type: t.int, optional: true },
  { name: "out-data", type: t.str, optional: true },
  { name: "err-data", type: t.str, optional: true },
  { name: "out-truncated", type: t.bool, optional: true },
  { name: "err-truncated", type: t.bool, optional: true },
]);

/** Reports a child's state; a finished record is reported once, then forgotten. */
export const guestExecStatus = defineCommand({
  name: "guest-exec-status",
  summary: "Get the status of a process started with guest-exec; output is base64-encoded",
  args: [{ name: "pid", type: t.int }],
  returns: execStatusType,
  run: ({ pid }, agent) => {
    agent.log.debug(`guest-exec-status called, pid: ${BigInt.asUintN(32, pid)}`);
    const table = execTable(agent);
    const rec = pid >= 0n && pid <= 0x7fffffffn ? table.find(Number(pid)) : undefined;
    // sic: qemu-ga's format string lost its %: "PID " PRId64 " does not exist" (§3.3).
    if (!rec) throw genericError("PID ld does not exist");
    const o = rec.outcome;
    if (!o) return { exited: false };
    table.remove(rec);
    const stream = (c: { data: Uint8Array; truncated: boolean }) =>
      c.data.length > 0
        ? { data: verbatimBase64(c.data), truncated: c.truncated }
        : { data: undefined, truncated: undefined };
    const out = stream(o.out);
    const err = stream(o.err);
    return {
      exited: true,
      exitcode: o.exitcode,
      signal: o.signal,
      "out-data": out.data,
      "err-data": err.data,
      "out-truncated": out.truncated,
      "err-truncated": err.truncated,
    };
  },
});

/** Starts a program; its pid is the handle for guest-exec-status. */
export const guestExec = defineCommand({
  name: "guest-exec",
  summary: "Execute a program in the guest; output and exit status come from guest-exec-status",
  args: [
    { name: "path", type: t.str },
    { name: "arg", type: t.list(t.str), optional: true },
    { name: "env", type: t.list(t.str), optional: true },
    { name: "input-data", type: t.str, optional: true },
    {
      name: "capture-output",
      type: t.alternate("GuestExecCaptureOutput", t.bool, captureModes),
      optional: true,
    },
  ],
  returns: t.struct("GuestExec", [{ name: "pid", type: t.int }]),
  run: async (args, agent) => {
    const input = args["input-data"] === undefined ? undefined : decodeBase64(args["input-data"]);
    const argv = [args.path, ...(args.arg ?? [])];
    agent.log.debug(`guest-exec called: "${argv.join(" ")}"`);
    const co = args["capture-output"];
    const capture: CaptureMode = co === undefined
      ? "none"
      : co.branch === "scalar"
      ? (co.value ? "separated" : "none")
      : co.value as CaptureMode;
    const child = await audited(
      agent,
      "guest-exec",
      { path: args.path, argv: args.arg ?? [] },
      async () => {
        await agent.policy.checkExec(args.path, args.env);
        try {
          return await agent.platform.exec.spawn({
            path: args.path,
            args: args.arg ?? [],
            env: args.env,
            input,
            capture,
          });
        } catch (e) {
          if (!(e instanceof Error) || e.name !== "ExecSpawnError") throw e;
          // GLib's text, curly quotes included (the writer escapes them as \u201C, \u201D).
          throw genericError(
            `Failed to execute child process \u201C${args.path}\u201D (${e.message})`,
          );
        }
      },
      (c) => ({ pid: c.pid }),
    );
    const table = execTable(agent);
    const rec: ExecRecord = { pid: child.pid };
    table.add(rec);
    child.finished.then(
      (outcome) => table.finish(rec, outcome),
      (e) => agent.log.debug(`guest-exec child ${child.pid}: ${e}`),
    );
    return { pid: child.pid };
  },
});

/** The family, for the command table. */
export const execCommands = [guestExecStatus, guestExec];
