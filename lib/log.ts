/**
 * qemu-ga's log: lines `<unix seconds>.<microseconds>: <level>: <message>` on stderr or an
 * append-mode log file (§5.3). Only error and critical are written unless verbose. While
 * filesystems are frozen nothing is written at all (§4): lines are held in a bounded memory
 * buffer and written after the thaw, because a write to a frozen filesystem would block the
 * agent.
 *
 * @module
 */

/** GLib log levels as qemu-ga names them. */
export type LogLevel = "error" | "critical" | "warning" | "message" | "info" | "debug";

const QUIET_LEVELS: ReadonlySet<LogLevel> = new Set(["error", "critical"]);
const HELD_LINES_MAX = 1000;

/** Where log lines go. */
export interface LogSink {
  write(line: string): void;
}

/** A sink writing synchronously to stderr. */
export const stderrSink: LogSink = {
  write(line) {
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(line));
    } catch {
      // A closed stderr must never take the agent down.
    }
  },
};

/** A sink appending to a file (opened once, like qemu-ga's `fopen(path, "a")`). */
export function fileSink(path: string): LogSink {
  const file = Deno.openSync(path, { append: true, create: true, write: true });
  const enc = new TextEncoder();
  return {
    write(line) {
      try {
        file.writeSync(enc.encode(line));
      } catch {
        // Logging failures are not the host's problem.
      }
    },
  };
}

/** Formats the qemu-ga timestamp `seconds.microseconds`. */
export function logTimestamp(): string {
  const micros = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  const s = micros / 1000000n;
  const us = (micros % 1000000n).toString().padStart(6, "0");
  return `${s}.${us}`;
}

/**
 * The agent's logger.
 *
 * @example
 * ```ts
 * const log = new Logger({ verbose: true });
 * log.debug("guest-ping called");
 * ```
 */
export class Logger {
  #sink: LogSink;
  #verbose: boolean;
  #enabled = true;
  #held: string[] = [];
  #heldDropped = 0;

  constructor(opts: { verbose: boolean; sink?: LogSink }) {
    this.#verbose = opts.verbose;
    this.#sink = opts.sink ?? stderrSink;
  }

  /** Replaces the sink (e.g. once a deferred log file can be opened after a thaw). */
  setSink(sink: LogSink): void {
    this.#sink = sink;
  }

  /** Stops writing (frozen state): lines are held in memory until `enable()`. */
  disable(): void {
    this.#enabled = false;
  }

  /** Resumes writing and flushes what was held while disabled. */
  enable(): void {
    this.#enabled = true;
    if (this.#heldDropped > 0) {
      this.#emit("warning", `${this.#heldDropped} log lines dropped while frozen`);
      this.#heldDropped = 0;
    }
    const held = this.#held;
    this.#held = [];
    for (const line of held) this.#sink.write(line);
  }

  /** True when a message of `level` would be written. */
  wants(level: LogLevel): boolean {
    return this.#verbose || QUIET_LEVELS.has(level);
  }

  log(level: LogLevel, msg: string): void {
    if (!this.wants(level)) return;
    this.#emit(level, msg);
  }

  /** Writes `msg` whatever the verbosity (denoga's audit records); held while frozen. */
  always(level: LogLevel, msg: string): void {
    this.#emit(level, msg);
  }

  #emit(level: LogLevel, msg: string): void {
    const line = `${logTimestamp()}: ${level}: ${msg}\n`;
    if (this.#enabled) {
      this.#sink.write(line);
    } else if (this.#held.length < HELD_LINES_MAX) {
      this.#held.push(line);
    } else {
      this.#heldDropped++;
    }
  }

  error(msg: string): void {
    this.log("error", msg);
  }
  critical(msg: string): void {
    this.log("critical", msg);
  }
  warning(msg: string): void {
    this.log("warning", msg);
  }
  info(msg: string): void {
    this.log("info", msg);
  }
  debug(msg: string): void {
    this.log("debug", msg);
  }
}

/**
 * A line as GLib's default log handler writes it, which is what qemu-ga prints for errors found
 * before its own handler is installed (config file errors, `must specify a path for this
 * channel`): `\n** (process:<pid>): CRITICAL **: HH:MM:SS.mmm: <message>\n`, local time. qemu-ga
 * never calls setlocale(), so GLib converts the text to ASCII and every non-ASCII character
 * (e.g. GLib's curly quotes) becomes `?`.
 */
export function glibCritical(msg: string, pid: number = Deno.pid, now: Date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const time = `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}.` +
    String(now.getMilliseconds()).padStart(3, "0");
  const ascii = msg.replace(/[\u0080-\u{10ffff}]/gu, "?");
  return `\n** (process:${pid}): CRITICAL **: ${time}: ${ascii}\n`;
}
