/**
 * The aarch64 half of the FFI layer, for real: the unit tests of the raw-syscall trampoline, the
 * file system calls, libc, and the virtio/isa/listen channels run under the aarch64 Deno of the
 * same version in qemu-user (tests/fixtures/arm64.ts), so the aarch64 machine code, system call
 * numbers and struct layouts (`ffi/arch/aarch64.ts`: epoll_event, statfs, fstrim_range, timeval,
 * nvme_admin_cmd) are exercised, not just written down.
 *
 * Skipped there, because emulation cannot do them (DENOGA_UNDER_QEMU_USER=1,
 * tests/fixtures/emulation.ts): tests that start `Deno.execPath()` in a child process (an aarch64
 * binary; no binfmt handler here), the PR_SET_MDWE tests (the prctl would apply to qemu-user
 * itself, which then cannot generate code), and the real FITRIM tests (qemu-user does not translate
 * that ioctl: ENOSYS).
 */

import { assertEquals, assertOk } from "../assert.ts";
import {
  arm64Command,
  arm64Deno,
  arm64DenoDir,
  missingArm64Prerequisite,
} from "../fixtures/arm64.ts";
import { realTestIf } from "../fixtures/loopfs.ts";
import { REPO_ROOT } from "./harness.ts";

const FILES = [
  "tests/unit/ffi_rawsyscall_test.ts",
  "tests/unit/ffi_file_test.ts",
  "tests/unit/ffi_libc_test.ts",
  "tests/unit/ffi_statfs_test.ts",
  "tests/unit/ffi_sysfs_test.ts",
  "tests/unit/ffi_fitrim_test.ts",
  "tests/unit/ffi_nvme_test.ts",
  "tests/unit/ffi_clock_test.ts",
  "tests/unit/channels_virtio_test.ts",
  "tests/unit/channels_isa_test.ts",
  "tests/unit/channels_mod_test.ts",
];

/** How many of them skip themselves under qemu-user (module comment). */
const SKIPPED_UNDER_EMULATION = 8;

realTestIf(
  missingArm64Prerequisite(),
  "aarch64: FFI trampoline, file system calls and channels pass their unit tests under qemu-user",
  async () => {
    const deno = await arm64Deno();
    const env = {
      DENO_DIR: arm64DenoDir(),
      NO_COLOR: "1",
      PATH: Deno.env.get("PATH") ?? "",
      DENOGA_UNDER_QEMU_USER: "1",
    };
    const arch = await arm64Command([deno, "eval", "console.log(Deno.build.arch)"], env).output();
    assertEquals(new TextDecoder().decode(arch.stdout).trim(), "aarch64");
    const out = await arm64Command(
      [deno, "test", "-A", "--no-check", ...FILES],
      env,
      REPO_ROOT,
    ).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const summary =
      /(ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/
        .exec(text);
    assertOk(summary !== null, `no test summary from the aarch64 run:\n${text}`);
    assertEquals(Number(summary[3]), 0, `aarch64 failures:\n${text}`);
    // Only the tests emulation cannot run may have skipped; everything else must have run.
    assertEquals(
      Number(summary[4] ?? 0),
      SKIPPED_UNDER_EMULATION,
      `skipped under aarch64:\n${text}`,
    );
    assertOk(Number(summary[2]) >= 55, `only ${summary[2]} tests ran under aarch64:\n${text}`);
    assertOk(out.success, text);
    console.log(`aarch64 under qemu-user: ${summary[2]} passed, 0 failed`);
  },
);
