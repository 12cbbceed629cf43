/**
 * guest-file-open/close/read/write/seek/flush (§3.2). The file is an fd opened through libc
 * (ffi/) whose system calls run off the event loop, so a slow filesystem cannot stall the
 * agent; `GuestFile` adds stdio's write buffering so file contents change when qemu-ga's do.
 *
 * @module
 */

import {
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  OsError,
} from "../../ffi/libc.ts";
import type { Agent } from "../agent.ts";
import { audited } from "../audit.ts";
import { decodeBase64, verbatimBase64 } from "../base64.ts";
import { t } from "../dispatch/schema.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError, QgaError } from "../errors.ts";
import { GuestFile, stdioBufferSize } from "../guest_file.ts";

/** Default and maximum `count` of guest-file-read (QGA_READ_COUNT_DEFAULT, 48 MiB cap). */
export const READ_COUNT_DEFAULT = 4096n;
export const READ_COUNT_MAX = 48n * 1024n * 1024n;

/** The fopen() modes qemu-ga accepts and their open(2) flags (b is ignored on POSIX). */
const OPEN_MODES: ReadonlyMap<string, number> = new Map([
  ["r", O_RDONLY],
  ["rb", O_RDONLY],
  ["w", O_WRONLY | O_CREAT | O_TRUNC],
  ["wb", O_WRONLY | O_CREAT | O_TRUNC],
  ["a", O_WRONLY | O_CREAT | O_APPEND],
  ["ab", O_WRONLY | O_CREAT | O_APPEND],
  ["r+", O_RDWR],
  ["rb+", O_RDWR],
  ["r+b", O_RDWR],
  ["w+", O_RDWR | O_CREAT | O_TRUNC],
  ["wb+", O_RDWR | O_CREAT | O_TRUNC],
  ["w+b", O_RDWR | O_CREAT | O_TRUNC],
  ["a+", O_RDWR | O_CREAT | O_APPEND],
  ["ab+", O_RDWR | O_CREAT | O_APPEND],
  ["a+b", O_RDWR | O_CREAT | O_APPEND],
]);

const NEW_FILE_MODE = 0o666;
const EEXIST = 17;
const EINVAL = 22;

/** `<what>: <strerror>` as qemu-ga's error_setg_errno builds it. */
function osFailure(what: string, e: unknown): QgaError {
  if (e instanceof OsError) return genericError(`${what}: ${e.strerror}`);
  throw e;
}

