/**
 * How GLib's g_spawn_async_with_pipes finds the program qemu-ga's guest-exec runs
 * (`G_SPAWN_SEARCH_PATH | G_SPAWN_SEARCH_PATH_FROM_ENVP`, gspawn.c fork_exec and g_execute):
 *
 * - the search path is `PATH` of the supplied environment; without one (or without an
 *   environment), the agent's own `PATH`; without that, `/bin:/usr/bin:.`;
 * - a name containing `/` is executed as it is, never searched;
 * - an empty name fails with ENOENT;
 * - otherwise each element is tried in order (an empty element means the working directory);
 *   ENOENT, EACCES, ENOTDIR, ESTALE, ENODEV and ETIMEDOUT move on to the next element, any
 *   other error ends the search with that error; when all fail, EACCES wins if it was seen,
 *   else the last error stands.
 *
 * Pure data: no I/O.
 *
 * @module
 */

/** GLib's search path when neither the supplied environment nor the agent has `PATH`. */
export const DEFAULT_SEARCH_PATH = "/bin:/usr/bin:.";

/** The errno names after which GLib tries the next search-path element. */
export const SEARCH_GOES_ON: ReadonlySet<string> = new Set([
  "ENOENT",
  "EACCES",
  "ENOTDIR",
  "ESTALE",
  "ENODEV",
  "ETIMEDOUT",
]);

/** `PATH` in a `NAME=value` list as g_environ_getenv finds it: the first entry wins. */
export function environPath(env: readonly string[]): string | undefined {
  const entry = env.find((e) => e.startsWith("PATH="));
  return entry === undefined ? undefined : entry.slice(5);
}

/**
 * The search path GLib chooses: the supplied environment's `PATH`, else the agent's, else
 * {@link DEFAULT_SEARCH_PATH}.
 */
export function chooseSearchPath(
  env: readonly string[] | undefined,
  agentPath: string | undefined,
): string {
  return (env ? environPath(env) : undefined) ?? agentPath ?? DEFAULT_SEARCH_PATH;
}

/**
 * The paths execve is tried with, in order. A name with a slash is its own single candidate;
 * an empty name has none (ENOENT). An empty search-path element yields `./name`, which the
 * kernel resolves exactly like GLib's bare `name` (relative to the working directory) but
 * cannot be mistaken for a name to search again.
 *
 * @example
 * ```ts
 * execCandidates("sh", "/usr/bin::/bin"); // ["/usr/bin/sh", "./sh", "/bin/sh"]
 * ```
 */
export function execCandidates(name: string, searchPath: string): string[] {
  if (name === "") return [];
  if (name.includes("/")) return [name];
  return searchPath.split(":").map((dir) => (dir === "" ? `./${name}` : `${dir}/${name}`));
}

/**
 * The error GLib reports after every candidate failed with an error in {@link SEARCH_GOES_ON}
 * (`errors` in try order): EACCES if any was EACCES, else the last one (ENOENT for none).
 */
export function searchFailure(errors: readonly string[]): string {
  if (errors.includes("EACCES")) return "EACCES";
  return errors.at(-1) ?? "ENOENT";
}
