/**
 * Builds a real cloud guest from Debian's packages only: Debian 12 (bookworm) with systemd, udev,
 * cloud-init (NoCloud) and Debian's cloud kernel, made with `mmdebstrap` from the mirrors this
 * machine's apt sources name (vm-and-libvirt-testing.md, "A real cloud guest").
 *
 * ```
 * deno run -A scripts/guest/cloud_image.ts [--cache DIR] [--force]
 * ```
 *
 * Writes `<cache>/cloud/debian12/`: `root.img` (raw ext4, 2 GiB sparse, made with
 * `mkfs.ext4 -d`), `vmlinuz` and `initrd.img` (from the rootfs's `/boot`) and `manifest.json`.
 * Nothing is rebuilt while the input hash (package list, mirror lines, this script) is unchanged.
 * Boot it only through a throwaway qcow2 overlay, never the base image.
 *
 * The image also holds Debian's qemu-guest-agent with its unit masked: udev would otherwise start
 * it on the agent port before cloud-init runs. The comparison run's user-data unmasks it.
 *
 * Needs root, `mmdebstrap`, `mkfs.ext4` and the archive reachable from the apt sources.
 *
 * @module
 */

import { defaultCacheDir, which } from "./build.ts";

/** The Debian packages the image is made of (on top of mmdebstrap's minbase). */
export const CLOUD_PACKAGES: readonly string[] = [
  "systemd",
  "systemd-sysv",
  "udev",
  "cloud-init",
  "linux-image-cloud-amd64",
  "initramfs-tools",
  "ifupdown",
  "iproute2",
  "netbase",
  "qemu-guest-agent",
  // What cloud images ship and packaging/cloud-init/user-data.yaml fetches the release with.
  "curl",
  // guest-shutdown: qemu-ga 7.2's `shutdown -r +0` asks logind over D-Bus, and systemctl's
  // reboot/poweroff reach systemd through the bus when it runs.
  "dbus",
];

/** The image's host name before cloud-init sets the one from meta-data. */
export const CLOUD_BASE_HOSTNAME = "debian12-base";

const SUITE = "bookworm";
const IMAGE_SIZE = "2G";
const SELF = decodeURIComponent(new URL(import.meta.url).pathname);
const dec = new TextDecoder();

/**
 * Run inside the finished rootfs (`$1`) by mmdebstrap's customize hook: host name, fstab, only the
 * NoCloud data source (no probing of others), the masked qemu-ga unit, and no apt timers (they
 * would only compete for the TCG vCPUs).
 */
const CUSTOMIZE_HOOK = [
  `echo ${CLOUD_BASE_HOSTNAME} > "$1/etc/hostname"`,
  `echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"`,
  `mkdir -p "$1/etc/cloud/cloud.cfg.d"`,
  `echo "datasource_list: [ NoCloud, None ]" > "$1/etc/cloud/cloud.cfg.d/90-denoga-nocloud.cfg"`,
  `ln -sf /dev/null "$1/etc/systemd/system/qemu-guest-agent.service"`,
  `for t in apt-daily.timer apt-daily-upgrade.timer; do ln -sf /dev/null "$1/etc/systemd/system/$t"; done`,
  `rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"`,
].join(" && ");

/** The built image. */
export interface CloudImage {
  inputHash: string;
  /** Raw ext4 root file system: use as an overlay's backing file only. */
  root: string;
  vmlinuz: string;
  initrd: string;
  /** The `deb URI SUITE COMPONENTS` lines mmdebstrap used. */
  mirrors: string[];
  /** Kernel release found in `/boot`. */
  kernelRelease: string;
  rootfsBytes: number;
  /** Seconds the build took (0 when reused). */
  buildSeconds: number;
  cached: boolean;
}

/** Options of {@link buildCloudImage}. */
export interface CloudImageOptions {
  /** Guest cache dir (default `$DENOGA_GUEST_CACHE`, see build.ts). */
  cacheDir?: string;
  force?: boolean;
  log?: (message: string) => void;
}

/** Why the image cannot be built here, or undefined. */
export function missingCloudImagePrerequisite(): string | undefined {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return "not x86-64 Linux";
  if (Deno.uid() !== 0) return "not root (mmdebstrap builds the rootfs as root)";
  for (const tool of ["mmdebstrap", "mkfs.ext4"]) {
    if (which(tool) === undefined) {
      return `${tool} not found (apt-get install mmdebstrap e2fsprogs)`;
    }
  }
  if (aptMirrors().length === 0) return "no bookworm deb sources in /etc/apt";
  return undefined;
}

/**
 * `deb URI SUITE COMPONENTS` lines for the bookworm suites the machine's apt sources name
 * (deb822 `*.sources` and one-line `*.list` files).
 */
export function aptMirrors(): string[] {
  const lines: string[] = [];
  const dirs = ["/etc/apt/sources.list.d"];
  const files: string[] = ["/etc/apt/sources.list"];
  for (const d of dirs) {
    try {
      for (const e of Deno.readDirSync(d)) if (e.isFile) files.push(`${d}/${e.name}`);
    } catch {
      // no such dir
    }
  }
  for (const file of files.sort()) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    if (file.endsWith(".sources")) lines.push(...deb822Lines(text));
    else if (file.endsWith(".list")) {
      for (const l of text.split("\n")) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(l.trim());
        if (m) lines.push(`deb ${m[1]} ${m[2]} ${m[3].trim()}`);
      }
    }
  }
  return [...new Set(lines.filter((l) => l.split(" ")[2].startsWith(SUITE)))];
}

