/**
 * Runs helper programs (fsfreeze hook, shutdown, chpasswd) the way newest qemu-ga's
 * ga_run_command does (§3.4, §3.5, §3.12): new session, stdin from /dev/null or fed the given
 * input, stdout and stderr captured, then `child process has failed to <action>: <output>` or
 * `...: exit status <n>` on failure. {@link runStatus} is qemu-ga's other runner (suspend's
 * run_process_child): only the exit status matters.
 *
 * @module
 */

import { genericError, osErrorText } from "../errors.ts";

const decoder = new TextDecoder();

/**
 * Runs `argv` to completion (a name without `/` is searched in PATH, as execvp does), with
 * `input` on its stdin when given; resolves on exit status 0, throws QgaError otherwise.
 *
 * @example
 * ```ts
 * await runCommand(["/etc/qemu/fsfreeze-hook", "freeze"], "execute fsfreeze hook");
 * await runCommand(["chpasswd"], "set user password", new TextEncoder().encode("u:pw\n"));
 * ```
 */
export async function runCommand(
  argv: readonly string[],
  action: string,
  input?: Uint8Array,
): Promise<void> {
  let output: string;
  let code: number;
  let signal: Deno.Signal | null;
  try {
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: input ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    if (input) await feed(child.stdin, input);
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
    output = `failed to exec '${argv[0]}': ${spawnErrorText(e)}\n`;
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

/**
 * Writes all of `input` to the child's stdin and closes it. qemu-ga writes into the pipe before
 * the child has even started, and a line of input fits in the pipe's buffer, so it never sees
 * a child that went away unread; here the child may already be gone (an early exit, which its
 * status reports), so a broken pipe is not an error of its own.
 */
async function feed(stdin: WritableStream<Uint8Array>, input: Uint8Array): Promise<void> {
  const writer = stdin.getWriter();
  try {
    await writer.write(input);
    await writer.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}

/** strerror of a failed spawn: Deno says "entity not found" when PATH has no such program. */
function spawnErrorText(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "No such file or directory";
  return osErrorText(e);
}

/**
 * Runs `argv` with stdin, stdout and stderr on /dev/null (a name without `/` is searched in
 * PATH) and resolves its exit status; -1 when it could not be started. A child killed by a
 * signal counts as 0, as WEXITSTATUS reads it in qemu-ga.
 */
export async function runStatus(argv: readonly string[]): Promise<number> {
  try {
    const status = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().status;
    return status.signal !== null ? 0 : status.code;
  } catch {
    return -1;
  }
}

/**
 * Runs `argv` (stdin and stderr on /dev/null) and resolves its exit status and standard output;
 * undefined when it could not be started.
 */
export async function runOutput(
  argv: readonly string[],
): Promise<{ code: number; stdout: Uint8Array } | undefined> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return { code: out.code, stdout: out.stdout };
  } catch {
    return undefined;
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
