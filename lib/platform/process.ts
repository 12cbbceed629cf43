/**
 * Runs helper programs (fsfreeze hook, shutdown) the way newest qemu-ga's ga_run_command does
 * (§3.4, §3.5): new session, stdin from /dev/null, stdout and stderr captured, then
 * `child process has failed to <action>: <output>` or `...: exit status <n>` on failure.
 *
 * @module
 */

import { genericError, osErrorText } from "../errors.ts";

const decoder = new TextDecoder();

/**
 * Runs `argv` to completion; resolves on exit status 0, throws QgaError otherwise.
 *
 * @example
 * ```ts
 * await runCommand(["/etc/qemu/fsfreeze-hook", "freeze"], "execute fsfreeze hook");
 * ```
 */
export async function runCommand(argv: readonly string[], action: string): Promise<void> {
  let output: string;
  let code: number;
  let signal: Deno.Signal | null;
  try {
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    const [status, out, err] = await Promise.all([
      child.status,
      new Response(child.stdout).arrayBuffer(),
      new Response(child.stderr).arrayBuffer(),
    ]);
    output = decoder.decode(out) + decoder.decode(err);
    code = status.code;
    signal = status.signal;
  } catch (e) {
    // qemu-ga's child prints perror("failed to exec '<path>'") into the pipe and exits 1.
    output = `failed to exec '${argv[0]}': ${osErrorText(e)}\n`;
    code = 1;
    signal = null;
  }
  if (signal !== null) {
    throw genericError(
      output ? `child process has terminated abnormally: ${output}` : (
        "child process has terminated abnormally"
      ),
    );
  }
  if (code !== 0) {
    throw genericError(
      output ? `child process has failed to ${action}: ${output}` : (
        `child process has failed to ${action}: exit status ${code}`
      ),
    );
  }
}

/** access(path, X_OK) for the agent (root): a regular file with any execute bit. */
export function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}
