/**
 * Helpers over a {@link QgaClient}: running a program in the guest and waiting for it
 * (guest-exec + guest-exec-status), and moving files (guest-file-open/read/write/close).
 *
 * @module
 */

import type { Json, QgaClient } from "./connection.ts";

/** Bytes per guest-file-read / guest-file-write. */
export const CHUNK_BYTES = 4 * 1024 * 1024;

/** How a guest program ended and what it printed. */
export interface ExecResult {
  /** The exit code, when it exited normally. */
  exitcode?: number;
  /** The signal that ended it, when one did. */
  signal?: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** The agent cut the captured output (qemu-ga keeps at most 16 MiB per stream). */
  truncated: boolean;
}

/** Options of {@link guestExec}. */
export interface ExecOptions {
  /** Bytes written to the program's standard input. */
  input?: Uint8Array;
  /** `NAME=value` entries of its environment. */
  env?: string[];
  /** Longest wait between two guest-exec-status polls (default 1000 ms). */
  maxPollMs?: number;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
}

/**
 * Runs `path` with `args` in the guest with its output captured and polls guest-exec-status
 * until it exits, starting at 10 ms and doubling up to `maxPollMs` so short commands return at
 * once and long ones cost few requests.
 */
export async function guestExec(
  client: QgaClient,
  path: string,
  args: string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const request: Record<string, Json> = { path, arg: args, "capture-output": true };
  if (opts.input) request["input-data"] = opts.input.toBase64();
  if (opts.env) request.env = opts.env;
  const { pid } = await client.call<{ pid: number }>("guest-exec", request);
  let wait = 10;
  for (;;) {
    const s = await client.call<ExecStatus>("guest-exec-status", { pid });
    if (s.exited) {
      return {
        exitcode: s.exitcode,
        signal: s.signal,
        stdout: Uint8Array.fromBase64(s["out-data"] ?? ""),
        stderr: Uint8Array.fromBase64(s["err-data"] ?? ""),
        truncated: Boolean(s["out-truncated"] || s["err-truncated"]),
      };
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, opts.maxPollMs ?? 1000);
  }
}

/** Called after each chunk with the bytes moved so far. */
export type Progress = (done: number) => void;

/**
 * Streams the guest file `path` into `sink` in reads of `chunkBytes`; returns the byte count.
 * The handle is closed even when a read fails.
 */
export async function readGuestFile(
  client: QgaClient,
  path: string,
  sink: (chunk: Uint8Array) => Promise<void>,
  progress?: Progress,
  chunkBytes = CHUNK_BYTES,
): Promise<number> {
  const handle = await client.call<number>("guest-file-open", { path, mode: "r" });
  let total = 0;
  try {
    for (;;) {
      const r = await client.call<{ count: number; "buf-b64": string; eof: boolean }>(
        "guest-file-read",
        { handle, count: chunkBytes },
      );
      if (r.count > 0) {
        await sink(Uint8Array.fromBase64(r["buf-b64"]));
        total += r.count;
        progress?.(total);
      }
      if (r.eof || r.count === 0) return total;
    }
  } finally {
    await client.call("guest-file-close", { handle }).catch(() => {});
  }
}

/**
 * A small guest file (a /proc file, a log) as text. Reads are of `chunkBytes`, small by default:
 * the agent allocates the whole count for each read, which would show in a measurement of its
 * own memory.
 */
export async function readGuestText(
  client: QgaClient,
  path: string,
  chunkBytes = 64 * 1024,
): Promise<string> {
  const parts: Uint8Array[] = [];
  await readGuestFile(
    client,
    path,
    (chunk) => {
      parts.push(chunk);
      return Promise.resolve();
    },
    undefined,
    chunkBytes,
  );
  const decoder = new TextDecoder();
  return parts.map((p, i) => decoder.decode(p, { stream: i < parts.length - 1 })).join("");
}

/**
 * Writes everything `source` yields to the guest file `path` (created or truncated) in chunks
 * of at most {@link CHUNK_BYTES}; returns the byte count.
 */
export async function writeGuestFile(
  client: QgaClient,
  path: string,
  source: AsyncIterable<Uint8Array>,
  progress?: Progress,
): Promise<number> {
  const handle = await client.call<number>("guest-file-open", { path, mode: "w" });
  let total = 0;
  let closed = false;
  try {
    for await (const data of source) {
      for (let off = 0; off < data.length; off += CHUNK_BYTES) {
        const part = data.subarray(off, Math.min(off + CHUNK_BYTES, data.length));
        let done = 0;
        while (done < part.length) {
          const r = await client.call<{ count: number }>("guest-file-write", {
            handle,
            "buf-b64": part.subarray(done).toBase64(),
          });
          if (r.count <= 0) throw new Error(`guest-file-write wrote nothing to ${path}`);
          done += r.count;
        }
        total += part.length;
        progress?.(total);
      }
    }
    closed = true;
    await client.call("guest-file-close", { handle });
    return total;
  } finally {
    if (!closed) await client.call("guest-file-close", { handle }).catch(() => {});
  }
}

/** Regroups a byte stream into pieces of exactly {@link CHUNK_BYTES} (the last one shorter). */
export async function* inChunks(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(CHUNK_BYTES);
  let len = 0;
  for await (const data of stream) {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(CHUNK_BYTES - len, data.length - off);
      buf.set(data.subarray(off, off + n), len);
      len += n;
      off += n;
      if (len === CHUNK_BYTES) {
        yield buf;
        buf = new Uint8Array(CHUNK_BYTES);
        len = 0;
      }
    }
  }
  if (len > 0) yield buf.subarray(0, len);
}
