/**
 * The flags every `deno run` of the agent uses; they live in lib/run_flags.ts because the
 * installed launcher (lib/install/) uses them too.
 *
 * @module
 */

export { AGENT_RUN_FLAGS } from "../lib/run_flags.ts";
