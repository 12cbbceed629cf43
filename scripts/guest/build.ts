/**
 * Builds a bootable test guest: Debian's stock kernel plus a busybox initramfs that runs a guest
 * agent (`qemu-ga` or denoga) on the virtio-serial port `org.qemu.guest_agent.0`
 * (vm-and-libvirt-testing.md, "A real guest").
 *
 * ```
 * deno run -A scripts/guest/build.ts --agent=qemu-ga|denoga --out DIR [--qemu-ga PATH] [--cache DIR]
 *   [--force]
 * ```
 *
 * Writes `DIR/vmlinuz`, `DIR/initrd.img` (newc cpio, zstd when `zstd` is installed, else gzip) and
 * `DIR/manifest.json`. When the manifest's input hash (this script, the kernel package, busybox,
 * the agent binary and its libraries, for denoga also deno and every file of `main.ts`, `lib/`,
 * `ffi/`) matches, nothing is rebuilt. The denoga image runs the bundled agent (scripts/bundle.ts,
 * the code `deno task compile` embeds) under `deno run`, from `/opt/denoga/denoga.js`.
 *
 * Needs (CI installs them with apt-get): `busybox-static` (or `busybox`), `qemu-guest-agent` for
 * the qemu-ga image (or `--qemu-ga PATH`: another build, e.g. the newest upstream), `apt-get`/`dpkg` to fetch the kernel (`apt-get download` of the package
 * `linux-image-amd64` depends on, unpacked with `dpkg -x` into the cache dir, never installed),
 * `ldd`. Building the denoga image pre-warms a `DENO_DIR` inside the image with `chroot`, so it
 * wants root (without root the guest analyses the bundle on first start, into RAM).
 *
 * The guest's `/init` loads the virtio, virtio_net and ext4 modules by path (the package has no
 * modules.dep), mounts proc, sysfs, devtmpfs and tmpfs on /run and /tmp, sets the host name,
 * installs the image's utmp as `/run/utmp`, creates the `/dev/virtio-ports/<name>` links (there is
 * no udev), gives `eth0` (when the machine has a NIC) static IPv4 and IPv6 addresses, mounts
 * `/dev/vda` (ext4) on `/mnt/disk`, starts a writer appending `/proc/uptime` to `/mnt/disk/ticks`
 * with `sync` about every 100 ms (not with `denoga.noticks` on the kernel command line), then runs
 * the agent with its state dir on /run. `/sbin/poweroff` and `/sbin/shutdown` power the machine
 * off (busybox `poweroff -f`). Lines it prints start with `GUEST-INIT:`.
 *
 * What the agent's commands read is there too: a fixed `/etc/os-release` and `/etc/hostname`,
 * `/etc/localtime` (a link into `/usr/share/zoneinfo`, as on Debian), utmp logins
 * ({@link UTMP_RECORDS}), a test user in passwd/shadow, `/sbin/hwclock` (busybox) and a
 * `chpasswd` script for guest-set-user-password.
 *
 * @module
 */

import { AGENT_RUN_FLAGS } from "../agent_flags.ts";
import { bundleAgent } from "../bundle.ts";
import { type CpioEntry, writeCpio } from "./cpio.ts";

/** Which agent the image runs. */
export type GuestAgent = "qemu-ga" | "denoga";

/** Options of {@link buildGuestImage}. */
export interface GuestBuildOptions {
  agent: GuestAgent;
  /** Directory receiving vmlinuz, initrd.img and manifest.json. */
  out: string;
  /** Kernel download cache (default: {@link defaultCacheDir}). */
  cacheDir?: string;
  /**
   * The qemu-ga binary the qemu-ga image runs (default Debian's `/usr/sbin/qemu-ga`; e.g. the
   * newest upstream build). It is installed at `/usr/sbin/qemu-ga` in the guest either way, with
   * the libraries `ldd` lists for it on the host.
   */
  qemuGa?: string;
  /** Rebuild even when the manifest matches. */
  force?: boolean;
  /** Progress messages (default: none). */
  log?: (msg: string) => void;
}

/** What {@link buildGuestImage} produced; also stored as `manifest.json`. */
export interface GuestImage {
  agent: GuestAgent;
  /** Hash of every input; the image is reused while it is unchanged. */
  inputHash: string;
  kernel: string;
  initrd: string;
  kernelRelease: string;
  kernelPackage: string;
  compression: "zstd" | "gzip";
  initrdBytes: number;
  cpioBytes: number;
  /** Seconds the build took (0 when reused). */
  buildSeconds: number;
  /** True when an existing build was reused. */
  cached: boolean;
  /** True when the image holds a pre-warmed DENO_DIR (denoga only). */
  denoDirPrewarmed: boolean;
  /** Agent command line run by the guest's init. */
  agentCommand: string[];
}

