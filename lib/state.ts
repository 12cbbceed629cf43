/**
 * The files qemu-ga keeps in its state directory (§3.2, §4): `qga.state`, a GLib key file
 * holding the persistent handle counter, and the empty marker `qga.state.isfrozen` that says
 * filesystems were left frozen.
 *
 * @module
 */

import { type KeyFile, KeyFileError, loadKeyFile } from "./config_file.ts";
import { osErrorText } from "./errors.ts";

/** The counter's first value (QGA_PSTATE_DEFAULT_FD_COUNTER). */
export const DEFAULT_FD_COUNTER = 1000n;

/**
 * Renders the key file exactly as GLib writes it for qemu-ga: `g_key_file_set_integer` takes a
 * 32-bit int, so a 64-bit counter past 2^31 - 1 is written wrapped (the in-memory one is not).
 */
export function renderStateFile(fdCounter: bigint): string {
  return `[global]\nfd_counter=${BigInt.asIntN(32, fdCounter)}\n`;
}

/**
 * The counter a parsed state file gives qemu-ga: the default without `[global] fd_counter`;
 * `g_key_file_get_integer`'s value when there is one, which is 0 for a value GLib cannot read
 * (qemu-ga ignores that error).
 */
export function fdCounterFromKeyFile(kf: KeyFile): bigint {
  if (!kf.hasKey("global", "fd_counter")) return DEFAULT_FD_COUNTER;
  try {
    return BigInt(kf.getInteger("global", "fd_counter"));
  } catch {
    return 0n;
  }
}

/** Writes a file atomically (temp file + rename), as g_file_set_contents does. */
function writeAtomicSync(path: string, data: string): void {
  const tmp = tempName(path);
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

/** {@link writeAtomicSync} off the event loop, for the request path. */
async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = tempName(path);
  try {
    await Deno.writeTextFile(tmp, data, { mode: 0o644 });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * A unique name like g_file_set_contents' mkstemp; Math.random spares the process the cost of
 * initialising WebCrypto.
 */
function tempName(path: string): string {
  return `${path}.${Math.random().toString(36).slice(2, 8)}`;
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
  #writes: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    this.statePath = `${dir}/qga.state`;
    this.frozenMarkerPath = `${dir}/qga.state.isfrozen`;
  }

  /**
   * Loads `qga.state` as qemu-ga does: when it does not exist, creates it with defaults unless
   * frozen (qemu-ga defers that until there is something to write); a file GLib cannot load
   * stops the agent. Throws a message for the log. Runs once at start-up, before any request.
   */
  load(frozen: boolean): void {
    try {
      Deno.statSync(this.statePath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new Error(`unable to access state file at path ${this.statePath}: ${osErrorText(e)}`);
      }
      this.#fdCounter = DEFAULT_FD_COUNTER;
      if (!frozen) {
        try {
          writeAtomicSync(this.statePath, renderStateFile(this.#fdCounter));
        } catch (e2) {
          throw new Error(
            `failed to write persistent state to ${this.statePath}: ${osErrorText(e2)}; ` +
              `unable to create state file at path ${this.statePath}`,
          );
        }
      }
      return;
    }
    let kf: KeyFile;
    try {
      kf = loadKeyFile(this.statePath);
    } catch (e) {
      if (!(e instanceof KeyFileError)) throw e;
      throw new Error(
        `error loading persistent state from path: ${this.statePath}, ${e.message}`,
      );
    }
    this.#fdCounter = fdCounterFromKeyFile(kf);
  }

  /**
   * Hands out the next handle and persists the incremented counter off the event loop.
   * `persisted` is false when the counter could not be written; the counter still moved on, as
   * in qemu-ga. Writes land in call order, so the file always ends with the newest counter.
   */
  takeHandle(): Promise<{ handle: bigint; persisted: boolean }> {
    const handle = this.#fdCounter;
    this.#fdCounter++;
    const data = renderStateFile(this.#fdCounter);
    const result = this.#writes.then(() => writeAtomic(this.statePath, data)).then(
      () => ({ handle, persisted: true }),
      () => ({ handle, persisted: false }),
    );
    this.#writes = result;
    return result;
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
