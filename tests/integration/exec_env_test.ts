/**
 * guest-exec children inherit the agent's environment, as qemu-ga's do, but not what the
 * launcher and the unit set for Deno itself (`DENO_NO_UPDATE_CHECK`, `DENO_DIR`) and for the
 * runtime directory (`RUNTIME_DIRECTORY`): a host listing a child's environment sees what it
 * would see under qemu-ga, and a Deno program it runs does not use the agent's cache.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { QgaClient } from "../../lib/client/connection.ts";
import { guestExec } from "../../lib/client/transfer.ts";
import { LAUNCHER_ENV_NAMES } from "../../lib/run_flags.ts";
import { startAgent } from "./harness.ts";

Deno.test("guest-exec: children inherit the environment, without the launcher's variables", async () => {
  const denoDir = await Deno.makeTempDir({ prefix: "denoga-exec-env-" });
  const agent = await startAgent({
    impl: "denoga",
    env: {
      DENO_NO_UPDATE_CHECK: "1",
      DENO_DIR: denoDir,
      RUNTIME_DIRECTORY: denoDir,
      DENOGA_TEST_INHERITED: "kept",
    },
  });
  try {
    const c = await QgaClient.connect({ unix: agent.socketPath });
    try {
      const r = await guestExec(c, "/usr/bin/env", []);
      assertEquals(r.exitcode, 0);
      const names = new TextDecoder().decode(r.stdout).split("\n").map((l) => l.split("=")[0]);
      assertOk(names.includes("DENOGA_TEST_INHERITED"), names.join(" "));
      assertOk(names.includes("PATH"), names.join(" "));
      for (const name of LAUNCHER_ENV_NAMES) {
        assertOk(!names.includes(name), `${name} reached the child`);
      }
    } finally {
      c.close();
    }
  } finally {
    await agent.stop();
    await Deno.remove(denoDir, { recursive: true });
  }
});
