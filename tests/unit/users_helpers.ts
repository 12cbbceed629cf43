/** An Agent over a fake platform, for the users family unit tests (ssh, password, suspend). */

import { Agent } from "../../lib/agent.ts";
import { commandTable } from "../../lib/commands/mod.ts";
import { QgaError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import { fakePlatform, type Platform } from "../../lib/platform/mod.ts";
import { StateDir } from "../../lib/state.ts";

/** An agent whose platform has exactly `facets`. */
export function agentWith(facets: Partial<Platform>): Agent {
  return new Agent({
    table: commandTable(),
    options: { blockedRpcs: [] },
    state: new StateDir("/nonexistent"),
    log: new Logger({ verbose: false, sink: { write() {} } }),
    platform: fakePlatform(facets),
  });
}

/** Accepts a GenericError with exactly `desc`. */
export const isQga = (desc: string) => (e: unknown) => {
  if (e instanceof QgaError && e.desc === desc) return true;
  throw new Error(`expected "${desc}", got ${e instanceof QgaError ? `"${e.desc}"` : e}`);
};
