/**
 * libvirt against the real cloud guest: the Debian 12 image of tests/e2e/cloud_test.ts (systemd,
 * udev, cloud-init; scripts/guest/cloud_image.ts) booted as a domain of the project's private
 * libvirtd (tests/fixtures/libvirt/daemon.ts, domain.ts) from a qcow2 overlay and a NoCloud seed,
 * twice: once with Debian's qemu-ga started by the qemu-ga user-data, once with denoga installed
 * into a copy of the image (`denoga install --root … --no-enable` from the release tarball) and
 * started by packaging/cloud-init/user-data-preinstalled.yaml, exactly as cloud_test.ts boots them.
 * Once the agent answers through libvirt, the virsh commands a libvirt user runs against such a
 * guest run against each: guestinfo (all categories and each), domifaddr, domfsinfo, domhostname,
 * domtime, guestvcpus (and the vCPU cases of tests/fixtures/libvirt/cases.ts), raw osinfo, users
 * and timezone, set-user-password for a throwaway user (checked in /etc/shadow through
 * guest-exec), guest-exec, domfstrim, domfsfreeze/domfsthaw. denoga's virsh output must equal
 * qemu-ga's after the normalizations of tests/e2e/libvirt_test.ts (clock readings, pids, fresh
 * password hashes) and those the cloud guest needs (see {@link normalizeUsage}).
 *
 * The reference is Debian's qemu-ga 7.2, not the newest qemu-ga denoga follows: three of its error
 * texts that newer qemu-ga changed are rewritten to the newer form in qemu-ga's output only
 * ({@link NEWER_ERROR_TEXTS}). guest-get-fsinfo's total-bytes-privileged, which only newer
 * qemu-ga reports, is a member libvirt does not print.
 *
 * Skipped with the reason when libvirtd, QEMU, the seed tools or the image's build tools are
 * missing; with `DENOGA_REQUIRE_REAL=1` it fails instead.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { realComponents, type Requirement } from "../integration/harness.ts";
import {
  buildCloudImage,
  type CloudImage,
  missingCloudImagePrerequisite,
} from "../../scripts/guest/cloud_image.ts";
import { defaultCacheDir } from "../../scripts/guest/build.ts";
import {
  CLOUD_HOSTNAME,
  CLOUD_ROOT_ARGS,
  type CloudAgent,
  cloudDisks,
  cloudRunDir,
  imageWithDenoga,
  missingCloudBootPrerequisite,
  PREINSTALLED_USER_DATA,
  QEMU_GA_USER_DATA,
  releaseArtifact,
  TRUST_CPU_RNG,
  withLocale,
} from "../fixtures/cloud/vm.ts";
import {
  type Libvirtd,
  missingLibvirtPrerequisite,
  startLibvirtd,
  type VirshResult,
} from "../fixtures/libvirt/daemon.ts";
import { domainXml, GUEST_MAC } from "../fixtures/libvirt/domain.ts";
import {
  agentReturn,
  DOMAIN,
  EXEC_CASES,
  execInGuest,
  freezeCases,
  FSTRIM_CASES,
  GUESTINFO_SENDS,
  guestStateCases,
  raw,
  succeeded,
  text,
  VCPU_CASES,
  type VirshCase,
} from "../fixtures/libvirt/cases.ts";
import {
  assertNoFailures,
  assertSameOutputs,
  type BootResult,
  clockReading,
  guestLogPrinter,
  runCases,
  startDomain,
} from "../fixtures/libvirt/run.ts";

/** Failure guards only: on a loaded machine a TCG boot through cloud-init takes minutes. */
const BOOT_TIMEOUT_MS = 600_000;
/** libvirt's per-command agent timeout (seconds) during the test; its default of 5 is tight on TCG. */
const AGENT_TIMEOUT_S = 30;
/** The guest's address on QEMU's user network (tests/fixtures/cloud/network-config.yaml). */
const GUEST_IPV4 = "10.0.2.15/24";
/** A user made in the guest for set-user-password (through guest-exec, by the agent itself). */
const THROWAWAY_USER = "denoga-virsh";
/** A SHA-512 crypt hash set by `set-user-password --encrypted`. */
const CRYPTED =
  "$6$denogae2esalt0$PlUdR5x7ND6xe5ay7KaWJNHDF8HPLqnPJ/EU1wo3VPIHmQRcHTe8dcsdwD9PYa9H812KxLKZF.vROxCdipz01.";