/** Virtio port the agent listens on. */
export const PORT_NAME = "org.qemu.guest_agent.0";
/** Mount point of the guest's virtio disk. */
export const DISK_MOUNT = "/mnt/disk";
/** File the guest's writer appends `/proc/uptime` seconds to. */
export const TICKS_FILE = `${DISK_MOUNT}/ticks`;
/** Modules in insmod order (their `depends=` are checked at build time). */
export const MODULES = [
  "virtio_ring",
  "virtio_pci_modern_dev",
  "virtio_pci_legacy_dev",
  "virtio",
  "virtio_pci",
  "virtio_console",
  "virtio_blk",
  "failover",
  "net_failover",
  "virtio_net",
  "crc32c_generic",
  "jbd2",
  "mbcache",
  "crc16",
  "ext4",
  // NVMe (the libvirt e2e domain has an NVMe disk: guest-get-disks' `smart`). The crc modules
  // before crc_t10dif and crc64_rocksoft are their softdeps: the algorithms they look up at load.
  "crct10dif_common",
  "crct10dif_generic",
  "crc_t10dif",
  "crc64",
  "crc64_rocksoft_generic",
  "crc64_rocksoft",
  "t10_pi",
  "nvme_core",
  "nvme",
] as const;

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const SELF_FILES = [
  "scripts/guest/build.ts",
  "scripts/guest/cpio.ts",
  "scripts/agent_flags.ts",
  "scripts/bundle.ts",
];
const QEMU_GA = "/usr/sbin/qemu-ga";
/** The guest's host name (`/etc/hostname`, set by its init). */
export const GUEST_HOSTNAME = "qga-test-guest";
/** The guest's IPv4 address on `eth0` (QEMU user networking's default guest address). */
export const GUEST_IPV4 = "10.0.2.15/24";
/** A static unique-local IPv6 address the guest also puts on `eth0`. */
export const GUEST_IPV6 = "fd00:5::15/64";
const GUEST_GATEWAY = "10.0.2.2";
/** Where the image keeps the utmp its init copies to `/run/utmp`. */
const UTMP_SEED = "/usr/share/qga-test/utmp";
/** An unprivileged user the image has in passwd/shadow and logged in (utmp). */
export const TEST_USER = "qgauser";
/** The zone the guest's `/etc/localtime` is copied from, when the host has it. */
export const GUEST_TIMEZONE = "Europe/Berlin";
/**
 * `/etc/os-release` of the guest: fixed (not the host's), with every field a QGA client reads and
 * quoting in both styles.
 */
export const OS_RELEASE = `PRETTY_NAME="Denoga Test Linux 12 (busybox)"
NAME="Denoga Test Linux"
VERSION_ID="12"
VERSION="12 (busybox)"
ID=denoga-test
ID_LIKE=debian
VARIANT='Guest Agent Test Image'
VARIANT_ID=qga-e2e
HOME_URL="https://example.invalid/"
`;
/**
 * Logins recorded in the guest's `/run/utmp` (glibc x86-64 `struct utmp`, 384 bytes each), read by
 * guest-get-users: a boot record, two sessions of {@link TEST_USER} (the earlier one counts), one
 * of root, and an ended session that must not be reported.
 */
export const UTMP_RECORDS: readonly UtmpRecord[] = [
  { type: 2, pid: 0, line: "~", id: "~~", user: "reboot", host: "", sec: 1764000000, usec: 0 },
  {
    type: 7,
    pid: 301,
    line: "pts/0",
    id: "ts/0",
    user: TEST_USER,
    host: "10.0.2.2",
    sec: 1764003600,
    usec: 250000,
  },
  {
    type: 7,
    pid: 201,
    line: "tty1",
    id: "1",
    user: TEST_USER,
    host: "",
    sec: 1764001800,
    usec: 500000,
  },
  { type: 7, pid: 202, line: "tty2", id: "2", user: "root", host: "", sec: 1764002000, usec: 125 },
  { type: 8, pid: 203, line: "tty3", id: "3", user: "olduser", host: "", sec: 1764002100, usec: 0 },
];
const GUEST_DENO = "/usr/local/bin/deno";
const GUEST_SRC = "/opt/denoga";
const GUEST_DENO_DIR = "/opt/deno-dir";
const PATH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const dec = new TextDecoder();
const enc = new TextEncoder();

/** One utmp entry (the members guest-get-users and `who` look at). */
export interface UtmpRecord {
  /** `ut_type`: 2 BOOT_TIME, 7 USER_PROCESS, 8 DEAD_PROCESS. */
  type: number;
  pid: number;
  line: string;
  id: string;
  user: string;
  host: string;
  sec: number;
  usec: number;
}

/** Size of glibc's `struct utmp` on x86-64. */
export const UTMP_SIZE = 384;

/**
 * `records` as glibc's x86-64 `struct utmp` array: type (i16, 2 bytes padding), pid (i32),
 * line[32], id[4], user[32], host[256], exit (2 × i16), session (i32), tv (2 × i32: 64-bit glibc
 * keeps the 32-bit layout), addr_v6 (4 × i32), 20 reserved bytes.
 */
