/**
 * "Never leave a guest frozen": the Deno + bundle form starting while the filesystem it is
 * installed on is frozen, as when the agent crashes after a guest-fsfreeze-freeze and systemd
 * starts it again. `deno run` opens its cache databases for writing as it starts, and a write to
 * a frozen filesystem blocks: with Deno's cache in root's home, on `/`, the new agent would
 * never get to answer the host's thaw.
 *
 * The installed launcher moves Deno's cache to the unit's runtime directory (tmpfs) under
 * systemd, copied from the one install filled. Here an ext4 loop mount stands in for `/`: it
 * holds the installed bundle, that cache and the home directory, and is frozen before the start.
 * An agent started as systemd starts it answers; one started without the runtime directory
 * (Deno's cache in the frozen home) does not, which shows the test reproduces the hazard.
 */

import { bundleAgent } from "../../scripts/bundle.ts";
import { assertEquals, assertOk } from "../assert.ts";
import { assertOwnLoopMount, realTest, run, withLoopFs } from "../fixtures/loopfs.ts";
import { launcherText, programPaths } from "../../lib/install/files.ts";
import { type Json, QgaClient } from "../../lib/client/connection.ts";

const PREFIX = "/usr/local";
/** A ping's reply from the agent at `sock` by `deadline`, or null if none could be had. */
async function ping(sock: string, deadline: number): Promise<Json | null> {
  let c: QgaClient;
  try {
    c = await QgaClient.connect({ unix: sock }, {
      noSync: true,
      waitForSocket: true,
      retryMs: 100,
      timeoutMs: Math.max(1, deadline - Date.now()),
    });
  } catch {
    return null;
  }
  try {
    return await c.request("guest-ping", undefined, Math.max(1, deadline - Date.now()));
  } catch {
    return null;
  } finally {
    c.close();
  }
}

realTest(
  "frozen start: the launcher under systemd answers while its filesystem is frozen",
  ["ext4"],
  async () => {
    const work = await Deno.makeTempDir({ prefix: "denoga-frozen-start-" });
    try {
      const bundle = await bundleAgent(`${work}/bundle`);
      await withLoopFs("ext4", async (mnt) => {
        const agents: Deno.ChildProcess[] = [];
        let frozen = false;
        try {
          // The installed tree, inside the filesystem to freeze (Deno itself stays outside: it
          // is only read, and too big for the image).
          const p = programPaths(PREFIX);
          await Deno.mkdir(`${mnt}${p.libDir}`, { recursive: true });
          for (const f of bundle.files) {
            await Deno.copyFile(f, `${mnt}${p.libDir}/${f.replace(/.*\//, "")}`);
          }
          await Deno.mkdir(`${mnt}/root`);
          const launcher = `${mnt}${p.sbin}`;
          await Deno.mkdir(launcher.replace(/\/[^/]*$/, ""), { recursive: true });
          await Deno.writeTextFile(
            launcher,
            launcherText(PREFIX).replace(`${p.deno} `, `${Deno.execPath()} `)
              .replaceAll(`${PREFIX}/`, `${mnt}${PREFIX}/`),
          );
          // As `denoga install` fills Deno's cache.
          await run("env", [
            "-u",
            "RUNTIME_DIRECTORY",
            `DENO_DIR=${mnt}${p.denoDir}`,
            "sh",
            launcher,
            "--version",
          ]);
          await Deno.stat(`${mnt}${p.denoDir}/dep_analysis_cache_v2`);

          await run("sync", []);
          assertOwnLoopMount(mnt);
          await run("fsfreeze", ["-f", mnt]);
          frozen = true;

          const start = (name: string, runtimeDir: boolean) => {
            const dir = `${work}/${name}`;
            Deno.mkdirSync(dir);
            const env: Record<string, string> = {
              PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
              HOME: `${mnt}/root`,
            };
            if (runtimeDir) env.RUNTIME_DIRECTORY = dir;
            const child = new Deno.Command("sh", {
              args: [launcher, "-m", "unix-listen", "-p", `${dir}/qga.sock`, "-t", dir],
              clearEnv: true,
              env,
              stdin: "null",
              stdout: "null",
              stderr: "null",
            }).spawn();
            agents.push(child);
            return `${dir}/qga.sock`;
          };
          const homeCache = start("home-cache", false);
          const systemd = start("systemd", true);

          const reply = await ping(systemd, Date.now() + 60_000);
          assertEquals(reply, { return: {} }, "the agent started as systemd does answers");
          await Deno.stat(`${work}/systemd/deno-dir/dep_analysis_cache_v2`);
          assertEquals(
            await ping(homeCache, Date.now() + 3_000),
            null,
            "with Deno's cache in the frozen home the start blocks (the hazard this guards)",
          );

          await run("fsfreeze", ["-u", mnt]);
          frozen = false;
          // Thawed, the blocked one goes on and answers: it was waiting, not broken.
          assertOk(await ping(homeCache, Date.now() + 60_000) !== null, "answers once thawed");
        } finally {
          // A process blocked on a frozen filesystem cannot be killed before the thaw.
          if (frozen) await run("fsfreeze", ["-u", mnt]).catch(() => {});
          for (const a of agents) {
            try {
              a.kill("SIGTERM");
            } catch {
              // already gone
            }
            await a.status;
          }
        }
      });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
);
