/**
 * Which executor ffi/blocking.ts runs blocking calls on, and who is told once it is decided.
 * Apart from ffi/blocking.ts so that the agent can register its listener at start without
 * loading the executors, the ops table and the worker glue, which its first reply does not need.
 *
 * @module
 */

/** The two ways of executing requests (module comment). */
export type ExecutorKind = "trampoline" | "worker";
/** What may be asked for: one executor, or "auto" (the trampoline when it exists). */
export type ExecutorChoice = ExecutorKind | "auto";

/** Which executor runs requests, and why. */
export interface ExecutorStatus {
  /** What was asked for: {@link setExecutor}, else `DENOGA_SYSCALL_EXECUTOR`, else "auto". */
  requested: ExecutorChoice;
  /** What runs requests; "none" when "trampoline" was forced but cannot exist (all fail). */
  active: ExecutorKind | "none";
  /** Why the trampoline is not used, when it is not; or a note on an ignored setting. */
  reason?: string;
}

/** {@link onExecutorDecided}'s listener. */
let decidedListener: ((status: ExecutorStatus) => void) | undefined;

/**
 * Have `listener` told the executor the moment it is decided: on the first blocking request (or
 * {@link executorStatus} call), not at start-up, where building the trampoline would delay the
 * agent's first reply. The agent logs a fallback through it, once; a later {@link setExecutor}
 * makes a new decision, told again.
 */
export function onExecutorDecided(listener: ((status: ExecutorStatus) => void) | undefined): void {
  decidedListener = listener;
}

/** Tells the listener a decision (ffi/blocking.ts). */
export function tellDecided(status: ExecutorStatus): void {
  decidedListener?.(status);
}
