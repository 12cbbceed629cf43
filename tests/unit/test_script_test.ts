/**
 * The test command's closing lines (scripts/test.ts): counts of top-level tests only, and one
 * line per failed test or step with the start of its message, before the count line.
 *
 * @module
 */

import { assertEquals } from "../assert.ts";
import { closingLines, countJunit } from "../../scripts/test.ts";

// As deno 2.9 writes it: a test with a failed step, a plain failure, a pass and a skip.
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="deno test" tests="5" failures="3" errors="0" time="0.006">
    <testsuite name="./f_test.ts" tests="5" disabled="1" errors="0" failures="3">
        <testcase name="outer" classname="./f_test.ts" time="0.003" line="1" col="6">
            <failure message="1 test step failed">1 test step failed.</failure>
        </testcase>
        <testcase name="plain" classname="./f_test.ts" time="0.000" line="4" col="6">
            <failure message="Uncaught Error: plain failure &lt;x&gt; &amp; y">Error: plain</failure>
        </testcase>
        <testcase name="fine" classname="./f_test.ts" time="0.000" line="5" col="6">
        </testcase>
        <testcase name="later" classname="./f_test.ts" time="0.000" line="6" col="6">
            <skipped/>
        </testcase>
        <testcase name="outer &gt; inner" classname="./f_test.ts" time="0.001" line="2" col="11">
            <failure message="Uncaught Error: case a: bad thing
second line">Error: case a</failure>
        </testcase>
    </testsuite>
</testsuites>`;

Deno.test("test command: counts top-level tests, names each failed test and step last", () => {
  const counts = countJunit(REPORT);
  assertEquals([counts.passed, counts.failed, counts.skipped], [1, 2, 1]);
  assertEquals(closingLines(counts), [
    "FAILED ./f_test.ts plain: Uncaught Error: plain failure <x> & y",
    "FAILED ./f_test.ts outer > inner: Uncaught Error: case a: bad thing | second line",
    "1 skipped",
    "1 passed, 2 failed",
  ]);
});

Deno.test("test command: at most 20 failure lines, then how many more", () => {
  const cases = Array.from(
    { length: 25 },
    (_, i) => `<testcase name="t${i}"><failure message="m${i}">x</failure></testcase>`,
  );
  const lines = closingLines(countJunit(`<testsuite name="s">${cases.join("")}</testsuite>`));
  assertEquals(lines.length, 22);
  assertEquals(lines.slice(-2), ["… and 5 more failures", "0 passed, 25 failed"]);
});
