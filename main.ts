/**
 * denoga: a QEMU guest agent. This file only wires: command line → configuration → state →
 * agent → channel → serve; `denoga client …` and `denoga install|uninstall` run the host-side
 * client and the installer instead.
 *
 * @module
 */

import { onExecutorDecided } from "./ffi/executor_status.ts";
import { Agent } from "./lib/agent.ts";
import {
  type Channel,
  FIRST_SOCKET_ACTIVATION_FD,
  openChannel,
  socketActivation,
} from "./lib/channels/mod.ts";
import { SCHEMA_ORDER } from "./lib/commands/order.ts";
import { startupTable } from "./lib/commands/startup.ts";
import { type AgentConfig, channelPathError, resolveConfig } from "./lib/config.ts";
import { isDaemonChild } from "./lib/daemon_child.ts";
import { subcommandOf } from "./lib/install/args.ts";
import { fileSink, Logger } from "./lib/log.ts";
import { systemPlatform } from "./lib/platform/mod.ts";
import { dropLauncherEnvironment } from "./lib/run_flags.ts";
import { Server } from "./lib/serve.ts";
import { StateDir } from "./lib/state.ts";
import { DENOGA_VERSION, QGA_COMPAT_VERSION } from "./lib/version.ts";

const PROG = "denoga";
const encoder = new TextEncoder();

/** Opens the configured channel, or the one inherited through systemd socket activation. */
async function openConfiguredChannel(config: AgentConfig, log: Logger): Promise<Channel> {
  const inherited = await socketActivation();
  if (inherited > 1) throw new Error("qemu-ga only supports listening on one socket");
  return openChannel({
    method: config.method,
    path: config.path,
    listenFd: inherited === 1 ? FIRST_SOCKET_ACTIVATION_FD : undefined,
    retryPath: config.retryPath,
    log,
  });
}

