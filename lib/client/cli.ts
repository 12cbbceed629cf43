/**
 * `denoga client`: the host-side command line (qemu-ga ships none). Connects, performs the sync
 * handshake, runs one command and prints its reply, or one of the conveniences (exec, cat, put,
 * freeze/thaw/status, info, ifconfig, fsinfo, osinfo). Every failure is one line on stderr and a
 * non-zero exit.
 *
 * @module
 */

import {
  type Json,
  parseJson,
  type QgaAddress,
  QgaClient,
  QgaCommandError,
  stringifyJson,
} from "./connection.ts";
import { fsinfoTable, ifconfigTable, infoTable, keyValueTable } from "./tables.ts";
import { guestExec, inChunks, type Progress, readGuestFile, writeGuestFile } from "./transfer.ts";

const enc = new TextEncoder();
const PROG = "denoga client";

/** Usage text of `denoga client --help`. */
export const USAGE = `Usage: ${PROG} (--socket PATH | --vsock CID:PORT) [options] COMMAND [ARGS]

Options:
  --socket PATH      the agent's unix socket (e.g. QEMU's chardev for org.qemu.guest_agent.0)
  --vsock CID:PORT   the agent's vsock address (needs Deno's --unstable-vsock)
  --timeout SEC      wait this long for the agent to answer (default 5)
  --json             print replies as JSON instead of tables
  -h, --help         this text

Commands:
  guest-NAME ['{"arg":…}']   send any command, print its reply as JSON
  exec PROGRAM [ARG…]        run a program in the guest, print its output, exit with its code
  cat GUEST-PATH             write a guest file to stdout
  put HOST-PATH|- GUEST-PATH copy a host file (or stdin) to the guest
  freeze [MOUNTPOINT…]       freeze filesystems (all of them when none is named)
  thaw                       thaw them
  status                     frozen or thawed
  info                       agent version and commands
  ifconfig                   network interfaces
  fsinfo                     mounted filesystems
  osinfo                     operating system
  ping                       check that the agent answers
`;

/** A usage error: exit code 2. */
class UsageError extends Error {}

function parseAddress(socket?: string, vsock?: string): QgaAddress {
  if (socket !== undefined && vsock !== undefined) {
    throw new UsageError("give --socket or --vsock, not both");
  }
  if (socket !== undefined) return { unix: socket };
  if (vsock !== undefined) {
    const m = /^(\d+):(\d+)$/.exec(vsock);
    if (!m) throw new UsageError(`--vsock wants CID:PORT, got ${vsock}`);
    return { vsock: { cid: Number(m[1]), port: Number(m[2]) } };
  }
  throw new UsageError("--socket PATH or --vsock CID:PORT is required");
}

/** A progress line on stderr, only when stderr is a terminal. */
function progressBar(what: string, total?: number): { update: Progress; end: () => void } {
  if (!Deno.stderr.isTerminal()) return { update: () => {}, end: () => {} };
  const update = (done: number) => {
    const mib = (done / 1048576).toFixed(1);
    let line = `${what}: ${mib} MiB`;
    if (total) {
      const pct = Math.min(1, done / total);
      const bar = "#".repeat(Math.round(pct * 30)).padEnd(30, ".");
      line = `${what}: [${bar}] ${(pct * 100).toFixed(0)}% ${mib} MiB`;
    }
    Deno.stderr.writeSync(enc.encode(`\r${line}`));
  };
  return { update, end: () => Deno.stderr.writeSync(enc.encode("\n")) };
}

async function writeAll(w: WritableStreamDefaultWriter<Uint8Array>, b: Uint8Array) {
  if (b.length > 0) await w.write(b);
}

