/**
 * Smoke test of `scripts/bench.ts --quick`: it runs denoga and qemu-ga side by side and prints a
 * `BENCH_JSON` line with every key. Timings are not asserted (machines are noisy), only that
 * every figure is a finite, positive number.
 *
 * Skipped with a message when qemu-ga is missing, unless `DENOGA_REQUIRE_REAL=1` (then fails).
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { needQemuGa, QEMU_GA, realTest, REPO_ROOT } from "./harness.ts";
import {
  type BenchSummary,
  FIGURE_KEYS,
  FLOOR_KEYS,
  RATIO_KEYS,
  SUMMARY_KEYS,
  TARGET_KEYS,
} from "../../scripts/bench.ts";

function keysOf(v: unknown): string[] {
  return v !== null && typeof v === "object" ? Object.keys(v).sort() : [];
}

realTest("bench --quick prints a complete BENCH_JSON line", [needQemuGa()], async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-prompt",
      "--config",
      `${REPO_ROOT}/deno.json`,
      `${REPO_ROOT}/scripts/bench.ts`,
      "--quick",
    ],
    cwd: REPO_ROOT,
    env: { QEMU_GA, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const stderr = dec.decode(out.stderr);
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
  assertEquals(out.code, 0, `bench exit code\n${context}`);

  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  assertOk(line !== undefined, `no BENCH_JSON line\n${context}`);
  const s = JSON.parse(line.slice("BENCH_JSON ".length)) as BenchSummary;

  assertEquals(keysOf(s), [...SUMMARY_KEYS].sort(), "summary keys");
  assertEquals(s.quick, true);
  for (const impl of ["denoga", "qemuGa"] as const) {
    const f = s[impl];
    assertOk(f !== null, `${impl} figures missing\n${context}`);
    assertEquals(keysOf(f), [...FIGURE_KEYS].sort(), `${impl} figure keys`);
    for (const k of FIGURE_KEYS) {
      assertOk(Number.isFinite(f[k]) && f[k] > 0, `${impl}.${k} = ${f[k]}`);
    }
  }
  // The floor (a bare Deno responder) ran beside the agents, with its per-request figures.
  const fl = s.floor;
  assertOk(fl !== null, `floor figures missing\n${context}`);
  assertEquals(keysOf(fl), [...FLOOR_KEYS].sort(), "floor figure keys");
  for (const k of FLOOR_KEYS) {
    assertOk(Number.isFinite(fl[k]) && fl[k] > 0, `floor.${k} = ${fl[k]}`);
  }
  assertOk(fl.pid !== s.denoga!.pid && fl.pid !== s.qemuGa!.pid, "the floor is its own process");
  assertEquals(keysOf(s.ratios), [...RATIO_KEYS].sort(), "ratio keys");
  for (const k of RATIO_KEYS) {
    const r = s.ratios[k];
    assertOk(typeof r === "number" && Number.isFinite(r) && r > 0, `ratios.${k} = ${r}`);
  }
  assertEquals(keysOf(s.targets), [...TARGET_KEYS].sort(), "target keys");
  for (const k of TARGET_KEYS) assertEquals(typeof s.targets[k], "boolean", `targets.${k}`);

  if (Deno.uid() === 0) {
    const p = s.poll;
    assertOk(p !== null, `no poll figures\n${context}`);
    assertEquals(p.points.map((pt) => [pt.interfaces, pt.mounts]), [[2, 5], [200, 5], [2, 200]]);
    for (const pt of p.points) {
      assertEquals(Object.keys(pt.cpuMs).sort(), ["denoga", "floor", "qemu-ga"], "poll agents");
    }
    assertOk(p.execRoundTripMs.denoga > 0 && p.execRoundTripMs["qemu-ga"] > 0, "exec figures");
  }
  // The human-readable table came before the JSON line.
  assertOk(stdout.includes("denoga/qemu-ga"), `no table\n${context}`);
  const header = stdout.split("\n").find((l) => l.startsWith("measurement"));
  assertOk(
    header?.includes("floor") && header.includes("denoga/floor"),
    `no floor column\n${context}`,
  );
  assertOk(stdout.includes("agent CPU per guest-ping"), `no CPU per ping row\n${context}`);
});
