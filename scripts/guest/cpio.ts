/**
 * A writer for the `newc` cpio format the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst), so building a guest image needs no
 * `cpio` tool. Output is deterministic: owner root, mtime 0, inode numbers in entry order.
 *
 * @module
 */

/** One member of an archive. Paths are relative to the archive root, without a leading `/`. */
export type CpioEntry =
  | { kind: "dir"; path: string; mode: number }
  | { kind: "file"; path: string; mode: number; data: Uint8Array<ArrayBuffer> }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const encoder = new TextEncoder();

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(
  ino: number,
  mode: number,
  size: number,
  nameSize: number,
  rdev: [number, number] = [0, 0],
): Uint8Array {
  const fields = [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, size, 0, 0, rdev[0], rdev[1]];
  return encoder.encode(`070701${fields.map(hex8).join("")}${hex8(nameSize)}${hex8(0)}`);
}

/**
 * Encodes `entries` (parents before children; an async iterable lets file data be read lazily) plus the trailer, calling `sink` with each chunk in
 * order. Returns the archive's total size.
 *
 * @example
 * ```ts
 * const chunks: Uint8Array[] = [];
 * await writeCpio([{ kind: "dir", path: "bin", mode: 0o755 }], (c) => {
 *   chunks.push(c);
 *   return Promise.resolve();
 * });
 * ```
 */
export async function writeCpio(
  entries: Iterable<CpioEntry> | AsyncIterable<CpioEntry>,
  sink: (chunk: Uint8Array<ArrayBuffer>) => Promise<void>,
): Promise<number> {
  let total = 0;
  let ino = 1;
  const emit = async (
    name: string,
    mode: number,
    data: Uint8Array<ArrayBuffer>,
    rdev?: [number, number],
  ): Promise<void> => {
    const nameBytes = encoder.encode(`${name}\0`);
    const head = header(ino++, mode, data.length, nameBytes.length, rdev);
    const headLen = head.length + nameBytes.length;
    const first = new Uint8Array(headLen + pad4(headLen));
    first.set(head);
    first.set(nameBytes, head.length);
    await sink(first);
    total += first.length;
    if (data.length > 0) {
      await sink(data);
      const pad = pad4(data.length);
      if (pad > 0) await sink(new Uint8Array(pad));
      total += data.length + pad;
    }
  };
  for await (const e of entries) {
    switch (e.kind) {
      case "dir":
        await emit(e.path, S_IFDIR | e.mode, new Uint8Array(0));
        break;
      case "file":
        await emit(e.path, S_IFREG | e.mode, e.data);
        break;
      case "symlink":
        await emit(e.path, S_IFLNK | 0o777, encoder.encode(e.target));
        break;
      case "chardev":
        await emit(e.path, S_IFCHR | e.mode, new Uint8Array(0), [e.major, e.minor]);
        break;
    }
  }
  await emit("TRAILER!!!", 0, new Uint8Array(0));
  return total;
}
