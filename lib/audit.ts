/**
 * denoga's audit trail (opt-in, beyond qemu-ga): one record for every command that changes the
 * guest, written as one JSON object per line to a file (`audit-log=PATH`) or, prefixed with
 * `audit: `, to the agent's log (`audit`). A record never holds a secret (a password is recorded
 * as the user it was set for).
 *
 * While filesystems are frozen nothing is written (a file on a frozen filesystem would block the
 * writer): records are held in memory and written, in order, once frozen state is left. Writes
 * to the file go through the `os` facet, off the event loop.
 *
 * @module
 */

import type { Agent } from "./agent.ts";
import { QgaError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { OsFiles } from "./platform/files.ts";

/** Where records go: a file of its own, or the agent's log. */
export type AuditTarget = { readonly file: string } | { readonly log: true };

/** A record's fields after `time` and `command`; undefined fields are left out. */
export type AuditFields = Readonly<Record<string, unknown>>;

/** Records held while frozen beyond this are counted, not kept. */
export const HELD_RECORDS_MAX = 10000;

/**
 * One audit line: `{"time":ISO-8601,"command":NAME,...fields}` (JSON, keys in that order).
 *
 * @example
 * ```ts
 * formatRecord(new Date(0), "guest-set-user-password", { user: "alice" });
 * // '{"time":"1970-01-01T00:00:00.000Z","command":"guest-set-user-password","user":"alice"}'
 * ```
 */
export function formatRecord(time: Date, command: string, fields: AuditFields): string {
  return JSON.stringify(
    { time: time.toISOString(), command, ...fields },
    (_k, v) =>
      typeof v === "bigint" ? (Number.isSafeInteger(Number(v)) ? Number(v) : String(v)) : v,
  );
}

/** The writer of one agent run. */
export class Audit {
  readonly #target: AuditTarget;
  readonly #log: Logger;
  readonly #os: OsFiles;
  readonly #isFrozen: () => boolean;
  readonly #now: () => Date;
  #held: string[] = [];
  #dropped = 0;
  /** The file writes in order: each waits for the one before. */
  #writing: Promise<void> = Promise.resolve();

  constructor(init: {
    target: AuditTarget;
    log: Logger;
    os: OsFiles;
    isFrozen: () => boolean;
    now?: () => Date;
  }) {
    this.#target = init.target;
    this.#log = init.log;
    this.#os = init.os;
    this.#isFrozen = init.isFrozen;
    this.#now = init.now ?? (() => new Date());
  }

  /** Records one command; held while frozen, written after anything held before it. */
  record(command: string, fields: AuditFields): void {
    const line = formatRecord(this.#now(), command, fields);
    if (this.#isFrozen()) {
      if (this.#held.length < HELD_RECORDS_MAX) this.#held.push(line);
      else this.#dropped++;
      return;
    }
    this.#flushHeld();
    this.#write(line);
  }

  /** Writes what was held while frozen (once frozen state is left); resolves when written. */
  flush(): Promise<void> {
    if (!this.#isFrozen()) this.#flushHeld();
    return this.#writing;
  }

  #flushHeld(): void {
    if (this.#dropped > 0) {
      this.#write(formatRecord(this.#now(), "audit", { dropped: this.#dropped }));
      this.#dropped = 0;
    }
    const held = this.#held;
    this.#held = [];
    for (const line of held) this.#write(line);
  }

  #write(line: string): void {
    const target = this.#target;
    if ("log" in target) {
      this.#log.always("message", `audit: ${line}`);
      return;
    }
    const data = new TextEncoder().encode(`${line}\n`);
    this.#writing = this.#writing.then(() =>
      this.#os.writeFile(target.file, data, { append: true, mode: 0o600 }).catch((e) =>
        this.#log.error(`audit log ${target.file}: ${e instanceof Error ? e.message : e}`)
      )
    );
  }
}

/** What to record once the command has run: the fields the result adds. */
export type AuditResult<T> = (result: T) => AuditFields;

/**
 * Runs a state-changing command's body and records it with `fields`, the fields `after` derives
 * from its result, or the error it failed with. Without an audit trail it only runs the body.
 */
export async function audited<T>(
  agent: Agent,
  command: string,
  fields: AuditFields,
  run: () => T | Promise<T>,
  after?: AuditResult<T>,
): Promise<T> {
  const audit = agent.audit;
  if (!audit) return await run();
  let result: T;
  try {
    result = await run();
  } catch (e) {
    const error = e instanceof QgaError ? e.desc : e instanceof Error ? e.message : String(e);
    audit.record(command, { ...fields, error });
    throw e;
  }
  audit.record(command, { ...fields, ...after?.(result) });
  return result;
}

/**
 * Records a command before it runs and waits until the record is written: for commands after
 * which the guest may be gone (guest-shutdown).
 */
export async function auditFirst(
  agent: Agent,
  command: string,
  fields: AuditFields,
): Promise<void> {
  if (!agent.audit) return;
  agent.audit.record(command, fields);
  await agent.audit.flush();
}
