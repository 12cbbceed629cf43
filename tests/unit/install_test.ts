/**
 * lib/install/: the unit and udev rule against Debian's qemu-guest-agent ones, the launcher, and
 * what the installer asks of systemd and udev on a live system. The live system is faked: the
 * installer's filesystem root is a temp dir and systemctl/udevadm are recorded, not run.
 */

import { assertEquals, assertOk } from "../assert.ts";
import type { InstallOptions } from "../../lib/install/args.ts";
import {
  ENABLE_LINK,
  launcherText,
  PORT_DEVICE_UNIT,
  type Program,
  UDEV_RULE_PATH,
  udevRuleText,
  UNIT_PATH,
  unitText,
} from "../../lib/install/files.ts";
import { install, type InstallEnv, uninstall } from "../../lib/install/mod.ts";
import { AGENT_RUN_FLAGS } from "../../lib/run_flags.ts";

const DEBIAN_UNIT = "/lib/systemd/system/qemu-guest-agent.service";
const DEBIAN_RULE = "/lib/udev/rules.d/60-qemu-guest-agent.rules";

/** `key=value` lines of a unit, by section. */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      section = line;
      continue;
    }
    const eq = line.indexOf("=");
    const k = `${section}${line.slice(0, eq)}`;
    keys.set(k, [...(keys.get(k) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

function readIfPresent(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

Deno.test("install files: the unit starts, binds and restarts like Debian's qemu-guest-agent", () => {
  const ours = unitKeys(unitText("/usr/local"));
  // Debian's unit, as shipped by qemu-guest-agent 1:7.2 (checked against the installed file
  // below when it is present).
  const debian = readIfPresent(DEBIAN_UNIT) ?? `[Unit]
BindsTo=dev-virtio\\x2dports-org.qemu.guest_agent.0.device
After=dev-virtio\\x2dports-org.qemu.guest_agent.0.device
[Service]
ExecStart=-/usr/sbin/qemu-ga
Restart=always
RestartSec=0
`;
  const theirs = unitKeys(debian);
  for (const k of ["[Unit]BindsTo", "[Unit]After", "[Service]Restart", "[Service]RestartSec"]) {
    assertEquals(ours.get(k), theirs.get(k), k);
  }
  assertEquals(ours.get("[Install]WantedBy"), theirs.get("[Unit]BindsTo"));
  assertEquals(ours.get("[Unit]Conflicts"), ["qemu-guest-agent.service"]);
  assertEquals(ours.get("[Service]ExecStart"), [
    "/usr/local/sbin/denoga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 " +
    "-t /run/denoga",
  ]);
  assertEquals(ours.get("[Service]RuntimeDirectory"), ["denoga"]);
  assertEquals(ours.get("[Service]RuntimeDirectoryPreserve"), ["yes"]);
  // Each of these would break freeze, exec, file access or password setting (README).
  for (const k of ours.keys()) {
    assertOk(
      !/Protect|Private|MemoryDenyWriteExecute|SystemCall|Restrict|NoNewPrivileges/.test(k),
      k,
    );
  }
  assertOk(unitText("/opt/d").includes("ExecStart=/opt/d/sbin/denoga "));
  assertOk(unitText("/").includes("ExecStart=/sbin/denoga "));
});

Deno.test(
  "install files: the udev rule tags the port as Debian's does; enabling, not the rule, starts it",
  () => {
    const rule = udevRuleText().replaceAll("\\\n", "");
    const match = (text: string) =>
      text.split("\n").filter((l) => l.includes("SUBSYSTEM==")).map((l) =>
        l.replace(/\s+/g, " ").trim()
      );
    const debian = readIfPresent(DEBIAN_RULE)?.replaceAll("\\\n", "") ??
      'SUBSYSTEM=="virtio-ports", ATTR{name}=="org.qemu.guest_agent.0", ' +
        'TAG+="systemd", ENV{SYSTEMD_WANTS}="qemu-guest-agent.service"';
    // Debian's rule also wants its service, enabled or not; ours leaves that to the unit's
    // [Install] WantedBy= the port's device, so `--no-enable` and `systemctl disable` hold.
    assertEquals(
      match(rule),
      match(debian).map((l) => l.replace(/,? ENV\{SYSTEMD_WANTS\}="qemu-guest-agent.service"/, "")),
    );
    assertEquals(unitKeys(unitText("/usr/local")).get("[Install]WantedBy"), [
      PORT_DEVICE_UNIT,
    ]);
    assertOk(ENABLE_LINK.includes(`/${PORT_DEVICE_UNIT}.wants/`));
  },
);

Deno.test("install files: the launcher is the tests' deno run form under the prefix", () => {
  assertEquals(
    launcherText("/opt/denoga"),
    "#!/bin/sh\nexport DENO_NO_UPDATE_CHECK=1\n" +
      'if [ -n "$RUNTIME_DIRECTORY" ]; then\n' +
      '  export DENO_DIR="$RUNTIME_DIRECTORY/deno-dir"\n' +
      '  [ -d "$DENO_DIR" ] || { cp -R /opt/denoga/lib/denoga/deno-dir "$DENO_DIR.$$" 2>/dev/null' +
      ' && mv "$DENO_DIR.$$" "$DENO_DIR"; } || rm -rf "$DENO_DIR.$$"\n' +
      "fi\n" +
      `exec /opt/denoga/lib/denoga/deno run ${AGENT_RUN_FLAGS.join(" ")} ` +
      '/opt/denoga/lib/denoga/denoga.js "$@"\n',
  );
  assertOk(launcherText("/opt/my dir").includes("'/opt/my dir/lib/denoga/deno'"));
  assertOk(launcherText("/opt/my dir").includes("cp -R '/opt/my dir/lib/denoga/deno-dir' "));
});

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

interface Fake {
  env: InstallEnv;
  calls: string[];
  lines: string[];
  root: string;
  setPort(present: boolean): void;
}

async function fake(program: Program): Promise<Fake> {
  const root = await Deno.makeTempDir({ prefix: "denoga-install-unit-" });
  const calls: string[] = [];
  const lines: string[] = [];
  let port = true;
  return {
    root,
    calls,
    lines,
    setPort: (p) => port = p,
    env: {
      program: () => program,
      run: (argv) => {
        calls.push(argv.join(" "));
        return Promise.resolve({ code: 0, stderr: "" });
      },
      portExists: () => Promise.resolve(port),
      say: (l) => lines.push(l),
      fsRoot: root,
    },
  };
}

const LIVE: InstallOptions = {
  action: "install",
  prefix: "/usr/local",
  root: "/",
  purge: false,
  noStart: false,
  noEnable: false,
};

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      out.push(p.slice(dir.length) + (e.isDirectory ? "/" : ""));
      if (e.isDirectory) await walk(p);
    }
  }
  await walk(dir);
  return out.sort();
}

Deno.test("install: live system → daemon-reload, udev reload, start; restart only on change", async () => {
  const src = await Deno.makeTempFile({ prefix: "denoga-fake-binary-" });
  await Deno.writeTextFile(src, "#!/bin/sh\necho v1\n");
  const f = await fake({ form: "compiled", binary: src });
  try {
    assertEquals(await install(LIVE, f.env), 0);
    assertEquals(f.calls, [
      "systemctl daemon-reload",
      "udevadm control --reload",
      "systemctl restart denoga.service",
    ]);
    assertEquals(
      await Deno.readTextFile(`${f.root}/usr/local/sbin/denoga`),
      "#!/bin/sh\necho v1\n",
    );
    assertEquals(await Deno.readLink(`${f.root}${ENABLE_LINK}`), UNIT_PATH);
    // Nothing changed: the running service is left running (start is a no-op for systemd).
    f.calls.length = 0;
    assertEquals(await install(LIVE, f.env), 0);
    assertEquals(f.calls.at(-1), "systemctl start denoga.service");
    assertOk(f.lines.filter((l) => l.startsWith("installed")).length === 4, f.lines.join("\n"));
    // A new binary: restarted.
    await Deno.writeTextFile(src, "#!/bin/sh\necho v2\n");
    f.calls.length = 0;
    await install(LIVE, f.env);
    assertEquals(f.calls.at(-1), "systemctl restart denoga.service");
    // No port (not a VM, or not yet): enabled, not started; --no-start: never started.
    f.setPort(false);
    f.calls.length = 0;
    await install(LIVE, f.env);
    assertEquals(f.calls, ["systemctl daemon-reload", "udevadm control --reload"]);
    f.setPort(true);
    f.calls.length = 0;
    await install({ ...LIVE, noStart: true }, f.env);
    assertEquals(f.calls, ["systemctl daemon-reload", "udevadm control --reload"]);
    // --no-enable: the enable link goes (nothing starts the unit), the rest stays.
    f.calls.length = 0;
    await install({ ...LIVE, noEnable: true }, f.env);
    assertEquals(f.calls, ["systemctl daemon-reload", "udevadm control --reload"]);
    assertEquals(await Deno.lstat(`${f.root}${ENABLE_LINK}`).catch(() => null), null);
    assertEquals(await Deno.readTextFile(`${f.root}${UNIT_PATH}`), unitText("/usr/local"));
    await install(LIVE, f.env);
    assertEquals(await Deno.readLink(`${f.root}${ENABLE_LINK}`), UNIT_PATH);

    f.calls.length = 0;
    assertEquals(await uninstall({ ...LIVE, action: "uninstall" }, f.env), 0);
    assertEquals(f.calls, [
      "systemctl stop denoga.service",
      "systemctl daemon-reload",
      "udevadm control --reload",
    ]);
    assertEquals(await tree(f.root), []);
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await Deno.remove(src);
  }
});

Deno.test("install: a failing systemctl stops the install with its message", async () => {
  const src = await Deno.makeTempFile();
  const f = await fake({ form: "compiled", binary: src });
  f.env.run = (argv) =>
    Promise.resolve(
      argv[1] === "daemon-reload"
        ? { code: 1, stderr: "System has not been booted with systemd" }
        : { code: 0, stderr: "" },
    );
  try {
    let message = "";
    await install(LIVE, f.env).catch((e) => message = (e as Error).message);
    assertOk(message.includes("systemctl daemon-reload failed (exit 1)"), message);
    assertOk(message.includes("not been booted with systemd"), message);
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await Deno.remove(src);
  }
});

Deno.test("install: switching form (binary → Deno + bundle) removes the other form's files", async () => {
  const dir = await Deno.makeTempDir();
  for (const n of ["bin", "deno", "denoga.js", "syscall_worker.js"]) {
    await Deno.writeTextFile(`${dir}/${n}`, n);
  }
  const f = await fake({ form: "compiled", binary: `${dir}/bin` });
  const image: InstallOptions = { ...LIVE, root: "/img", prefix: "/usr" };
  await Deno.mkdir(`${f.root}/img`);
  try {
    await install(image, f.env);
    assertEquals(f.calls, [], "--root: no systemctl, no udevadm");
    f.env.program = () => ({
      form: "bundle",
      deno: `${dir}/deno`,
      bundle: `${dir}/denoga.js`,
      modules: [`${dir}/syscall_worker.js`],
    });
    await install(image, f.env);
    assertEquals(await Deno.readTextFile(`${f.root}/img/usr/sbin/denoga`), launcherText("/usr"));
    assertEquals(await Deno.readTextFile(`${f.root}/img/usr/lib/denoga/deno`), "deno");
    f.env.program = () => ({ form: "compiled", binary: `${dir}/bin` });
    await install(image, f.env);
    assertOk(f.lines.includes("removed /usr/lib/denoga/deno"), f.lines.join("\n"));
    assertEquals(await tree(`${f.root}/img/usr/lib/denoga`), ["/installed-files"]);
    assertEquals(await Deno.readTextFile(`${f.root}/img${UDEV_RULE_PATH}`), udevRuleText());
    await uninstall({ ...image, action: "uninstall" }, f.env);
    assertEquals(await tree(`${f.root}/img`), []);
    assertEquals(f.calls, []);
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install: Deno + bundle → the launcher runs once, directly or in a chroot of --root, before the start", async () => {
  const dir = await Deno.makeTempDir();
  for (const n of ["bin", "deno", "denoga.js", "syscall_worker.js"]) {
    await Deno.writeTextFile(`${dir}/${n}`, n);
  }
  const bundle: Program = {
    form: "bundle",
    deno: `${dir}/deno`,
    bundle: `${dir}/denoga.js`,
    modules: [`${dir}/syscall_worker.js`],
  };
  const f = await fake(bundle);
  let mayChroot = true;
  let warmCode = 0;
  f.env.warm = {
    run: (argv) => {
      f.calls.push(`warm: ${argv.join(" ")}`);
      return Promise.resolve({ code: warmCode, stderr: warmCode ? "exec format error\nmore" : "" });
    },
    mayChroot: () => mayChroot,
  };
  try {
    await install(LIVE, f.env);
    assertEquals(f.calls, [
      "warm: env -u RUNTIME_DIRECTORY DENO_DIR=/usr/local/lib/denoga/deno-dir " +
      "/usr/local/sbin/denoga --version",
      "systemctl daemon-reload",
      "udevadm control --reload",
      "systemctl restart denoga.service",
    ]);
    assertOk(f.lines.includes("Deno's analysis of the bundle cached for the first start"));
    const image: InstallOptions = { ...LIVE, root: "/img", noEnable: true };
    // The cache of an earlier install goes first: it would hold the old bundle's entries too.
    const seed = `${f.root}/img/usr/local/lib/denoga/deno-dir`;
    await Deno.mkdir(seed, { recursive: true });
    await Deno.writeTextFile(`${seed}/dep_analysis_cache_v2`, "old");
    f.calls.length = 0;
    await install(image, f.env);
    assertOk(!(await exists(seed)), "earlier cache removed before warming");
    assertEquals(f.calls, [
      `warm: chroot ${f.root}/img env -i HOME=/root DENO_DIR=/usr/local/lib/denoga/deno-dir ` +
      "/usr/local/sbin/denoga --version",
    ]);
    f.lines.length = 0;
    warmCode = 126;
    await install(image, f.env);
    assertOk(
      f.lines.includes(
        `first start analyses the bundle itself (chroot ${f.root}/img env -i HOME=/root ` +
          "DENO_DIR=/usr/local/lib/denoga/deno-dir /usr/local/sbin/denoga --version: exit 126, " +
          "exec format error)",
      ),
      f.lines.join("\n"),
    );
    f.calls.length = 0;
    f.lines.length = 0;
    mayChroot = false;
    assertEquals(await install(image, f.env), 0);
    assertEquals(f.calls, []);
    assertOk(f.lines.some((l) => l.includes("needs root")), f.lines.join("\n"));
    // The compiled binary has nothing for Deno to analyse.
    f.env.program = () => ({ form: "compiled", binary: `${dir}/bin` });
    mayChroot = true;
    await install(image, f.env);
    assertEquals(f.calls, []);
    // Uninstall takes the cache with it.
    await Deno.mkdir(seed, { recursive: true });
    await Deno.writeTextFile(`${seed}/dep_analysis_cache_v2`, "x");
    assertEquals(await uninstall(image, f.env), 0);
    assertOk(!(await exists(seed)), "cache removed by uninstall");
    assertOk(f.lines.includes("removed /usr/local/lib/denoga/deno-dir/"), f.lines.join("\n"));
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});
