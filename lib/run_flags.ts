/**
 * The flags every `deno run` of the agent uses (tests, benchmark, `deno task start`), matching
 * what `deno compile` bakes into the guest executable: all permissions (the agent opens /dev,
 * /proc and /sys, clients-and-peers.md §4.3), never prompt, no deno.json — the agent needs none
 * at run time, and loading it costs the process about 1.5 MiB of RSS — and no V8 code cache:
 * `deno run` maps Deno's code-cache database to look the agent's modules up, about 1.1 MiB of
 * idle RSS, while start-up to the first reply takes no longer without it (measured: 150–190 ms
 * either way on the 2-core build machine). `--expose-gc` gives lib/memory.ts V8's full GC without
 * loading the Node compatibility modules, which would stay resident after a first burst.
 *
 * @module
 */

/** `deno run` flags for the agent. */
export const AGENT_RUN_FLAGS = [
  "-A",
  "--no-prompt",
  "--no-config",
  "--no-code-cache",
  "--v8-flags=--expose-gc",
] as const;

/**
 * Environment of the agent's `deno run` (the launcher sets it): `deno run` otherwise checks Deno's
 * servers for a newer release shortly after start (a DNS lookup and a TLS connection from the
 * guest, CPU taken from the agent's first seconds). The compiled binary makes no such check.
 */
export const AGENT_RUN_ENV = { DENO_NO_UPDATE_CHECK: "1" } as const;

/**
 * What the launcher sets for Deno itself ({@link AGENT_RUN_ENV}, and `DENO_DIR` under systemd)
 * and what systemd sets for the unit's runtime directory. Deno has read them by the time the
 * agent's code runs, so the agent drops them ({@link dropLauncherEnvironment}): guest-exec
 * children inherit what qemu-ga's would, and a Deno program a host runs does not use the agent's
 * cache.
 */
export const LAUNCHER_ENV_NAMES: readonly string[] = [
  ...Object.keys(AGENT_RUN_ENV),
  "DENO_DIR",
  "RUNTIME_DIRECTORY",
];

/** Removes {@link LAUNCHER_ENV_NAMES} from this process's environment. */
export function dropLauncherEnvironment(): void {
  for (const name of LAUNCHER_ENV_NAMES) Deno.env.delete(name);
}
