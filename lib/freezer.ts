/**
 * The freezer: the one owner of frozen state. The guest-fsfreeze-* commands, the signal path
 * (an exit is deferred while frozen), a frozen start (`qga.state.isfrozen` left behind) and the
 * auto-thaw watchdog all go through it, so they cannot disagree about what is frozen.
 *
 * Two things qemu-ga cannot meet because it goes deaf while FIFREEZE sleeps in the kernel, and
 * denoga can, because the router leaves a stuck command behind on a resync (§2.1):
 * - a thaw that arrives while a freeze is still running waits for it, stops it before the next
 *   mount point, and then thaws everything, so nothing stays frozen behind the host's back;
 * - with `fsfreeze-timeout` set, filesystems the agent froze are thawed when no host thaws them
 *   in time.
 *
 * @module
 */

import { sameBytes } from "./bytes.ts";
import type { Logger } from "./log.ts";
import type { Platform } from "./platform/mod.ts";
import type { StateDir } from "./state.ts";
import { genericError } from "./errors.ts";
import { encodeModUtf8 } from "./protocol/utf8.ts";

/** What the freezer needs from the agent. */
export interface FreezerInit {
  readonly log: Logger;
  readonly state: StateDir;
  readonly platform: Platform;
  /** `-F`: the hook run with `freeze`/`thaw`, if enabled. */
  readonly hook?: string;
  /** `fsfreeze-timeout`: seconds before an auto-thaw; 0 or absent: never (qemu-ga). */
  readonly timeoutSeconds?: number;
  /** True for a frozen start (the marker was found). */
  readonly frozen?: boolean;
}

/**
 * Frozen state and the freeze/thaw walks over the mount list.
 *
 * @example
 * ```ts
 * const freezer = new Freezer({ log, state, platform, timeoutSeconds: 600 });
 * await freezer.freeze(["/mnt/data"]); // 1
 * freezer.frozen; // true
 * await freezer.thaw(); // 1
 * ```
 */
export class Freezer {
  readonly #log: Logger;
  readonly #state: StateDir;
  readonly #platform: Platform;
  readonly #hook: string | undefined;
  readonly #timeoutMs: number;
  #frozen: boolean;
  /** Mount points this agent froze, in freeze order; undefined after a frozen start. */
  #frozenByUs: Uint8Array[] | undefined = [];
  /** The freeze running now (it may be stuck in the kernel, left behind by a resync). */
  #freezing: Promise<unknown> | undefined;
  /** A thaw came in while #freezing ran: freeze no further mount point. */
  #thawWanted = false;
  #autoThawing = false;
  /** Frozen state was left and {@link onThawed} has not been told yet. */
  #leftUntold = false;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  /** Called as frozen state is left, before anything else is logged: deferred log file, pidfile. */
  onLeft: (() => void) | undefined;
  /**
   * Called once frozen state has been left and the operation that left it (thaw hook and
   * watchdog log line included) is done: a pending exit.
   */
  onThawed: (() => void) | undefined;

  constructor(init: FreezerInit) {
    this.#log = init.log;
    this.#state = init.state;
    this.#platform = init.platform;
    this.#hook = init.hook;
    this.#timeoutMs = Math.max(0, init.timeoutSeconds ?? 0) * 1000;
    this.#frozen = init.frozen ?? false;
    if (this.#frozen) {
      this.#frozenByUs = undefined;
      this.#log.disable();
      this.#armWatchdog();
    }
  }

