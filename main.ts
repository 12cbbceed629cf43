/**
 * denoga: a QEMU guest agent. This file only wires: command line → configuration → state →
 * agent → channel → serve.
 *
 * @module
 */

import { fileSyscalls } from "./ffi/file.ts";
import { freezeSyscalls } from "./ffi/fsfreeze.ts";
import { Agent } from "./lib/agent.ts";
import type { Channel } from "./lib/channels/channel.ts";
import { openUnixListen } from "./lib/channels/unix.ts";
import { openVirtioSerial } from "./lib/channels/virtio_serial.ts";
import { COMMANDS, commandTable } from "./lib/commands/mod.ts";
import { type AgentConfig, DEFAULTS, resolveConfig } from "./lib/config.ts";
import { fileSink, Logger } from "./lib/log.ts";
import { buildMountList } from "./lib/mounts.ts";
import { isExecutable, runCommand } from "./lib/process.ts";
import { Server } from "./lib/serve.ts";
import { StateDir } from "./lib/state.ts";
import { DENOGA_VERSION, QGA_COMPAT_VERSION } from "./lib/version.ts";

const PROG = "denoga";
const encoder = new TextEncoder();

function openChannel(config: AgentConfig): Channel {
  switch (config.method) {
    case "unix-listen":
      if (!config.path) throw new Error("must specify a path for this channel");
      return openUnixListen(config.path);
    case "virtio-serial":
      return openVirtioSerial(config.path ?? DEFAULTS.virtioPath);
    default:
      throw new Error(`unsupported channel method/type: ${config.method}`);
  }
}

async function main(args: string[]): Promise<number> {
  const outcome = resolveConfig(args, PROG, COMMANDS.map((c) => c.name));
  if (outcome.kind === "exit") {
    if (outcome.stderr) Deno.stderr.writeSync(encoder.encode(outcome.stderr));
    if (outcome.stdout) Deno.stdout.writeSync(encoder.encode(outcome.stdout));
    return outcome.code;
  }
  const config = outcome.config;
  const log = new Logger({ verbose: config.verbose });
  const state = new StateDir(config.statedir);

  let frozen: boolean;
  try {
    frozen = state.frozenMarkerExists();
  } catch (e) {
    log.critical((e as Error).message);
    return 1;
  }
  if (frozen) {
    log.warning(
      "previous instance appears to have exited with frozen filesystems. deferring " +
        "logging/pidfile creation and disabling non-fsfreeze-safe commands until " +
        "guest-fsfreeze-thaw is issued, or filesystems are manually unfrozen and the file " +
        `${state.frozenMarkerPath} is removed`,
    );
  } else if (config.logfile) {
    try {
      log.setSink(fileSink(config.logfile));
    } catch (e) {
      log.critical(`unable to open specified log file: ${(e as Error).message}`);
      return 1;
    }
  }
  log.debug(`Guest agent version ${QGA_COMPAT_VERSION} (denoga ${DENOGA_VERSION}) started`);

  try {
    state.load(frozen);
  } catch (e) {
    log.critical((e as Error).message);
    log.critical("failed to load persistent state");
    return 1;
  }

  const agent = new Agent({
    table: commandTable(),
    options: {
      fsfreezeHook: config.fsfreezeHook,
      blockedRpcs: config.blockedRpcs,
      allowedRpcs: config.allowedRpcs,
    },
    state,
    log,
    frozen,
    platform: {
      files: fileSyscalls,
      freeze: freezeSyscalls,
      mounts: () => buildMountList(),
      run: runCommand,
      isExecutable,
    },
  });

  let channel: Channel;
  try {
    channel = openChannel(config);
  } catch (e) {
    log.critical((e as Error).message);
    log.critical("failed to initialize guest agent channel");
    return 1;
  }

  // SIGTERM/SIGINT while frozen would leave filesystems frozen with nobody to thaw them:
  // defer the exit until the thaw (qemu-ga ignores the signal outright, §4).
  const server = new Server(agent, channel);
  let exitRequested = false;
  const stop = async () => {
    if (agent.frozen) {
      exitRequested = true;
      return;
    }
    channel.close();
    // Let the reply that ended the frozen state (and any other ready reply) go out first, and
    // write out buffered file data as exit() does for qemu-ga's stdio streams.
    await server.drained();
    await agent.flushFiles();
    Deno.exit(0);
  };
  agent.onThawed = () => {
    // A log file deferred by a frozen start can be opened now.
    if (frozen && config.logfile) {
      frozen = false;
      try {
        log.setSink(fileSink(config.logfile));
      } catch {
        // keep logging to stderr, as qemu-ga does
      }
    }
    if (exitRequested) setTimeout(stop, 0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);

  await server.run();
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
