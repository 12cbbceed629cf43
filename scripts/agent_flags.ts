/**
 * The flags every `deno run` of the agent uses (tests, benchmark, `deno task start`), matching
 * what `deno compile` bakes into the guest executable: all permissions (the agent opens /dev,
 * /proc and /sys, clients-and-peers.md §4.3), never prompt, and no deno.json — the agent needs
 * none at run time, and loading it costs the process about 1.5 MiB of RSS.
 *
 * @module
 */

/** `deno run` flags for the agent. */
export const AGENT_RUN_FLAGS = ["-A", "--no-prompt", "--no-config"] as const;