async function main(args: string[]): Promise<number> {
  // Subcommands: only an exact first word selects one (qemu-ga's command line has none); each
  // is loaded on demand so the agent's start-up does not pay for it.
  if (subcommandOf(args)) {
    return await (await import("./lib/install/mod.ts")).runInstallCommand(args, PROG);
  }
  if (args[0] === "client") {
    return await (await import("./lib/client/cli.ts")).clientMain(args.slice(1));
  }
  const outcome = resolveConfig(args, PROG, SCHEMA_ORDER);
  if (outcome.kind === "exit") {
    if (outcome.stderr) Deno.stderr.writeSync(encoder.encode(outcome.stderr));
    if (outcome.stdout) Deno.stdout.writeSync(encoder.encode(outcome.stdout));
    return outcome.code;
  }
  const config = outcome.config;
  // What the launcher sets for Deno itself is not the guest's environment: guest-exec children
  // inherit the agent's, as qemu-ga's do, so they must not see it.
  dropLauncherEnvironment();
  const pathError = channelPathError(config);
  if (pathError) {
    Deno.stderr.writeSync(encoder.encode(pathError));
    return 1;
  }
  // -d: re-run this program detached; it reports back once its channel is open (lib/daemon.ts,
  // loaded only for -d).
  if (isDaemonChild()) config.daemonize = true;
  const daemon = config.daemonize ? await import("./lib/daemon.ts") : undefined;
  if (daemon && !isDaemonChild()) return await daemon.spawnDaemon(args, Deno.mainModule);

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
      log.critical("error initializing guest agent");
      return 1;
    }
  }
  log.debug(`Guest agent version ${QGA_COMPAT_VERSION} (denoga ${DENOGA_VERSION}) started`);
  // Executable memory refused (MemoryDenyWriteExecute=, SELinux deny_execmem): blocking calls
  // run on the worker pool instead of the syscall trampoline. Said once, when first needed.
  onExecutorDecided((executor) => {
    if (executor.requested !== "worker" && executor.active !== "trampoline") {
      const what = executor.active === "worker" ? "run on the worker pool" : "cannot run";
      log.warning(`blocking calls ${what}: ${executor.reason}`);
    }
  });

  try {
    state.load(frozen);
  } catch (e) {
    log.critical((e as Error).message);
    log.critical("failed to load persistent state");
    log.critical("error initializing guest agent");
    return 1;
  }

  const agent = new Agent({
    table: startupTable(),
    options: {
      fsfreezeHook: config.fsfreezeHook,
      blockedRpcs: config.blockedRpcs,
      allowedRpcs: config.allowedRpcs,
      excludeInterfaces: config.excludeInterfaces,
      fsfreezeTimeout: config.fsfreezeTimeout,
      allowExec: config.allowExec,
      allowFilePath: config.allowFilePath,
      denyUser: config.denyUser,
      audit: config.auditLog !== undefined
        ? { file: config.auditLog }
        : config.audit
        ? { log: true }
        : undefined,
    },
    state,
    log,
    frozen,
    platform: systemPlatform(),
  });

  // SIGTERM/SIGINT while frozen would leave filesystems frozen with nobody to thaw them:
  // defer the exit until the thaw (qemu-ga ignores the signal outright, §4). The handlers are
  // in place before the channel opens, as qemu-ga's are: a host (or test) that sees the socket
  // may signal at once, and the default action would kill the agent with status 143.
  let channel: Channel | undefined;
  let drained: () => Promise<void> = () => Promise.resolve();
  let exitRequested = false;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    if (agent.freezer.frozen) {
      exitRequested = true;
      return;
    }
    stopping ??= (async () => {
      channel?.close();
      // Let the reply that ended the frozen state (and any other ready reply) go out first, and
      // write out buffered file data and audit records as exit() does for qemu-ga's stdio
      // streams.
      await drained();
      await agent.flushFiles();
      await agent.audit?.flush();
      Deno.exit(0);
    })();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);

  try {
    channel = await openConfiguredChannel(config, log);
  } catch (e) {
    log.critical((e as Error).message);
    log.critical("failed to create guest agent channel");
    log.critical("failed to initialize guest agent channel");
    return 1;
  }

  // Newest qemu-ga daemonizes only now, so channel errors above still reach the terminal. A
  // frozen start defers the pidfile until the thaw (§4).
  let pidfileDeferred = false;
  if (daemon) {
    try {
      daemon.becomeDaemon(frozen ? undefined : config.pidfile);
    } catch (e) {
      log.critical((e as Error).message);
      return 1;
    }
    addEventListener("unload", () => daemon.unlinkPidfile(config.pidfile));
    pidfileDeferred = frozen;
  }

  const server = new Server(agent, channel);
  drained = () => server.drained();
  agent.freezer.onLeft = () => {
    // A log file deferred by a frozen start can be opened now.
    if (frozen && config.logfile) {
      frozen = false;
      try {
        log.setSink(fileSink(config.logfile));
      } catch {
        // keep logging to stderr, as qemu-ga does
      }
    }
    if (pidfileDeferred && daemon) {
      pidfileDeferred = false;
      try {
        daemon.Pidfile.write(config.pidfile);
      } catch (e) {
        log.warning((e as Error).message);
      }
    }
  };
  // After the thaw's reply (and its hook) is done, not before.
  agent.freezer.onThawed = () => {
    // Audit records held while frozen (a watchdog or signal thaw runs no command that would).
    void agent.audit?.flush();
    if (exitRequested) setTimeout(stop, 0);
  };
  await server.run();
  // Closing the channel ends the server: an exit under way finishes its writes first.
  await stopping;
  return 0;
}

if (import.meta.main) {
  // Run from a microtask, not from this module's top-level code: an exception thrown while the
  // top-level code is on the stack (one is at every start: the config file is usually missing)
  // makes V8 re-parse the whole module (the bundle: all of the agent) for its source positions.
  queueMicrotask(async () => Deno.exit(await main(Deno.args)));
}