async function runCommand(
  client: QgaClient,
  command: string,
  rest: string[],
  asJson: boolean,
): Promise<number> {
  const print = (s: string) => Deno.stdout.writeSync(enc.encode(s));
  const show = async (
    execute: string,
    format: (v: Json) => string,
    args?: Record<string, Json>,
  ) => {
    const value = await client.call(execute, args);
    print(asJson ? stringifyJson(value, 2) + "\n" : format(value));
  };
  switch (command) {
    case "exec": {
      if (rest.length === 0) throw new UsageError("exec needs a program");
      const r = await guestExec(client, rest[0], rest.slice(1));
      const out = Deno.stdout.writable.getWriter();
      await writeAll(out, r.stdout);
      out.releaseLock();
      const err = Deno.stderr.writable.getWriter();
      await writeAll(err, r.stderr);
      err.releaseLock();
      if (r.truncated) console.error(`${PROG}: the agent truncated the output`);
      if (r.signal !== undefined) return 128 + r.signal;
      return r.exitcode ?? 0;
    }
    case "cat": {
      if (rest.length !== 1) throw new UsageError("cat needs one guest path");
      const out = Deno.stdout.writable.getWriter();
      const bar = progressBar(rest[0]);
      await readGuestFile(client, rest[0], (c) => out.write(c), bar.update);
      bar.end();
      out.releaseLock();
      return 0;
    }
    case "put": {
      if (rest.length !== 2) throw new UsageError("put needs a host path (or -) and a guest path");
      const [from, to] = rest;
      const file = from === "-" ? undefined : await Deno.open(from);
      const size = file ? (await file.stat()).size : undefined;
      const bar = progressBar(to, size);
      try {
        const stream = file ? file.readable : Deno.stdin.readable;
        await writeGuestFile(client, to, inChunks(stream), bar.update);
      } finally {
        bar.end();
      }
      return 0;
    }
    case "freeze": {
      const n = rest.length > 0
        ? await client.call<number>("guest-fsfreeze-freeze-list", { mountpoints: rest }, 60_000)
        : await client.call<number>("guest-fsfreeze-freeze", undefined, 60_000);
      print(asJson ? `${n}\n` : `frozen ${n} filesystem(s)\n`);
      return 0;
    }
    case "thaw": {
      const n = await client.call<number>("guest-fsfreeze-thaw", undefined, 60_000);
      print(asJson ? `${n}\n` : `thawed ${n} filesystem(s)\n`);
      return 0;
    }
    case "status":
      await show("guest-fsfreeze-status", (v) => `${v}\n`);
      return 0;
    case "ping":
      await client.call("guest-ping");
      if (asJson) print("{}\n");
      return 0;
    case "info":
      await show("guest-info", infoTable);
      return 0;
    case "ifconfig":
      await show("guest-network-get-interfaces", ifconfigTable);
      return 0;
    case "fsinfo":
      await show("guest-get-fsinfo", fsinfoTable);
      return 0;
    case "osinfo":
      await show("guest-get-osinfo", keyValueTable);
      return 0;
  }
  if (rest.length > 1) throw new UsageError(`${command} takes one JSON object of arguments`);
  let args: Record<string, Json> | undefined;
  if (rest.length === 1) {
    let parsed: Json;
    try {
      parsed = parseJson(rest[0]);
    } catch (e) {
      throw new UsageError(`arguments are not JSON: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new UsageError("arguments must be a JSON object");
    }
    args = parsed;
  }
  const value = await client.call(command, args);
  print(stringifyJson(value, 2) + "\n");
  return 0;
}

interface Options {
  socket?: string;
  vsock?: string;
  timeout?: string;
  json?: boolean;
  help?: boolean;
}

const VALUED = ["socket", "vsock", "timeout"] as const;

/**
 * Splits `argv` into options and the command with its arguments: options end at the command, so
 * `exec ls -l` passes -l to ls. `--name value` and `--name=value` are both accepted.
 */
function parseOptions(argv: string[]): { values: Options; positionals: string[] } {
  const values: Options = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") return { values, positionals: argv.slice(i + 1) };
    if (!a.startsWith("-") || a === "-") return { values, positionals: argv.slice(i) };
    if (a === "--json") values.json = true;
    else if (a === "-h" || a === "--help") values.help = true;
    else {
      const m = /^--([a-z]+)(?:=(.*))?$/s.exec(a);
      const name = VALUED.find((n) => n === m?.[1]);
      if (!m || !name) throw new UsageError(`unknown option ${a}`);
      const value = m[2] ?? argv[++i];
      if (value === undefined) throw new UsageError(`${a} needs a value`);
      values[name] = value;
    }
  }
  return { values, positionals: [] };
}

/** Runs `denoga client ARGS`; returns the exit code. */
export async function clientMain(argv: string[]): Promise<number> {
  let client: QgaClient | undefined;
  try {
    const { values, positionals } = parseOptions(argv);
    if (values.help) {
      Deno.stdout.writeSync(enc.encode(USAGE));
      return 0;
    }
    const address = parseAddress(values.socket, values.vsock);
    const timeout = values.timeout === undefined ? 5 : Number(values.timeout);
    if (!(timeout > 0)) throw new UsageError(`--timeout wants seconds, got ${values.timeout}`);
    const [command, ...rest] = positionals;
    if (command === undefined) throw new UsageError("no command given");
    client = await QgaClient.connect(address, { timeoutMs: timeout * 1000 });
    return await runCommand(client, command, rest, values.json ?? false);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${PROG}: ${e.message}\nTry '${PROG} --help' for more information.`);
      return 2;
    }
    const message = e instanceof QgaCommandError ? e.message : (e as Error).message;
    console.error(`${PROG}: ${message}`);
    return 1;
  } finally {
    client?.close();
  }
}