async function openGuestFile(agent: Agent, path: string, mode: string): Promise<bigint> {
  const base = OPEN_MODES.get(mode);
  if (base === undefined) throw genericError(`invalid file open mode '${mode}'`);
  const files = agent.platform.files;
  // The truncation waits until the handle counter is on disk: qemu-ga truncates first and may
  // then fail to commit the counter, losing the file's data for an error reply. Opening without
  // O_TRUNC fails for the same reasons as opening with it, so errors still come in qemu-ga's
  // order (open, then commit).
  const truncate = (base & O_TRUNC) !== 0;
  let flags = (base & ~O_TRUNC) | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
  // Create exclusively first, so a new file gets 0666 whatever the umask; an existing file
  // keeps its mode (qemu-ga's safe_open_or_create).
  let fd: number;
  try {
    fd = await files.open(path, flags | ((flags & O_CREAT) ? O_EXCL : 0), 0);
  } catch (e) {
    if (!(e instanceof OsError) || e.errno !== EEXIST) {
      throw osFailure(`failed to open file '${path}' (mode: '${mode}')`, e);
    }
    flags &= ~O_CREAT;
    try {
      fd = await files.open(path, flags, 0);
    } catch (e2) {
      throw osFailure(`failed to open file '${path}' (mode: '${mode}')`, e2);
    }
  }
  const created = (flags & O_CREAT) !== 0;
  if (created) {
    try {
      await files.fchmod(fd, NEW_FILE_MODE);
    } catch (e) {
      await files.close(fd).catch(() => {});
      await Deno.remove(path).catch(() => {});
      throw osFailure(
        `failed to set permission 0666 on new file '${path}' (mode: '${mode}')`,
        e,
      );
    }
  }
  const { handle, persisted } = await agent.state.takeHandle();
  if (!persisted) {
    await files.close(fd).catch(() => {});
    // A file this call created goes again, so the failed open leaves nothing behind.
    if (created) await Deno.remove(path).catch(() => {});
    throw genericError("failed to commit persistent state to disk");
  }
  if (truncate && !created) {
    try {
      await files.ftruncate(fd, 0n);
    } catch (e) {
      // O_TRUNC is ignored where ftruncate fails with EINVAL (FIFOs, terminals, devices).
      if (!(e instanceof OsError) || e.errno !== EINVAL) {
        await files.close(fd).catch(() => {});
        throw osFailure(`failed to open file '${path}' (mode: '${mode}')`, e);
      }
    }
  }
  if (handle < 0n) {
    // qemu-ga takes a negative counter (read from a hand-edited state file) for a failure
    // without an error: it closes the (already truncated) file and replies the handle -1.
    await files.close(fd).catch(() => {});
    return -1n;
  }
  let blksize: number | null = null;
  try {
    blksize = (await Deno.stat(path)).blksize;
  } catch {
    // glibc falls back to BUFSIZ when fstat fails
  }
  agent.files.set(
    handle,
    new GuestFile(files, fd, path, stdioBufferSize(blksize), (base & (O_WRONLY | O_RDWR)) !== 0),
  );
  agent.log.debug(`guest-file-open, handle: ${handle}`);
  return handle;
}

/** Opens a file and returns a handle from the persistent counter. */
export const guestFileOpen = defineCommand({
  name: "guest-file-open",
  summary: "Open a file in the guest and return a handle for it",
  args: [{ name: "path", type: t.str }, { name: "mode", type: t.str, optional: true }],
  returns: t.int,
  run: ({ path, mode }, agent) => {
    agent.log.debug(`guest-file-open called, filepath: ${path}, mode: ${mode ?? "r"}`);
    const m = mode ?? "r";
    const open = async () => {
      await agent.policy.checkFileOpen(path);
      return openGuestFile(agent, path, m);
    };
    // Opens for reading change nothing, so only those that may write are audited.
    const writes = ((OPEN_MODES.get(m) ?? O_RDONLY) & (O_WRONLY | O_RDWR)) !== 0;
    if (!writes) return open();
    return audited(agent, "guest-file-open", { path, mode: m }, open, (handle) => ({ handle }));
  },
});

/** Closes a handle; on a close error the handle stays registered, as in qemu-ga. */
export const guestFileClose = defineCommand({
  name: "guest-file-close",
  summary: "Close an open file in the guest",
  args: [{ name: "handle", type: t.int }],
  run: async ({ handle }, agent) => {
    const f = agent.file(handle);
    try {
      await f.close();
    } catch (e) {
      // fclose released the stream even though it failed; forget the handle rather than keep
      // one that points at nothing (qemu-ga keeps a dangling one).
      agent.files.delete(handle);
      throw osFailure("failed to close handle", e);
    }
    agent.files.delete(handle);
    return undefined;
  },
});

/** Reads up to `count` bytes, base64-encoded; `eof` is true when end of file was hit. */
export const guestFileRead = defineCommand({
  name: "guest-file-read",
  summary: "Read from an open file in the guest; data is base64-encoded",
  args: [{ name: "handle", type: t.int }, { name: "count", type: t.int, optional: true }],
  returns: t.struct("GuestFileRead", [
    { name: "count", type: t.int },
    { name: "buf-b64", type: t.str },
    { name: "eof", type: t.bool },
  ]),
  run: async ({ handle, count }, agent) => {
    const f = agent.file(handle);
    const n = count ?? READ_COUNT_DEFAULT;
    if (n < 0n || n > READ_COUNT_MAX) {
      throw genericError(`value '${n}' is invalid for argument count`);
    }
    if (f.rw === "writing") {
      try {
        await f.flush();
      } catch (e) {
        throw osFailure("failed to flush file", e);
      }
      f.rw = "new";
    }
    let got: { data: Uint8Array; eof: boolean };
    try {
      got = await f.read(Number(n));
    } catch (e) {
      throw osFailure("failed to read file", e);
    }
    f.rw = "reading";
    const reply = {
      count: got.data.length,
      "buf-b64": verbatimBase64(got.data),
      eof: got.eof,
    };
    // Release up to 48 MiB now rather than whenever V8 collects it (peak RSS).
    const buffer = got.data.buffer;
    if (buffer instanceof ArrayBuffer) buffer.transfer(0);
    return reply;
  },
});

