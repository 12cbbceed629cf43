/**
 * The marker of the re-executed `-d` child (lib/daemon.ts), in a module of its own so that
 * `main.ts` can ask "am I the daemon child?" without loading the daemon code, which only a
 * `-d` run needs.
 *
 * @module
 */

/** Environment marker of the re-executed daemon child; its value is unused. */
export const DAEMON_CHILD_ENV = "DENOGA_DAEMON_CHILD";

let daemonChild: boolean | undefined;

/**
 * True in the re-executed daemon child (whose command line no longer has `-d`). The marker is
 * removed from the environment on first call so processes the agent starts never see it.
 */
export function isDaemonChild(): boolean {
  if (daemonChild === undefined) {
    daemonChild = Deno.env.get(DAEMON_CHILD_ENV) !== undefined;
    if (daemonChild) Deno.env.delete(DAEMON_CHILD_ENV);
  }
  return daemonChild;
}