  /** True while the agent considers filesystems frozen (it does not ask the kernel, §3.4). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /**
   * Freezes the listed mount points (all when undefined) in reverse mount order; returns how
   * many were frozen. Frozen state is entered before the first ioctl.
   */
  freeze(mountpoints: readonly string[] | undefined): Promise<number> {
    this.#thawWanted = false;
    const run = this.#freeze(mountpoints);
    this.#freezing = run;
    const done = () => {
      if (this.#freezing === run) this.#freezing = undefined;
      this.#tellThawed();
    };
    run.then(done, done);
    return run;
  }

  /**
   * Thaws every mounted filesystem and leaves frozen state; returns how many were thawed. A
   * freeze still running is stopped before its next mount point and waited for first.
   */
  async thaw(): Promise<number> {
    try {
      await this.#settleFreeze();
      return await this.#thawMounts(undefined);
    } finally {
      this.#tellThawed();
    }
  }

  /** Enters frozen state by hand (tests of what frozen state changes). */
  enterFrozen(): void {
    this.#enter();
  }

  /** Leaves frozen state by hand, without thawing anything. */
  leaveFrozen(): void {
    this.#leave();
    this.#tellThawed();
  }

  #tellThawed(): void {
    if (!this.#leftUntold || this.#frozen) return;
    this.#leftUntold = false;
    this.onThawed?.();
  }

  async #settleFreeze(): Promise<void> {
    if (this.#freezing === undefined) return;
    this.#thawWanted = true;
    await this.#freezing.catch(() => {});
  }

  async #runHook(arg: "freeze" | "thaw"): Promise<void> {
    // An empty path (config `fsfreeze-hook=`) still counts as enabled and fails, as in qemu-ga.
    if (this.#hook === undefined) return;
    this.#log.debug(`executing fsfreeze hook with arg '${arg}'`);
    await this.#platform.run([this.#hook, arg], "execute fsfreeze hook");
  }

  async #freeze(mountpoints: readonly string[] | undefined): Promise<number> {
    this.#log.debug("guest-fsfreeze called");
    await this.#runHook("freeze");
    const mounts = await this.#platform.mounts();
    // Frozen state (marker file, commands off, logging off) comes before the first ioctl: once
    // a filesystem is frozen nothing may be written to it.
    this.#enter();
    // qemu-ga compares the requested strings with each mount point byte for byte (strcmp).
    const wanted = mountpoints?.map((p) => encodeModUtf8(p));
    let frozen = 0;
    for (const m of mounts.toReversed()) {
      if (wanted && !wanted.some((w) => sameBytes(w, m.path))) continue;
      if (this.#thawWanted) break;
      const outcome = await this.#platform.freeze.freeze(m.path);
      if (outcome.ok) {
        frozen++;
        this.#frozenByUs?.push(m.path);
      } else if (!outcome.skipped) {
        const verb = outcome.stage === "open" ? "open" : "freeze";
        const err = genericError(`failed to ${verb} ${m.dirname}: ${outcome.strerror}`);
        // Any real failure thaws everything (hook included); its own errors are not reported.
        await this.#thawMounts(undefined).catch(() => {});
        throw err;
      }
    }
    // Nothing frozen: leave frozen state at once, without the thaw hook.
    if (frozen === 0) this.#leave();
    return frozen;
  }

  /** Thaws `only` (byte paths), or every mount point, in mount order; runs the thaw hook. */
  async #thawMounts(only: readonly Uint8Array[] | undefined): Promise<number> {
    const mounts = await this.#platform.mounts();
    let thawed = 0;
    for (const m of mounts) {
      if (only && !only.some((p) => sameBytes(p, m.path))) continue;
      if (await this.#platform.freeze.thaw(m.path)) thawed++;
    }
    this.#leave();
    this.#log.debug("guest-fsthaw called");
    await this.#runHook("thaw");
    return thawed;
  }

  /** Marker file first, then commands off, then logging off. */
  #enter(): void {
    if (this.#frozen) return;
    this.#log.warning("disabling logging due to filesystem freeze");
    this.#frozen = true;
    this.#frozenByUs = [];
    const err = this.#state.createFrozenMarker();
    if (err) {
      this.#log.warning(err);
      this.#log.warning(
        `unable to create ${this.#state.frozenMarkerPath}, fsfreeze may not function properly`,
      );
    }
    this.#log.disable();
    this.#armWatchdog();
  }

  /** Logging back on, marker removed, commands re-enabled. */
  #leave(): void {
    if (!this.#frozen) return;
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    // The deferred log file first, so the lines held while frozen go to it (as qemu-ga opens it
    // before enabling logging).
    this.onLeft?.();
    this.#log.enable();
    this.#log.warning("logging re-enabled due to filesystem unfreeze");
    this.#frozen = false;
    const err = this.#state.removeFrozenMarker();
    if (err) {
      this.#log.warning(err);
      this.#log.warning(
        `unable to delete ${this.#state.frozenMarkerPath}, fsfreeze may not function properly`,
      );
    }
    this.#leftUntold = true;
  }

  #armWatchdog(): void {
    if (this.#timeoutMs === 0) return;
    const timer = setTimeout(() => void this.#autoThaw(), this.#timeoutMs);
    // The watchdog alone must not keep a finished agent alive.
    Deno.unrefTimer(timer);
    this.#watchdog = timer;
  }

  /**
   * Thaws what this agent froze (everything after a frozen start: what the previous instance
   * froze is unknown), then logs it — only now, since logging is off while frozen.
   */
  async #autoThaw(): Promise<void> {
    this.#watchdog = undefined;
    if (this.#autoThawing || !this.#frozen) return;
    this.#autoThawing = true;
    try {
      await this.#settleFreeze();
      if (!this.#frozen) return;
      const only = this.#frozenByUs?.slice();
      const n = await this.#thawMounts(only);
      this.#log.error(
        `no guest-fsfreeze-thaw within fsfreeze-timeout (${this.#timeoutMs / 1000} s): ` +
          `thawed ${n} filesystem${n === 1 ? "" : "s"}`,
      );
    } catch (e) {
      this.#log.error(`fsfreeze-timeout thaw failed: ${e instanceof Error ? e.message : e}`);
    } finally {
      this.#autoThawing = false;
      this.#tellThawed();
    }
  }
}