/**
 * A file system's usage, which differs between the two boots for a reason that is not the agent's:
 * the denoga boot's image holds the agent's files, and the journal and cloud-init's logs grow at
 * their own pace. Its presence and form are kept.
 */
function normalizeUsage(out: string): string {
  return out.replace(/^(fs\.\d+\.used-bytes\s*:\s*)\d+$/gm, "$1<used>");
}

/**
 * Error texts of qemu-ga 7.2 that newer qemu-ga (10.x, which denoga follows and
 * tests/e2e/libvirt_test.ts compares it with) words differently; each rewrites 7.2's text, as
 * virsh prints it, to the newer one. Nothing else in the output is touched.
 */
const NEWER_ERROR_TEXTS: readonly [RegExp, string][] = [
  // guest-exec-status of an unknown pid: 7.2 reports a bad argument; newer qemu-ga says
  // "PID %ld does not exist" with the format's conversion printed literally.
  [/('guest-exec-status': )Invalid parameter 'pid'$/m, "$1PID ld does not exist"],
  // A guest-exec that cannot start: 7.2 wraps GLib's message; newer qemu-ga passes it on alone.
  [/('guest-exec': )Guest agent command failed, error was '(.*)'$/m, "$1$2"],
  // A missing vCPU directory: 7.2 says open("DIR"); newer qemu-ga uses error_setg_file_open().
  [/('guest-set-vcpus': )open\("([^"]*)"\): /m, "$1Could not open '$2': "],
];

/** `r` with {@link NEWER_ERROR_TEXTS} applied to its stderr; logs what it rewrote. */
function asNewerQemuGa(r: VirshResult): VirshResult {
  let stderr = r.stderr;
  for (const [from, to] of NEWER_ERROR_TEXTS) stderr = stderr.replace(from, to);
  if (stderr !== r.stderr) {
    console.log(`  [qemu-ga] 7.2's error text rewritten to newer qemu-ga's: ${r.stderr.trim()}`);
  }
  return { ...r, stderr };
}

/** A guestinfo case: the output as compared, usage normalized, `want` present. */
function guestinfoCase(flags: string[], want: string[]): VirshCase {
  return {
    name: ["guestinfo", ...flags].join(" "),
    sends: flags.length === 0
      ? Object.values(GUESTINFO_SENDS)
      : flags.map((f) => GUESTINFO_SENDS[f]),
    args: ["guestinfo", DOMAIN, ...flags],
    check: (r) => {
      succeeded(r);
      for (const w of want) assertOk(r.stdout.includes(w), `guestinfo lacks ${w}:\n${r.stdout}`);
      return normalizeUsage(text(r));
    },
  };
}

/** What guestinfo must show for each category. */
const GUESTINFO_WANTS: Record<string, string[]> = {
  "--os": ["os.id", "debian"],
  "--hostname": [CLOUD_HOSTNAME],
  "--timezone": ["timezone.offset"],
  "--user": ["user.count"],
  "--filesystem": ["fs.count", "fs.0.mountpoint"],
  "--disk": ["disk.count"],
  "--interface": [GUEST_IPV4.split("/")[0], GUEST_MAC],
};

