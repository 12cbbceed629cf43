/**
 * The project's test command (`deno task test`): runs `deno test -A --no-prompt tests/` with any
 * extra arguments passed through, streams its output unchanged, and ends with deno's own counts
 * on one line, `N passed, N failed` (preceded by `N skipped` when tests were ignored).
 *
 * Counts come from a JUnit report deno writes alongside its normal reporter. Only top-level
 * tests count (as in deno's summary); `t.step` entries are excluded. If deno fails without a
 * report (e.g. a type error stops it before any test runs) or fails while the report shows no
 * failure, one failure is added so the closing line never reads as a pass. Exit status is
 * non-zero when anything failed.
 *
 * Usage: `deno run -A scripts/test.ts [deno test args...]`, e.g. `--filter wire`.
 *
 * @module
 */

import { AGENT_RUN_ENV } from "../lib/run_flags.ts";

/** Counts of one run. */
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  /** One line per failed test or step: where, which, and the start of its message. */
  failures: string[];
}

/** Failure lines printed at the end, and how much of each message: the tail of a log is what
 * a CI summary shows, and the closing count alone does not say what failed. */
const MAX_FAILURE_LINES = 20;
const MAX_MESSAGE_CHARS = 400;

function unescapeXml(s: string): string {
  return s.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_m, e: string) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[e] ?? "",
  );
}

/**
 * Counts top-level tests in a deno JUnit report. Deno lists steps as extra test cases named
 * `<parent> > <step>` after the tests of their file; they are recognised by that prefix.
 */
export function countJunit(xml: string): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for (const suite of xml.matchAll(/<testsuite\b([^>]*)>([\s\S]*?)<\/testsuite>/g)) {
    const file = unescapeXml(suite[1].match(/\bname="([^"]*)"/)?.[1] ?? "");
    const names: string[] = [];
    const cases = suite[2].matchAll(
      /<testcase\b[^>]*\bname="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g,
    );
    for (const c of cases) {
      const name = unescapeXml(c[1]);
      const body = c[2] ?? "";
      const failure = body.match(/<(?:failure|error)\b[^>]*\bmessage="([^"]*)"/);
      if (failure !== null && !/^\d+ test steps? failed$/.test(failure[1])) {
        const message = unescapeXml(failure[1]).replace(/\s*\n\s*/g, " | ");
        counts.failures.push(`FAILED ${file} ${name}: ${message.slice(0, MAX_MESSAGE_CHARS)}`);
      }
      if (names.some((parent) => name.startsWith(`${parent} > `))) continue;
      names.push(name);
      if (/<(failure|error)\b/.test(body)) counts.failed++;
      else if (/<skipped\b/.test(body)) counts.skipped++;
      else counts.passed++;
    }
  }
  return counts;
}

/** The closing lines for `counts`. */
export function closingLines(counts: Counts): string[] {
  const lines = counts.failures.slice(0, MAX_FAILURE_LINES);
  if (counts.failures.length > MAX_FAILURE_LINES) {
    lines.push(`… and ${counts.failures.length - MAX_FAILURE_LINES} more failures`);
  }
  if (counts.skipped > 0) lines.push(`${counts.skipped} skipped`);
  lines.push(`${counts.passed} passed, ${counts.failed} failed`);
  return lines;
}

async function main(args: string[]): Promise<number> {
  const tmp = await Deno.makeTempDir({ prefix: "denoga-test-run-" });
  const junit = `${tmp}/junit.xml`;
  let code: number;
  let counts: Counts;
  try {
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-prompt", `--junit-path=${junit}`, "tests/", ...args],
      // Every agent a test starts runs as the installed one does, without Deno's update check.
      env: AGENT_RUN_ENV,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    code = (await proc.status).code;
    let xml: string | undefined;
    try {
      xml = await Deno.readTextFile(junit);
    } catch {
      xml = undefined;
    }
    counts = xml === undefined
      ? { passed: 0, failed: 0, skipped: 0, failures: [] }
      : countJunit(xml);
    if (code !== 0 && counts.failed === 0) {
      console.error(`deno test exited with status ${code} without reporting a failed test`);
      counts.failed = 1;
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  for (const line of closingLines(counts)) console.log(line);
  return code !== 0 || counts.failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