/** Writes base64-decoded data (all of it, or the first `count` bytes). */
export const guestFileWrite = defineCommand({
  name: "guest-file-write",
  summary: "Write base64-encoded data to an open file in the guest",
  args: [
    { name: "handle", type: t.int },
    { name: "buf-b64", type: t.str },
    { name: "count", type: t.int, optional: true },
  ],
  returns: t.struct("GuestFileWrite", [
    { name: "count", type: t.int },
    { name: "eof", type: t.bool },
  ]),
  run: async (args, agent) => {
    const f = agent.file(args.handle);
    if (f.rw === "reading") {
      // stdio needs a seek between a read and a write; on a pipe that seek fails (§3.2).
      try {
        await f.syncPosition();
      } catch (e) {
        throw osFailure("failed to seek file", e);
      }
      f.rw = "new";
    }
    const data = decodeBase64(args["buf-b64"]);
    const count = args.count ?? BigInt(data.length);
    if (count < 0n || count > BigInt(data.length)) {
      throw genericError(`value '${count}' is invalid for argument count`);
    }
    let written = 0;
    try {
      if (count > 0n) {
        written = await f.write(data.subarray(0, Number(count)));
      }
    } catch (e) {
      agent.log.debug(`guest-file-write failed, handle: ${args.handle}`);
      throw osFailure("failed to write to file", e);
    }
    f.rw = "writing";
    return { count: written, eof: false };
  },
});

const WHENCE_NAMES: Readonly<Record<string, number>> = { set: 0, cur: 1, end: 2 };

/** Moves the file position; `whence` is 0/1/2 or "set"/"cur"/"end". */
export const guestFileSeek = defineCommand({
  name: "guest-file-seek",
  summary: "Seek to a position in an open file and return the new position",
  args: [
    { name: "handle", type: t.int },
    { name: "offset", type: t.int },
    {
      name: "whence",
      type: t.alternate("GuestFileWhence", t.int, t.enumOf("QGASeek", ["set", "cur", "end"])),
    },
  ],
  returns: t.struct("GuestFileSeek", [
    { name: "position", type: t.int },
    { name: "eof", type: t.bool },
  ]),
  run: async ({ handle, offset, whence }, agent) => {
    const f = agent.file(handle);
    const code = whence.branch === "enum" ? BigInt(WHENCE_NAMES[whence.value]) : whence.value;
    if (code < 0n || code > 2n) throw genericError(`invalid whence code ${code}`);
    let position: bigint;
    try {
      position = await f.seek(offset, Number(code));
    } catch (e) {
      throw osFailure("failed to seek file", e);
    }
    f.rw = "new";
    return { position, eof: false };
  },
});

/** Hands buffered writes to the kernel. */
export const guestFileFlush = defineCommand({
  name: "guest-file-flush",
  summary: "Flush buffered writes of an open file to the kernel",
  args: [{ name: "handle", type: t.int }],
  run: async ({ handle }, agent) => {
    const f = agent.file(handle);
    try {
      await f.flush();
    } catch (e) {
      throw osFailure("failed to flush file", e);
    }
    return undefined;
  },
});

/** The family, for the command table. */
export const fileCommands = [
  guestFileOpen,
  guestFileClose,
  guestFileRead,
  guestFileWrite,
  guestFileSeek,
  guestFileFlush,
];
