/**
 * ffi/nvme.ts on both executors. There is no NVMe controller here, so the admin command itself is
 * proven in a real guest (tests/e2e/libvirt_test.ts); these tests pin the command's bytes and that
 * the ioctl reaches the kernel with qemu-ga's request number: on what is not an NVMe device the
 * kernel answers as it does to a C program issuing `NVME_IOCTL_ADMIN_CMD` (ENOTTY for a
 * character device or a regular file, EINVAL from the loop driver).
 */

import assert from "node:assert/strict";
import { blockingStats } from "../../ffi/blocking.ts";
import { arch } from "../../ffi/arch/mod.ts";
import { EINVAL, ENOENT, ENOTTY } from "../../ffi/libc.ts";
import { nvmeSmartLog } from "../../ffi/nvme.ts";
import { nvmeSmartCommand, SMART_LOG_SIZE } from "../../ffi/ops/nvme_smart.ts";
import { UNDER_QEMU_USER } from "../fixtures/emulation.ts";
import { EXECUTORS, usingExecutor } from "../fixtures/executors.ts";
import { missingLoopPrerequisite, realTestIf, run } from "../fixtures/loopfs.ts";

/**
 * qemu-user passes on only the ioctls it knows how to translate and answers the others itself
 * (ENOSYS in Debian 12's qemu 7.2), so there the kernel's answer cannot be checked.
 */
function kernelSays(e: number): number[] {
  return UNDER_QEMU_USER ? [e, 38 /* ENOSYS */] : [e];
}

Deno.test("the admin command: Get Log Page 0x02 of nsid 0xffffffff into 512 bytes, RAE set", () => {
  const at = arch().layout.nvmeAdminCmd;
  assert.equal(at.size, 72);
  assert.equal(arch().ioctl.nvmeAdminCmd, 0xC0484E41);
  const log = new Uint8Array(new ArrayBuffer(SMART_LOG_SIZE));
  const cmd = nvmeSmartCommand(log);
  const v = new DataView(cmd.buffer);
  assert.equal(cmd.byteLength, 72);
  assert.equal(v.getUint8(0), 0x02, "opcode");
  assert.equal(v.getUint32(4, true), 0xffff_ffff, "nsid");
  assert.equal(
    v.getBigUint64(24, true),
    BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(log))),
    "addr",
  );
  assert.equal(v.getUint32(36, true), 512, "data_len");
  assert.equal(v.getUint32(40, true), 0x007F8002, "cdw10: log 2, RAE, 128 dwords - 1");
  // Everything else zero: flags, cdw2/3, metadata, cdw11-15, timeout (the driver's default).
  const others = [...cmd].filter((_, i) =>
    !(i === 0 || (i >= 4 && i < 8) || (i >= 24 && i < 32) || (i >= 36 && i < 44))
  );
  assert.ok(others.every((b) => b === 0));
});

for (const ex of EXECUTORS) {
  Deno.test(`a character device and a regular file: the ioctl fails with ENOTTY [${ex}]`, () =>
    usingExecutor(ex, async () => {
      const file = await Deno.makeTempFile({ prefix: "denoga-nvme-" });
      try {
        for (const path of ["/dev/null", file]) {
          const r = await nvmeSmartLog(path);
          assert.equal(r.ok, false, path);
          if (r.ok) return;
          assert.equal(r.stage, "ioctl", path);
          assert.ok(kernelSays(ENOTTY).includes(r.errno), `${path}: errno ${r.errno}`);
          assert.equal(r.status, undefined);
        }
      } finally {
        await Deno.remove(file);
      }
    }));

  realTestIf(
    UNDER_QEMU_USER ? undefined : missingLoopPrerequisite(),
    `a loop device: the loop driver refuses the ioctl with EINVAL [${ex}]`,
    () =>
      usingExecutor(ex, async () => {
        const image = await Deno.makeTempFile({ prefix: "denoga-nvme-" });
        let device: string | undefined;
        try {
          await run("truncate", ["-s", "1M", image]);
          device = (await run("losetup", ["-f", "--show", "-r", image])).trim();
          const r = await nvmeSmartLog(device);
          assert.equal(r.ok, false);
          if (r.ok) return;
          assert.equal(r.stage, "ioctl");
          assert.ok(kernelSays(EINVAL).includes(r.errno), `errno ${r.errno}`);
        } finally {
          if (device !== undefined) await run("losetup", ["-d", device]);
          await Deno.remove(image);
        }
      }),
  );

  Deno.test(`a missing device node fails at stage open with ENOENT [${ex}]`, () =>
    usingExecutor(ex, async () => {
      assert.deepEqual(await nvmeSmartLog("/nonexistent/denoga-nvme"), {
        ok: false,
        stage: "open",
        errno: ENOENT,
        strerror: "No such file or directory",
      });
      assert.equal(blockingStats().busy, 0);
    }));
}
