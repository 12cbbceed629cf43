/**
 * The files qemu-ga keeps in its state directory (§3.2, §4): `qga.state`, a GLib key file
 * holding the persistent handle counter, and the empty marker `qga.state.isfrozen` that says
 * filesystems were left frozen.
 *
 * @module
 */

import { osErrorText } from "./errors.ts";

/** The counter's first value (QGA_PSTATE_DEFAULT_FD_COUNTER). */
export const DEFAULT_FD_COUNTER = 1000n;

/** Renders the key file exactly as GLib writes it for qemu-ga. */
export function renderStateFile(fdCounter: bigint): string {
  return `[global]\nfd_counter=${fdCounter}\n`;
}

/**
 * Reads `fd_counter` from a key file's text; undefined when absent or malformed (qemu-ga then
 * falls back to the default).
 */
export function parseStateFile(text: string): bigint | undefined {
  let group = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[") && line.endsWith("]")) {
      group = line.slice(1, -1);
      continue;
    }
    const eq = line.indexOf("=");
    if (group !== "global" || eq < 0) continue;
    if (line.slice(0, eq).trim() !== "fd_counter") continue;
    const value = line.slice(eq + 1).trim();
    // GLib reads the value as a 32-bit int; non-numbers read as 0.
    if (!/^-?\d+$/.test(value)) return 0n;
    return BigInt.asIntN(32, BigInt(value));
  }
  return undefined;
}

/** Writes a file atomically (temp file + rename), as g_file_set_contents does. */
function writeAtomic(path: string, data: string): void {
  // A unique name like g_file_set_contents' mkstemp; Math.random spares the process the cost
  // of initialising WebCrypto.
  const tmp = `${path}.${Math.random().toString(36).slice(2, 8)}`;
  try {
    Deno.writeTextFileSync(tmp, data, { mode: 0o644 });
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing to clean up
    }
    throw e;
  }
}

/**
 * The state directory's files.
 *
 * @example
 * ```ts
 * const state = new StateDir("/var/run");
 * state.load(false);
 * const handle = state.takeHandle(); // 1000n, persisted
 * ```
 */
export class StateDir {
  readonly statePath: string;
  readonly frozenMarkerPath: string;
  #fdCounter = DEFAULT_FD_COUNTER;

  constructor(readonly dir: string) {
    this.statePath = `${dir}/qga.state`;
    this.frozenMarkerPath = `${dir}/qga.state.isfrozen`;
  }

  /**
   * Loads `qga.state`; when it does not exist, creates it with defaults unless frozen
   * (qemu-ga defers that until there is something to write). Throws a message for the log.
   */
  load(frozen: boolean): void {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.statePath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new Error(`unable to access state file at path ${this.statePath}: ${osErrorText(e)}`);
      }
      this.#fdCounter = DEFAULT_FD_COUNTER;
      if (!frozen) {
        try {
          writeAtomic(this.statePath, renderStateFile(this.#fdCounter));
        } catch (e2) {
          throw new Error(
            `failed to write persistent state to ${this.statePath}: ${osErrorText(e2)}; ` +
              `unable to create state file at path ${this.statePath}`,
          );
        }
      }
      return;
    }
    this.#fdCounter = parseStateFile(text) ?? DEFAULT_FD_COUNTER;
  }

  /**
   * Hands out the next handle and persists the incremented counter. Returns the handle, or
   * undefined when the counter could not be written (the counter still moved on, as in qemu-ga).
   */
  takeHandle(): { handle: bigint; persisted: boolean } {
    const handle = this.#fdCounter;
    this.#fdCounter++;
    try {
      writeAtomic(this.statePath, renderStateFile(this.#fdCounter));
      return { handle, persisted: true };
    } catch {
      return { handle, persisted: false };
    }
  }

  /** True when the frozen marker exists; throws for errors other than "not found". */
  frozenMarkerExists(): boolean {
    try {
      Deno.statSync(this.frozenMarkerPath);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw new Error(
        `unable to access state file at path ${this.frozenMarkerPath}: ${osErrorText(e)}`,
      );
    }
  }

  /** Creates the empty marker (mode 0600). Returns an error text on failure. */
  createFrozenMarker(): string | undefined {
    try {
      Deno.writeFileSync(this.frozenMarkerPath, new Uint8Array(), { mode: 0o600 });
      return undefined;
    } catch (e) {
      return `unable to open/create file ${this.frozenMarkerPath}: ${osErrorText(e)}`;
    }
  }

  /** Deletes the marker. Returns an error text on failure. */
  removeFrozenMarker(): string | undefined {
    try {
      Deno.removeSync(this.frozenMarkerPath);
      return undefined;
    } catch (e) {
      return `unable to delete file: ${this.frozenMarkerPath}: ${osErrorText(e)}`;
    }
  }
}