export function encodeUtmp(records: readonly UtmpRecord[]): Uint8Array {
  const out = new Uint8Array(UTMP_SIZE * records.length);
  records.forEach((r, i) => {
    const base = i * UTMP_SIZE;
    const view = new DataView(out.buffer, base, UTMP_SIZE);
    const text = (offset: number, size: number, s: string): void => {
      const bytes = enc.encode(s);
      if (bytes.length > size) throw new Error(`utmp field too long: ${s}`);
      out.set(bytes, base + offset);
    };
    view.setInt16(0, r.type, true);
    view.setInt32(4, r.pid, true);
    text(8, 32, r.line);
    text(40, 4, r.id);
    text(44, 32, r.user);
    text(76, 256, r.host);
    view.setInt32(340, r.sec, true);
    view.setInt32(344, r.usec, true);
  });
  return out;
}

/** `$DENOGA_GUEST_CACHE`, else `$XDG_CACHE_HOME/denoga-guest`, else `~/.cache/denoga-guest`. */
export function defaultCacheDir(): string {
  const explicit = Deno.env.get("DENOGA_GUEST_CACHE");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/denoga-guest`;
  return `${Deno.env.get("HOME") ?? "/root"}/.cache/denoga-guest`;
}

/** Absolute path of executable `name` in PATH or the sbin dirs, or undefined. */
export function which(name: string): string | undefined {
  const env = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const dir of [...env, ...PATH_DIRS]) {
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a tool to completion; returns its stdout, throws with its stderr when it fails. */
export async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<string> {
  const out = await new Deno.Command(which(cmd) ?? cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    clearEnv: opts.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The busybox binary to put in the image (busybox-static's or busybox's). */
function busyboxPath(): string | undefined {
  for (const p of ["/bin/busybox", "/usr/bin/busybox"]) if (exists(p)) return p;
  return which("busybox");
}

/**
 * Why an image for `agent` cannot be built here, or undefined. Checks the tools only; the kernel
 * download itself can still fail (no archive reachable and nothing cached).
 */
export function missingBuildPrerequisite(
  agent: GuestAgent,
  cacheDir = defaultCacheDir(),
  qemuGa = QEMU_GA,
): string | undefined {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return "not x86-64 Linux";
  if (busyboxPath() === undefined) return "busybox not found (apt-get install busybox-static)";
  if (which("ldd") === undefined) return "ldd not found";
  if (agent === "qemu-ga" && !exists(qemuGa)) {
    return qemuGa === QEMU_GA
      ? `${QEMU_GA} not found (apt-get install qemu-guest-agent)`
      : `${qemuGa} not found`;
  }
  if (cachedKernelDirs(cacheDir).length === 0) {
    for (const tool of ["apt-cache", "apt-get", "dpkg"]) {
      if (which(tool) === undefined) return `${tool} not found and no kernel cached in ${cacheDir}`;
    }
    const out = new Deno.Command(which("apt-cache")!, {
      args: ["depends", "linux-image-amd64"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!out.success || !/Depends:\s+linux-image-\d/.test(dec.decode(out.stdout))) {
      return `apt knows no linux-image-amd64 (run apt-get update) and no kernel is cached in ${cacheDir}`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- kernel

interface Kernel {
  pkg: string;
  release: string;
  vmlinuz: string;
  modules: Map<string, string>;
}

function cachedKernelDirs(cacheDir: string): string[] {
  const base = `${cacheDir}/kernel`;
  const dirs: string[] = [];
  try {
    for (const e of Deno.readDirSync(base)) {
      if (e.isDirectory && exists(`${base}/${e.name}/kernel.json`)) dirs.push(`${base}/${e.name}`);
    }
  } catch {
    // no cache yet
  }
  return dirs.sort();
}

/** Whether a cached kernel dir kept every module of {@link MODULES} (the list grows over time). */
function holdsAllModules(dir: string): boolean {
  try {
    const meta = JSON.parse(Deno.readTextFileSync(`${dir}/kernel.json`)) as {
      modules: Record<string, string>;
    };
    return MODULES.every((m) => m in meta.modules);
  } catch {
    return false;
  }
}

/** The package `linux-image-amd64` depends on (e.g. `linux-image-6.1.0-56-amd64`). */
async function kernelPackageName(): Promise<string | undefined> {
  try {
    const out = await run("apt-cache", ["depends", "linux-image-amd64"]);
    return out.match(/Depends:\s+(linux-image-\d\S*-amd64)\b/)?.[1];
  } catch {
    return undefined;
  }
}

/** Reads the NUL-separated `key=value` strings of a module's `.modinfo` section. */
function modinfo(ko: Uint8Array, key: string): string | undefined {
  const needle = enc.encode(`${key}=`);
  outer: for (let i = 0; i + needle.length < ko.length; i++) {
    if (ko[i] !== needle[0] || (i > 0 && ko[i - 1] !== 0)) continue;
    for (let j = 1; j < needle.length; j++) if (ko[i + j] !== needle[j]) continue outer;
    const end = ko.indexOf(0, i);
    return dec.decode(ko.subarray(i + needle.length, end));
  }
  return undefined;
}

async function fetchKernel(cacheDir: string, log: (m: string) => void): Promise<Kernel> {
  const pkg = await kernelPackageName();
  let dir: string | undefined;
  if (pkg !== undefined) {
    dir = `${cacheDir}/kernel/${pkg}`;
    if (!exists(`${dir}/kernel.json`) || !holdsAllModules(dir)) {
      if (exists(dir)) await Deno.remove(dir, { recursive: true });
      const tmp = `${dir}.tmp-${Deno.pid}`;
      await Deno.mkdir(tmp, { recursive: true });
      try {
        log(`apt-get download ${pkg}`);
        await run("apt-get", ["download", pkg], { cwd: tmp });
        const deb = [...Deno.readDirSync(tmp)].find((e) => e.name.endsWith(".deb"));
        if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
        await run("dpkg", ["-x", `${tmp}/${deb.name}`, `${tmp}/x`]);
        const vmlinuz = [...Deno.readDirSync(`${tmp}/x/boot`)].find((e) =>
          e.name.startsWith("vmlinuz-")
        );
        if (!vmlinuz) throw new Error(`${pkg} has no /boot/vmlinuz-*`);
        const release = vmlinuz.name.slice("vmlinuz-".length);
        // Keep only what the image uses: the kernel and the listed modules.
        await Deno.mkdir(`${dir}.keep-${Deno.pid}/modules`, { recursive: true });
        const keep = `${dir}.keep-${Deno.pid}`;
        await Deno.rename(`${tmp}/x/boot/${vmlinuz.name}`, `${keep}/vmlinuz`);
        const found = await findModules(`${tmp}/x/lib/modules/${release}`);
        const modules: Record<string, string> = {};
        for (const [name, path] of found) {
          await Deno.rename(path, `${keep}/modules/${name}.ko`);
          modules[name] = `modules/${name}.ko`;
        }
        await Deno.writeTextFile(
          `${keep}/kernel.json`,
          JSON.stringify({ pkg, release, deb: deb.name, modules }, null, 2) + "\n",
        );
        await Deno.rename(keep, dir);
      } finally {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
        await Deno.remove(`${dir}.keep-${Deno.pid}`, { recursive: true }).catch(() => {});
      }
    }
  } else {
    // No apt metadata: fall back to the newest kernel already cached.
    dir = cachedKernelDirs(cacheDir).at(-1);
    if (dir === undefined) {
      throw new Error("cannot resolve linux-image-amd64 (apt-cache) and no kernel is cached");
    }
  }
  const meta = JSON.parse(await Deno.readTextFile(`${dir}/kernel.json`)) as {
    pkg: string;
    release: string;
    modules: Record<string, string>;
  };
  const modules = new Map<string, string>();
  for (const [name, rel] of Object.entries(meta.modules)) modules.set(name, `${dir}/${rel}`);
  return { pkg: meta.pkg, release: meta.release, vmlinuz: `${dir}/vmlinuz`, modules };
}

/** Finds every module of {@link MODULES} under `modDir`, plus the modules they depend on. */
async function findModules(modDir: string): Promise<Map<string, string>> {
  const all = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (e.name.endsWith(".ko")) {
        all.set(e.name.slice(0, -3).replaceAll("-", "_"), `${d}/${e.name}`);
      }
    }
  };
  await walk(modDir);
  const found = new Map<string, string>();
  for (const name of MODULES) {
    const path = all.get(name);
    if (path === undefined) throw new Error(`module ${name}.ko not found under ${modDir}`);
    found.set(name, path);
  }
  return found;
}

/** Throws unless every module's `depends=` names a module loaded before it. */
async function checkModuleOrder(kernel: Kernel): Promise<void> {
  const loaded = new Set<string>();
  for (const name of MODULES) {
    const path = kernel.modules.get(name);
    if (path === undefined) throw new Error(`cached kernel lacks module ${name}`);
    const deps = modinfo(await Deno.readFile(path), "depends") ?? "";
    for (const dep of deps.split(",").filter((d) => d !== "")) {
      if (!loaded.has(dep.replaceAll("-", "_"))) {
        throw new Error(`module ${name} depends on ${dep}, which is not loaded before it`);
      }
    }
    loaded.add(name);
  }
}

// ---------------------------------------------------------------- tree

/** Shared libraries `ldd` lists for `binary` (absolute paths, including the loader). */
async function lddLibraries(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = await run("ldd", [binary]);
  } catch (e) {
    // "not a dynamic executable" (static busybox) exits 1
    if (String(e).includes("not a dynamic executable")) return [];
    throw e;
  }
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = line.match(/=>\s+(\/\S+)\s+\(/) ?? line.match(/^\s+(\/\S+)\s+\(/);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** Copies `src` (following symlinks) to `tree/dst`, creating parent dirs. */
async function install(tree: string, src: string, dst = src, mode?: number): Promise<void> {
  const target = `${tree}${dst}`;
  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(src, target);
  if (mode !== undefined) await Deno.chmod(target, mode);
}

async function writeFile(tree: string, path: string, text: string, mode: number): Promise<void> {
  const target = `${tree}${path}`;
  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(target, text);
  await Deno.chmod(target, mode);
}

/** Files (relative paths, sorted) of the agent's source, which the denoga image is built from. */
async function denogaSources(): Promise<string[]> {
  const files: string[] = ["main.ts"];
  const walk = async (rel: string): Promise<void> => {
    for await (const e of Deno.readDir(`${ROOT}/${rel}`)) {
      if (e.isDirectory) await walk(`${rel}/${e.name}`);
      else if (e.isFile) files.push(`${rel}/${e.name}`);
    }
  };
  await walk("lib");
  await walk("ffi");
  return files.sort();
}

function shellQuote(s: string): string {
  return /^[\w./=:+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The agent's argv inside the guest. */
export function agentCommand(agent: GuestAgent): string[] {
  const port = `/dev/virtio-ports/${PORT_NAME}`;
  if (agent === "qemu-ga") {
    return [QEMU_GA, "-m", "virtio-serial", "-p", port, "-t", "/run/qga-state"];
  }
  return [
    GUEST_DENO,
    "run",
    ...AGENT_RUN_FLAGS,
    `${GUEST_SRC}/denoga.js`,
    "-m",
    "virtio-serial",
    "-p",
    port,
    "-t",
    "/run/denoga-state",
  ];
}

function initScript(agent: GuestAgent): string {
  const cmd = agentCommand(agent).map(shellQuote).join(" ");
  const statedir = agent === "qemu-ga" ? "/run/qga-state" : "/run/denoga-state";
  return `#!/bin/sh
# Generated by scripts/guest/build.ts (${agent}).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
/bin/busybox --install -s 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
hostname -F /etc/hostname
cp ${UTMP_SEED} /run/utmp
# Only the static addresses below: no router-advertised ones arriving at random moments.
for c in all default; do echo 0 > /proc/sys/net/ipv6/conf/$c/accept_ra; done
up() { read u _ < /proc/uptime; echo "$u"; }
say() { echo "GUEST-INIT: $* (uptime $(up))"; }
say "early userspace"
for m in ${MODULES.join(" ")}; do
  insmod /lib/modules/$m.ko || say "insmod $m failed"
done
# An NVMe controller (PCI class 0x010802) probes asynchronously: wait for its first namespace too.
nvme=$(grep -l '^0x010802' /sys/bus/pci/devices/*/class 2>/dev/null)
i=0
while [ $i -lt 100 ]; do
  [ -e /dev/vda ] && ls /sys/class/virtio-ports/*/name >/dev/null 2>&1 &&
    { [ -z "$nvme" ] || [ -e /dev/nvme0n1 ]; } && break
  i=$((i + 1)); sleep 0.05
done
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do
  [ -f "$p/name" ] && ln -sf "../\${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done
say "virtio ports: $(ls /dev/virtio-ports | tr '\\n' ' ')"
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  # No duplicate address detection: the static address is final at once, never "tentative".
  echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
  ip link set eth0 up && ip addr add ${GUEST_IPV4} dev eth0 &&
    ip -6 addr add ${GUEST_IPV6} dev eth0 && ip route add default via ${GUEST_GATEWAY} &&
    say "eth0: ${GUEST_IPV4} ${GUEST_IPV6}" || say "cannot configure eth0"
fi
mkdir -p ${DISK_MOUNT}
if mount -t ext4 /dev/vda ${DISK_MOUNT}; then
  say "/dev/vda mounted on ${DISK_MOUNT}"
  # Proof for the freeze test: a write blocks while ${DISK_MOUNT} is frozen. \`denoga.noticks\`
  # (kernel command line) leaves the disk untouched, so its usage is the same on every boot.
  case " $(cat /proc/cmdline) " in
    *" denoga.noticks "*) ;;
    *) ( while :; do read u _ < /proc/uptime; echo "$u" >> ${TICKS_FILE}; sync; sleep 0.1; done ) & ;;
  esac