/** The throwaway user's /etc/shadow line, read through guest-exec, its hash put through `hash`. */
function shadowCase(name: string, sends: string, hash: (h: string) => string): VirshCase {
  return {
    name,
    sends: [sends, "guest-exec", "guest-exec-status"],
    run: async (ctx) => {
      const r = await execInGuest(ctx, "/usr/bin/getent", ["shadow", THROWAWAY_USER]);
      return { code: r.exitcode ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    check: (r) => {
      succeeded(r);
      const fields = r.stdout.trim().split(":");
      assertEquals(fields[0], THROWAWAY_USER);
      fields[1] = hash(fields[1]);
      // The day of the last change: today, unless a boot ran across midnight (UTC).
      const today = Math.floor(Date.now() / 86_400_000);
      assertOk(Math.abs(Number(fields[2]) - today) <= 1, `last change on day ${fields[2]}`);
      fields[2] = "<today>";
      return fields.join(":");
    },
  };
}

/** The virsh commands run against each agent, in order. */
const CASES: readonly VirshCase[] = [
  raw("guest-ping", "guest-ping", undefined, (r) => {
    assertEquals(r.stdout.trim(), '{"return":{}}');
    return text(r);
  }),
  raw("guest-get-osinfo", "guest-get-osinfo", undefined, (r) => {
    assertEquals((agentReturn(r) as { id?: string }).id, "debian");
    return text(r);
  }),
  raw("guest-get-users", "guest-get-users"),
  raw("guest-get-timezone", "guest-get-timezone"),
  ...Object.entries(GUESTINFO_WANTS).map(([flag, want]) => guestinfoCase([flag], want)),
  guestinfoCase([], Object.values(GUESTINFO_WANTS).flat()),
  ...guestStateCases({
    hostname: CLOUD_HOSTNAME,
    addresses: [GUEST_IPV4, GUEST_MAC],
    fsinfo: /^\s*\/\s+vda\s+ext4\s+vda\s*$/m,
  }),
  {
    name: "domtime",
    sends: ["guest-get-time"],
    args: ["domtime", DOMAIN],
    check: (r, { before, after }) => clockReading(r, before, after, "host time"),
  },
  ...VCPU_CASES,
  {
    name: `guest-exec useradd ${THROWAWAY_USER}`,
    sends: ["guest-exec", "guest-exec-status"],
    run: async (ctx) => {
      const r = await execInGuest(ctx, "/usr/sbin/useradd", ["-M", THROWAWAY_USER]);
      return { code: r.exitcode ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
  },
  {
    name: `set-user-password ${THROWAWAY_USER} (plain)`,
    sends: ["guest-set-user-password"],
    args: ["set-user-password", DOMAIN, THROWAWAY_USER, "e2e-Password!"],
  },
  // chpasswd hashes with the guest's ENCRYPT_METHOD (Debian 12: yescrypt) and a fresh salt.
  shadowCase("/etc/shadow after set-user-password (plain)", "guest-set-user-password", (h) => {
    const m = h.match(/^\$(y|6)\$[./\w$]+$/);
    assertOk(m !== null, `not a crypt hash: ${h}`);
    return `<$${m[1]}$ crypt hash of a random salt>`;
  }),
  {
    name: `set-user-password ${THROWAWAY_USER} --encrypted`,
    sends: ["guest-set-user-password"],
    args: ["set-user-password", DOMAIN, THROWAWAY_USER, CRYPTED, "--encrypted"],
  },
  shadowCase(
    "/etc/shadow after set-user-password --encrypted",
    "guest-set-user-password",
    (h) => (assertEquals(h, CRYPTED), h),
  ),
  ...EXEC_CASES,
  ...FSTRIM_CASES,
  ...freezeCases("/"),
  raw("guest-fsfreeze-status (thawed)", "guest-fsfreeze-status", undefined, (r) => {
    assertEquals(agentReturn(r), "thawed");
    return text(r);
  }),
];

/** Boots the cloud image as the domain with `agent` in it and runs {@link CASES}. */
async function bootAndRun(
  libvirtd: Libvirtd,
  agent: CloudAgent,
  image: CloudImage,
  release: string,
): Promise<BootResult> {
  const dir = await cloudRunDir(agent);
  const consoleLog = `${dir}/console.log`;
  const virsh = agent === "qemu-ga"
    ? async (args: string[]) => asNewerQemuGa(await libvirtd.virsh(args))
    : (args: string[]) => libvirtd.virsh(args);
  const showGuest = guestLogPrinter(libvirtd, agent, consoleLog);
  try {
    let root = image.root;
    let userData = await Deno.readTextFile(QEMU_GA_USER_DATA);
    if (agent === "denoga") {
      const built = await imageWithDenoga(image, release, dir);
      console.log(`[denoga] image copy with denoga installed in ${built.seconds.toFixed(1)} s`);
      root = built.root;
      userData = withLocale(await Deno.readTextFile(PREINSTALLED_USER_DATA));
    }
    const { overlay, seed } = await cloudDisks(root, agent, userData, dir);
    const xml = `${dir}/domain.xml`;
    await Deno.writeTextFile(
      xml,
      domainXml({
        name: DOMAIN,
        kernel: image.vmlinuz,
        initrd: image.initrd,
        disk: overlay,
        diskFormat: "qcow2",
        seed,
        memoryMiB: 1024,
        consoleLog,
        append: [...CLOUD_ROOT_ARGS, TRUST_CPU_RNG],
      }),
    );
    const seconds = await startDomain(libvirtd, virsh, xml, BOOT_TIMEOUT_MS, AGENT_TIMEOUT_S);
    console.log(
      `[${agent}] domain start → first guest-ping answered through libvirt: ${
        seconds.toFixed(1)
      } s`,
    );
    const casesStarted = performance.now();
    const result = await runCases(agent, virsh, CASES);
    console.log(
      `[${agent}] ${CASES.length} virsh case(s) in ` +
        `${((performance.now() - casesStarted) / 1000).toFixed(1)} s`,
    );
    if (result.failures.length > 0) showGuest();
    return result;
  } catch (e) {
    showGuest();
    throw e;
  } finally {
    await virsh(["destroy", DOMAIN]);
    await virsh(["undefine", DOMAIN]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function requirement(what: string, missing: string | undefined): Requirement {
  return { what: missing === undefined ? what : `${what} (${missing})`, present: !missing };
}

const NAME = "cloud libvirt e2e (Debian 12 + cloud-init as a libvirt domain: virsh with " +
  "qemu-ga 7.2 vs denoga)";
const policy = realComponents(NAME, [
  requirement("a private libvirtd", missingLibvirtPrerequisite()),
  requirement("the cloud image's build tools", missingCloudImagePrerequisite()),
  requirement("QEMU and the seed tools", missingCloudBootPrerequisite()),
]);

Deno.test({
  name: NAME,
  ignore: policy.ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    policy.check();
    const t0 = performance.now();
    // libvirtd starts (and probes QEMU) while the image and the release are found or built.
    const starting = startLibvirtd({ cacheDir: `${defaultCacheDir()}/libvirt-var-cache` });
    let image: CloudImage;
    let release: string;
    try {
      image = await buildCloudImage({ log: (m) => console.log(`[cloud] ${m}`) });
      release = (await releaseArtifact()).path;
    } catch (e) {
      await (await starting.catch(() => undefined))?.stop();
      throw e;
    }
    console.log(
      `[cloud] image ${image.cached ? "reused" : `built in ${image.buildSeconds} s`}; ` +
        `libvirtd and the release ready after ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const libvirtd = await starting;
    const results: Partial<Record<CloudAgent, BootResult>> = {};
    try {
      for (const agent of ["qemu-ga", "denoga"] as const) {
        await t.step(`${agent}: the virsh agent commands in the cloud guest`, async () => {
          const r = await bootAndRun(libvirtd, agent, image, release);
          results[agent] = r;
          assertNoFailures(agent, r);
        });
      }
    } finally {
      await libvirtd.stop();
    }
    await t.step("denoga's virsh output equals qemu-ga's", () => {
      assertSameOutputs(results["qemu-ga"], results.denoga);
    });
    console.log(`cloud libvirt e2e: ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
  },
});