function deb822Lines(text: string): string[] {
  const out: string[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const l of stanza.split("\n")) {
      if (l.startsWith("#")) continue;
      const m = /^([\w-]+):\s*(.*)$/.exec(l);
      if (m) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    if (!(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
    if ((fields.get("enabled") ?? "yes") === "no") continue;
    const components = fields.get("components") ?? "main";
    for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
      for (const suite of (fields.get("suites") ?? "").split(/\s+/).filter(Boolean)) {
        out.push(`deb ${uri} ${suite} ${components}`);
      }
    }
  }
  return out;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(which(cmd) ?? cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}):\n${dec.decode(out.stderr).slice(-4000)}`,
    );
  }
  return dec.decode(out.stdout);
}

async function inputHash(mirrors: string[]): Promise<string> {
  const text = [
    `suite ${SUITE}`,
    `packages ${CLOUD_PACKAGES.join(",")}`,
    ...mirrors,
    await Deno.readTextFile(SELF),
  ].join("\n");
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 24);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds (or reuses) the Debian 12 cloud image.
 *
 * @example
 * ```ts
 * const image = await buildCloudImage({ log: console.error });
 * console.log(image.root, image.vmlinuz, image.initrd);
 * ```
 */
export async function buildCloudImage(opts: CloudImageOptions = {}): Promise<CloudImage> {
  const log = opts.log ?? (() => {});
  const missing = missingCloudImagePrerequisite();
  if (missing !== undefined) throw new Error(`cannot build the cloud image: ${missing}`);
  const out = `${opts.cacheDir ?? defaultCacheDir()}/cloud/debian12`;
  const manifestPath = `${out}/manifest.json`;
  const mirrors = aptMirrors();
  const hash = await inputHash(mirrors);
  if (!opts.force && exists(manifestPath)) {
    try {
      const old = JSON.parse(await Deno.readTextFile(manifestPath)) as CloudImage;
      if (old.inputHash === hash && [old.root, old.vmlinuz, old.initrd].every(exists)) {
        log(`reusing ${out} (inputs unchanged, ${hash})`);
        return { ...old, cached: true, buildSeconds: 0 };
      }
    } catch {
      // rebuild
    }
  }
  const started = performance.now();
  await Deno.mkdir(out, { recursive: true });
  const rootfs = await Deno.makeTempDir({ dir: out, prefix: ".rootfs-" });
  const tmpRoot = `${out}/.root-${Deno.pid}.img`;
  try {
    log(`mmdebstrap ${SUITE} (${CLOUD_PACKAGES.length} packages) from ${mirrors.length} sources`);
    await run("mmdebstrap", [
      "--variant=minbase",
      "--mode=root",
      "--format=directory",
      `--include=${CLOUD_PACKAGES.join(",")}`,
      "--skip=check/empty",
      `--customize-hook=${CUSTOMIZE_HOOK}`,
      SUITE,
      rootfs,
      ...mirrors,
    ]);
    const boot = [...Deno.readDirSync(`${rootfs}/boot`)].map((e) => e.name);
    const kernel = boot.find((n) => n.startsWith("vmlinuz-"));
    if (kernel === undefined) throw new Error(`no vmlinuz-* in the rootfs's /boot: ${boot}`);
    const release = kernel.slice("vmlinuz-".length);
    if (!boot.includes(`initrd.img-${release}`)) throw new Error(`no initrd.img-${release}`);
    const du = await run("du", ["-sb", rootfs]);
    log(`mkfs.ext4 -d (rootfs ${(Number(du.split("\t")[0]) / 2 ** 20).toFixed(0)} MiB)`);
    await run("mkfs.ext4", ["-q", "-F", "-L", "debian-root", "-d", rootfs, tmpRoot, IMAGE_SIZE]);
    const image: CloudImage = {
      inputHash: hash,
      root: `${out}/root.img`,
      vmlinuz: `${out}/vmlinuz`,
      initrd: `${out}/initrd.img`,
      mirrors,
      kernelRelease: release,
      rootfsBytes: Number(du.split("\t")[0]),
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
      cached: false,
    };
    await Deno.copyFile(`${rootfs}/boot/${kernel}`, image.vmlinuz);
    await Deno.copyFile(`${rootfs}/boot/initrd.img-${release}`, image.initrd);
    await Deno.rename(tmpRoot, image.root);
    await Deno.writeTextFile(manifestPath, JSON.stringify(image, null, 2) + "\n");
    return image;
  } finally {
    await removeRootfs(rootfs, log);
    await Deno.remove(tmpRoot).catch(() => {});
  }
}

/**
 * Removes the build's rootfs unless something is still mounted below it: in root mode mmdebstrap
 * mounts /proc, /sys and /dev into it while it runs, and a recursive removal through a bind mount
 * of /dev would delete the host's device nodes.
 */
async function removeRootfs(rootfs: string, log: (m: string) => void): Promise<void> {
  const mountinfo = await Deno.readTextFile("/proc/self/mountinfo").catch(() => "");
  const mounted = mountinfo.split("\n").some((l) => {
    const point = l.split(" ")[4] ?? "";
    return point === rootfs || point.startsWith(`${rootfs}/`);
  });
  if (mounted) {
    log(`left ${rootfs} in place: file systems are still mounted below it`);
    return;
  }
  await Deno.remove(rootfs, { recursive: true }).catch(() => {});
}

if (import.meta.main) {
  const args = [...Deno.args];
  const force = args.includes("--force");
  const i = args.indexOf("--cache");
  const cacheDir = i >= 0 ? args[i + 1] : undefined;
  try {
    const image = await buildCloudImage({
      cacheDir,
      force,
      log: (m) => console.error(`guest/cloud_image: ${m}`),
    });
    console.log(JSON.stringify(image, null, 2));
  } catch (e) {
    console.error(`guest/cloud_image: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