else
  say "cannot mount /dev/vda"
fi
mkdir -p ${statedir}
${
    agent === "denoga"
      ? `export DENO_DIR=${GUEST_DENO_DIR} DENO_NO_UPDATE_CHECK=1 NO_COLOR=1\n`
      : ""
  }# Diagnostics (kernel command line, see tests/fixtures/guest/vm.ts bootGuest's \`append\`):
# denoga.monitor=N prints the port's virtio state and the agent's threads every N seconds.
monitor=
for a in $(cat /proc/cmdline); do
  case "$a" in denoga.monitor=*) monitor="\${a#*=}" ;; esac
done
say "starting agent: ${cmd.replaceAll('"', '\\"')}"
if [ -n "$monitor" ]; then
  mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
  ${cmd} &
  pid=$!
  (
    while kill -0 $pid 2>/dev/null; do
      sleep "$monitor"
      for f in /sys/kernel/debug/virtio-ports/*; do
        echo "GUEST-MON: $(up) port $(tr '\n' ' ' < "$f")"
      done
      grep -i virtio /proc/interrupts | while read -r l; do echo "GUEST-MON: $(up) irq $l"; done
      for t in /proc/[0-9]*; do
        st=$(cut -d' ' -f3 $t/stat 2>/dev/null)
        [ "$st" = D ] && echo "GUEST-MON: $(up) D-state \${t##*/} $(cat $t/comm) $(cat $t/wchan)"
      done
      for t in /proc/$pid/task/*; do
        echo "GUEST-MON: $(up) task \${t##*/} $(cat $t/comm) $(cat $t/wchan) $(cat $t/syscall 2>/dev/null)"
      done
    done
  ) &
  wait $pid
