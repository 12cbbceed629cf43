/**
 * `denoga install --root` / `denoga uninstall --root` from the real bundle (the Deno + bundle
 * form; this build machine cannot make the compiled binary): the exact tree and file contents,
 * a second install that changes nothing, the installed launcher starting the installed agent,
 * and an uninstall that leaves only the state directory, which `--purge` removes too.
 */

import { bundleAgent } from "../../scripts/bundle.ts";
import { assertEquals, assertOk } from "../assert.ts";
import { launcherText, udevRuleText, unitText } from "../../lib/install/files.ts";
import { AGENT_RUN_FLAGS } from "../../lib/run_flags.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const dec = new TextDecoder();
const PREFIX = "/opt/denoga";
const WANTS = "/etc/systemd/system/dev-virtio\\x2dports-org.qemu.guest_agent.0.device.wants";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[]): Promise<Run> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function denoga(entry: string, args: string[]): Promise<Run> {
  return run(Deno.execPath(), ["run", ...AGENT_RUN_FLAGS, entry, ...args]);
}

/** Every path under `dir`: type, permission bits, and a symlink's target. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      const st = await Deno.lstat(p);
      const mode = ((st.mode ?? 0) & 0o7777).toString(8);
      const rel = p.slice(dir.length);
      if (e.isSymlink) out.push(`l ${rel} -> ${await Deno.readLink(p)}`);
      else if (e.isDirectory) out.push(`d ${mode} ${rel}`);
      else out.push(`f ${mode} ${rel}`);
      if (e.isDirectory) await walk(p);
    }
  }
  await walk(dir);
  return out.sort();
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

Deno.test("install --root: Deno + bundle form, exact tree, idempotent, clean uninstall", async () => {
  const work = await Deno.makeTempDir({ prefix: "denoga-install-" });
  try {
    const bundle = await bundleAgent(`${work}/bundle`);
    const img = `${work}/img`;
    await Deno.mkdir(img);

    const first = await denoga(bundle.agent, ["install", "--root", img, "--prefix", PREFIX]);
    assertEquals(first.code, 0, first.stderr);
    const expected = [
      "d 755 /etc",
      "d 755 /etc/systemd",
      "d 755 /etc/systemd/system",
      `d 755 ${WANTS}`,
      `l ${WANTS}/denoga.service -> /etc/systemd/system/denoga.service`,
      "f 644 /etc/systemd/system/denoga.service",
      "d 755 /etc/udev",
      "d 755 /etc/udev/rules.d",
      "f 644 /etc/udev/rules.d/60-denoga.rules",
      "d 755 /opt",
      "d 755 /opt/denoga",
      "d 755 /opt/denoga/lib",
      "d 755 /opt/denoga/lib/denoga",
      "f 755 /opt/denoga/lib/denoga/deno",
      "f 644 /opt/denoga/lib/denoga/installed-files",
      // denoga.js, syscall_worker.js and the chunks denoga.js loads.
      ...bundle.files.map((f) =>
        `f 644 /opt/denoga/lib/denoga/${f.slice(`${work}/bundle/`.length)}`
      ),
      "d 755 /opt/denoga/sbin",
      "f 755 /opt/denoga/sbin/denoga",
    ].sort();
    assertOk(bundle.files.length > 2, "the bundle has chunks");
    assertEquals(await tree(img), expected);
    const read = (p: string) => Deno.readTextFile(`${img}${p}`);
    assertEquals(await read("/etc/systemd/system/denoga.service"), unitText(PREFIX));
    assertOk((await read("/etc/systemd/system/denoga.service")).includes(`${PREFIX}/sbin/denoga`));
    assertEquals(
      await read("/etc/udev/rules.d/60-denoga.rules"),
      await Deno.readTextFile(`${ROOT}/packaging/udev/60-denoga.rules`),
    );
    assertEquals(await read("/etc/udev/rules.d/60-denoga.rules"), udevRuleText());
    assertEquals(await read(`${PREFIX}/sbin/denoga`), launcherText(PREFIX));
    assertOk(await sameFile(`${img}${PREFIX}/lib/denoga/deno`, Deno.execPath()), "deno copied");
    for (const f of bundle.files) {
      const name = f.slice(`${work}/bundle/`.length);
      assertOk(await sameFile(`${img}${PREFIX}/lib/denoga/${name}`, f), `${name} copied`);
    }

    // The launcher, pointed into the image instead of the target system's /, starts the agent.
    const launcher = `${work}/launcher.sh`;
    await Deno.writeTextFile(launcher, launcherText(PREFIX).replaceAll(PREFIX, `${img}${PREFIX}`));
    const v = await run("sh", [launcher, "-V"]);
    assertEquals(v.code, 0, v.stderr);
    assertOk(/^QEMU Guest Agent \d+\.\d+\.\d+\n$/.test(v.stdout), v.stdout);

    // Again: nothing rewritten.
    const mtimes = async () =>
      await Promise.all(
        expected.map((l) => l.split(" ").at(-1)!).map(async (p) =>
          p.startsWith("/etc/systemd/system/dev-") ? 0 : (await Deno.lstat(`${img}${p}`)).mtime
            ?.getTime()
        ),
      );
    const before = await mtimes();
    const second = await denoga(bundle.agent, ["install", "--root", img, "--prefix", PREFIX]);
    assertEquals(second.code, 0, second.stderr);
    assertOk(!/^installed /m.test(second.stdout), second.stdout);
    assertEquals(
      second.stdout.match(/^unchanged /gm)?.length,
      5 + bundle.files.length,
      second.stdout,
    );
    assertEquals(await tree(img), expected);
    assertEquals(await mtimes(), before);

    // State the agent left behind stays unless --purge.
    await Deno.mkdir(`${img}/run/denoga`, { recursive: true });
    await Deno.writeTextFile(`${img}/run/denoga/qga.state`, "[global]\nfd_counter=1000\n");
    const un = await denoga(bundle.agent, ["uninstall", "--root", img, "--prefix", PREFIX]);
    assertEquals(un.code, 0, un.stderr);
    assertEquals(await tree(img), [
      "d 755 /run",
      "d 755 /run/denoga",
      "f 644 /run/denoga/qga.state",
    ]);
    const again = await denoga(bundle.agent, ["uninstall", "--root", img, "--prefix", PREFIX]);
    assertEquals(again.code, 0, again.stderr);
    const purge = await denoga(bundle.agent, [
      "uninstall",
      "--root",
      img,
      "--prefix",
      PREFIX,
      "--purge",
    ]);
    assertEquals(purge.code, 0, purge.stderr);
    assertEquals(await tree(img), ["d 755 /run"]);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("install from the source tree (main.ts) is refused with what to run instead", async () => {
  const img = await Deno.makeTempDir({ prefix: "denoga-install-src-" });
  try {
    const r = await denoga(`${ROOT}/main.ts`, ["install", "--root", img]);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    assertOk(r.stderr.includes("deno task bundle"), r.stderr);
    assertEquals(await tree(img), []);
    // Any other first word is the agent's (qemu-ga's) command line, never an install.
    const agent = await denoga(`${ROOT}/main.ts`, ["-V", "install"]);
    assertEquals(agent.code, 0, agent.stderr);
    assertOk(agent.stdout.startsWith("QEMU Guest Agent "), agent.stdout);
  } finally {
    await Deno.remove(img, { recursive: true });
  }
});