else
  ${cmd}
fi
say "agent exited with status $?; powering off"
sync
/bin/busybox poweroff -f
`;
}

const POWEROFF = `#!/bin/sh
# qemu-ga 7.2 runs /sbin/shutdown -h -P +0 "..."; newer agents run /sbin/poweroff.
read u _ < /proc/uptime
echo "GUEST-INIT: $0 $* -> poweroff (uptime $u)"
sync
exec /bin/busybox poweroff -f
`;

/**
 * guest-set-user-password runs \`chpasswd [-e]\` with \`user:password\` lines on stdin; Debian's
 * busybox-static has no chpasswd applet, so the image has this one, over busybox \`mkpasswd\`.
 */
const CHPASSWD = `#!/bin/sh
crypted=0
[ "$1" = "-e" ] && crypted=1
status=0
while IFS= read -r line; do
  user=\${line%%:*}
  pass=\${line#*:}
  if ! grep -q "^$user:" /etc/shadow; then
    echo "chpasswd: unknown user $user" >&2
    status=1
    continue
  fi
  [ $crypted = 1 ] || pass=$(printf '%s' "$pass" | mkpasswd -m sha512 -P 0) || exit 1
  sed -i "s|^$user:[^:]*:|$user:$pass:|" /etc/shadow || exit 1
  echo "GUEST-INIT: chpasswd: $user" > /dev/console
done
exit $status
`;

/** Fills `tree` with everything the image holds. Returns whether DENO_DIR was pre-warmed. */
async function populate(
  tree: string,
  agent: GuestAgent,
  kernel: Kernel,
  qemuGa: string,
  log: (m: string) => void,
): Promise<boolean> {
  for (
    const d of [
      "bin",
      "sbin",
      "usr/bin",
      "usr/sbin",
      "proc",
      "sys",
      "dev",
      "run",
      "tmp",
      "root",
      "etc",
      "var",
      "mnt/disk",
      "lib/modules",
    ]
  ) {
    await Deno.mkdir(`${tree}/${d}`, { recursive: true });
  }
  const busybox = busyboxPath()!;
  await install(tree, busybox, "/bin/busybox", 0o755);
  await Deno.symlink("busybox", `${tree}/bin/sh`);
  const binaries = [busybox];
  for (const name of MODULES) {
    await install(tree, kernel.modules.get(name)!, `/lib/modules/${name}.ko`);
  }
  await writeFile(tree, "/init", initScript(agent), 0o755);
  await writeFile(tree, "/sbin/poweroff", POWEROFF, 0o755);
  await writeFile(tree, "/sbin/shutdown", POWEROFF, 0o755);
  await Deno.symlink("/bin/busybox", `${tree}/sbin/hwclock`);
  await writeFile(tree, "/usr/sbin/chpasswd", CHPASSWD, 0o755);
  await writeFile(
    tree,
    "/etc/passwd",
    `root:x:0:0:root:/root:/bin/sh\n${TEST_USER}:x:1000:1000:QGA test user:/home/${TEST_USER}:/bin/sh\n`,
    0o644,
  );
  await writeFile(tree, "/etc/group", `root:x:0:\n${TEST_USER}:x:1000:\n`, 0o644);
  // Password hashes are set by the test through guest-set-user-password; "!" = locked.
  await writeFile(
    tree,
    "/etc/shadow",
    `root:*:20000:0:99999:7:::\n${TEST_USER}:!:20000:0:99999:7:::\n`,
    0o600,
  );
  await Deno.mkdir(`${tree}/home/${TEST_USER}`, { recursive: true });
  await writeFile(tree, "/etc/hostname", `${GUEST_HOSTNAME}\n`, 0o644);
  await writeFile(tree, "/etc/os-release", OS_RELEASE, 0o644);
  const zone = `/usr/share/zoneinfo/${GUEST_TIMEZONE}`;
  if (exists(zone)) {
    // Laid out as on Debian: GLib (qemu-ga) names the zone from the link target, else says UTC.
    await install(tree, zone, zone, 0o644);
    await Deno.symlink(zone, `${tree}/etc/localtime`);
    await writeFile(tree, "/etc/timezone", `${GUEST_TIMEZONE}\n`, 0o644);
  }
  await Deno.mkdir(`${tree}${UTMP_SEED.slice(0, UTMP_SEED.lastIndexOf("/"))}`, { recursive: true });
  await Deno.writeFile(`${tree}${UTMP_SEED}`, encodeUtmp(UTMP_RECORDS));
  // glibc reads /var/run/utmp.
  await Deno.symlink("../run", `${tree}/var/run`);
  let prewarmed = false;
  if (agent === "qemu-ga") {
    await install(tree, qemuGa, QEMU_GA, 0o755);
    binaries.push(qemuGa);
  } else {
    await install(tree, Deno.execPath(), GUEST_DENO, 0o755);
    binaries.push(Deno.execPath());
    const dir = await Deno.makeTempDir({ prefix: "denoga-guest-bundle-" });
    try {
      const b = await bundleAgent(dir);
      for (const f of b.files) {
        await install(tree, f, `${GUEST_SRC}/${f.slice(dir.length + 1)}`, 0o644);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  for (const bin of binaries) {
    for (const lib of await lddLibraries(bin)) {
      if (!exists(`${tree}${lib}`)) await install(tree, lib, lib, 0o755);
    }
  }
  if (agent === "denoga") prewarmed = await prewarmDenoDir(tree, log);
  return prewarmed;
}

/**
 * Fills the image's DENO_DIR by running the guest's own deno in a chroot of the tree, so the
 * cached paths are the guest's: `deno cache` of the bundle and the syscall worker (only
 * referenced by URL), then `denoga.js -V` (Deno's analysis of the module is cached on first
 * run). Needs root.
 */
async function prewarmDenoDir(tree: string, log: (m: string) => void): Promise<boolean> {
  if (Deno.uid() !== 0 || which("chroot") === undefined) {
    log("not root: DENO_DIR not pre-warmed (the guest analyses the bundle on first start)");
    return false;
  }
  const env = {
    DENO_DIR: GUEST_DENO_DIR,
    HOME: "/root",
    PATH: "/usr/local/bin:/usr/bin:/bin",
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
  };
  await run("chroot", [
    tree,
    GUEST_DENO,
    "cache",
    "--no-config",
    `${GUEST_SRC}/denoga.js`,
    `${GUEST_SRC}/syscall_worker.js`,
  ], { env, clearEnv: true });
  const version = await run(
    "chroot",
    [tree, GUEST_DENO, "run", ...AGENT_RUN_FLAGS, `${GUEST_SRC}/denoga.js`, "-V"],
    { env, clearEnv: true },
  );
  log(`DENO_DIR pre-warmed (${version.trim().split("\n")[0]})`);
  return true;
}

async function* treeEntries(tree: string, rel = ""): AsyncGenerator<CpioEntry> {
  const names = [...Deno.readDirSync(`${tree}${rel}`)].map((e) => e.name).sort();
  for (const name of names) {
    const path = `${rel}/${name}`;
    const st = Deno.lstatSync(`${tree}${path}`);
    const mode = (st.mode ?? 0o644) & 0o7777;
    if (st.isSymlink) {
      yield { kind: "symlink", path: path.slice(1), target: Deno.readLinkSync(`${tree}${path}`) };
    } else if (st.isDirectory) {
      yield { kind: "dir", path: path.slice(1), mode };
      yield* treeEntries(tree, path);
    } else if (st.isFile) {
      yield {
        kind: "file",
        path: path.slice(1),
        mode,
        data: await Deno.readFile(`${tree}${path}`),
      };
    }
  }
}

/** Writes `tree` as a compressed newc cpio to `dest`. */
async function packInitramfs(
  tree: string,
  dest: string,
): Promise<{ compression: "zstd" | "gzip"; cpioBytes: number }> {
  // The kernel opens /dev/console before running /init, so the node must be in the archive.
  const consoleNode: CpioEntry = {
    kind: "chardev",
    path: "dev/console",
    mode: 0o600,
    major: 5,
    minor: 1,
  };
  async function* entries(): AsyncGenerator<CpioEntry> {
    for await (const e of treeEntries(tree)) {
      yield e;
      if (e.kind === "dir" && e.path === "dev") yield consoleNode;
    }
  }
  const zstd = which("zstd");
  if (zstd !== undefined) {
    const child = new Deno.Command(zstd, {
      args: ["-q", "-f", "-T0", "-6", "-o", dest],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    const cpioBytes = await writeCpio(entries(), (c) => writer.write(c));
    await writer.close();
    const out = await child.output();
    if (!out.success) throw new Error(`zstd failed: ${dec.decode(out.stderr)}`);
    return { compression: "zstd", cpioBytes };
  }
  const file = await Deno.open(dest, { write: true, create: true, truncate: true });
  const gzip = new CompressionStream("gzip");
  const piping = gzip.readable.pipeTo(file.writable);
  const writer = gzip.writable.getWriter();
  const cpioBytes = await writeCpio(entries(), (c) => writer.write(c));
  await writer.close();
  await piping;
  return { compression: "gzip", cpioBytes };
}

// ---------------------------------------------------------------- hashing and the build

async function fileStamp(path: string): Promise<string> {
  const st = await Deno.stat(path);
  return `${path} ${st.size} ${st.mtime?.getTime() ?? 0}`;
}

async function inputHash(agent: GuestAgent, kernel: Kernel, qemuGa: string): Promise<string> {
  const parts: (string | Uint8Array)[] = [
    `agent ${agent}`,
    `kernel ${kernel.pkg} ${kernel.release}`,
  ];
  for (const rel of SELF_FILES) parts.push(rel, await Deno.readFile(`${ROOT}/${rel}`));
  const busybox = busyboxPath()!;
  const binaries = [busybox, agent === "qemu-ga" ? qemuGa : Deno.execPath()];
  for (const bin of binaries) {
    parts.push(await fileStamp(bin));
    for (const lib of await lddLibraries(bin)) parts.push(await fileStamp(lib));
  }
  const zone = `/usr/share/zoneinfo/${GUEST_TIMEZONE}`;
  if (exists(zone)) parts.push(await fileStamp(zone));
  if (agent === "denoga") {
    parts.push(`deno ${Deno.version.deno}`);
    for (const rel of await denogaSources()) parts.push(rel, await Deno.readFile(`${ROOT}/${rel}`));
  }
  const chunks = parts.map((p) => typeof p === "string" ? enc.encode(`${p}\n`) : p);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length + 8, 0));
  let off = 0;
  for (const c of chunks) {
    new DataView(all.buffer).setBigUint64(off, BigInt(c.length));
    all.set(c, off + 8);
    off += c.length + 8;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 24);
}

/**
 * Builds (or reuses) the guest image for `opts.agent` in `opts.out`.
 *
 * @example
 * ```ts
 * const image = await buildGuestImage({ agent: "qemu-ga", out: "/tmp/guest-qemu-ga" });
 * console.log(image.kernel, image.initrd);
 * ```
 */
export async function buildGuestImage(opts: GuestBuildOptions): Promise<GuestImage> {
  const log = opts.log ?? (() => {});
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const qemuGa = opts.qemuGa ?? QEMU_GA;
  const missing = missingBuildPrerequisite(opts.agent, cacheDir, qemuGa);
  if (missing !== undefined) throw new Error(`cannot build the ${opts.agent} guest: ${missing}`);
  const started = performance.now();
  const kernel = await fetchKernel(cacheDir, log);
  await checkModuleOrder(kernel);
  const hash = await inputHash(opts.agent, kernel, qemuGa);
  const out = opts.out.replace(/\/$/, "");
  const manifestPath = `${out}/manifest.json`;
  if (!opts.force && exists(manifestPath)) {
    try {
      const old = JSON.parse(await Deno.readTextFile(manifestPath)) as GuestImage;
      if (old.inputHash === hash && exists(old.kernel) && exists(old.initrd)) {
        log(`reusing ${out} (inputs unchanged, ${hash})`);
        return { ...old, cached: true, buildSeconds: 0 };
      }
    } catch {
      // rebuild
    }
  }
  await Deno.mkdir(out, { recursive: true });
  const tree = await Deno.makeTempDir({ dir: out, prefix: ".tree-" });
  const tmpInitrd = `${out}/.initrd-${Deno.pid}.img`;
  try {
    log(`building the ${opts.agent} initramfs (kernel ${kernel.release})`);
    const prewarmed = await populate(tree, opts.agent, kernel, qemuGa, log);
    const { compression, cpioBytes } = await packInitramfs(tree, tmpInitrd);
    const initrd = `${out}/initrd.img`;
    const vmlinuz = `${out}/vmlinuz`;
    await Deno.rename(tmpInitrd, initrd);
    await Deno.copyFile(kernel.vmlinuz, vmlinuz);
    const image: GuestImage = {
      agent: opts.agent,
      inputHash: hash,
      kernel: vmlinuz,
      initrd,
      kernelRelease: kernel.release,
      kernelPackage: kernel.pkg,
      compression,
      initrdBytes: (await Deno.stat(initrd)).size,
      cpioBytes,
      buildSeconds: Math.round((performance.now() - started) / 10) / 100,
      cached: false,
      denoDirPrewarmed: prewarmed,
      agentCommand: agentCommand(opts.agent),
    };
    await Deno.writeTextFile(manifestPath, JSON.stringify(image, null, 2) + "\n");
    return image;
  } finally {
    await Deno.remove(tree, { recursive: true }).catch(() => {});
    await Deno.remove(tmpInitrd).catch(() => {});
  }
}

function parseArgs(args: string[]): GuestBuildOptions | string {
  let agent: string | undefined;
  let out: string | undefined;
  let cacheDir: string | undefined;
  let qemuGa: string | undefined;
  let force = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].includes("=")
      ? args[i].split(/=(.*)/s, 2)
      : [args[i], undefined];
    const value = (): string | undefined => inline ?? args[++i];
    if (flag === "--agent") agent = value();
    else if (flag === "--out") out = value();
    else if (flag === "--cache") cacheDir = value();
    else if (flag === "--qemu-ga") qemuGa = value();
    else if (flag === "--force") force = true;
    else return `unknown argument ${args[i]}`;
  }
  if (agent !== "qemu-ga" && agent !== "denoga") return "--agent=qemu-ga|denoga is required";
  if (!out) return "--out DIR is required";
  return { agent, out, cacheDir, qemuGa, force, log: (m) => console.error(`guest/build: ${m}`) };
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  if (typeof opts === "string") {
    console.error(
      `${opts}\nusage: build.ts --agent=qemu-ga|denoga --out DIR [--qemu-ga PATH] [--cache DIR] [--force]`,
    );
    Deno.exit(2);
  }
  try {
    const image = await buildGuestImage(opts);
    console.log(JSON.stringify(image, null, 2));
  } catch (e) {
    console.error(`guest/build: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
