/**
 * What getifaddrs(3) asks the kernel, in one blocking call: socket(AF_NETLINK, SOCK_RAW |
 * SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE), an RTM_GETLINK dump, an RTM_GETADDR dump
 * (AF_UNSPEC), close. The raw bytes of each dump come back for a pure parser
 * (lib/system/netlink.ts).
 *
 * The kernel queues a dump's first part while handling the request and each next part while
 * handling the read that takes the previous one, so reads never need to wait: the socket is
 * non-blocking, and a read finding nothing queued (EAGAIN) means the dump has ended. On the
 * trampoline the whole exchange is one native chain with a fixed number of reads per dump; a dump
 * that needs more is asked again with twice as many, and the count is remembered.
 *
 * @module
 */

import { sys } from "../arch/mod.ts";
import { errno, libc, strerror } from "../libc.ts";
import {
  addressOf,
  CHAIN_A0_FROM,
  CHAIN_STEP_WORDS,
  chainRetOffset,
  syscallChain,
} from "../rawsyscall.ts";
import { type BlockingOp, isError } from "./op.ts";

/** The request: nothing to say. */
export type NetlinkDumpArgs = Record<never, never>;

/** Both dumps' messages, or the errno of the step that failed. */
export type NetlinkDumpResult =
  | { ok: true; links: ArrayBuffer; addresses: ArrayBuffer }
  | { ok: false; errno: number; strerror: string };

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const NETLINK_ROUTE = 0;
const RTM_GETLINK = 18;
const RTM_GETADDR = 22;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const EAGAIN = 11;
const EIO = 5;

/** Read buffer: the kernel sizes a dump's parts after the reads' buffers, up to this. */
const PART = 32 * 1024;
/** Reads per dump the trampoline chain makes; grows when a dump needed more. */
let reads = 2;
const MOST_READS = 256;

/** A dump request: nlmsghdr plus struct rtgenmsg (family AF_UNSPEC), as glibc sends it. */
function request(type: number, seq: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
  v.setUint32(8, seq, true);
  return b;
}

/** True when `part` holds the message that ends a dump (NLMSG_DONE or NLMSG_ERROR). */
function ends(part: Uint8Array): boolean {
  const v = new DataView(part.buffer, part.byteOffset, part.byteLength);
  for (let at = 0; at + 16 <= part.length;) {
    const len = v.getUint32(at, true);
    const type = v.getUint16(at + 4, true);
    if (type === NLMSG_DONE || type === NLMSG_ERROR) return true;
    if (len < 16) return true; // malformed: the parser reports it
    at += (len + 3) & ~3;
  }
  return false;
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out.buffer;
}

function failure(e: number): NetlinkDumpResult {
  return { ok: false, errno: e, strerror: strerror(e) };
}

/** The last chain's buffer, reused by the next one unless a chain is still using it. */
let spare: Uint8Array | undefined;

/** One try of the trampoline chain with `n` reads per dump; undefined when `n` was too few. */
async function chainOnce(n: number): Promise<NetlinkDumpResult | undefined> {
  const nr = sys();
  const size = 2 * n * PART + 64;
  const arena = spare?.length === size ? spare : new Uint8Array(size);
  spare = undefined;
  const base = addressOf(arena);
  const reqs = [request(RTM_GETLINK, 1), request(RTM_GETADDR, 2)];
  reqs.forEach((r, i) => arena.set(r, 2 * n * PART + 32 * i));
  const count = 1 + 2 * (1 + n) + 1;
  const steps = new BigInt64Array(count * CHAIN_STEP_WORDS);
  const fromSocket = BigInt(CHAIN_A0_FROM | (chainRetOffset(0) << 8));
  const put = (s: number, call: number, a0: bigint, a1 = 0n, a2 = 0n, chained = true) => {
    const w = s * CHAIN_STEP_WORDS;
    steps.set([BigInt(call), a0, a1, a2], w);
    if (chained) steps[w + 7] = fromSocket;
  };
  put(0, nr.socket, BigInt(AF_NETLINK), BigInt(SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK), 0n, false);
  let s = 1;
  for (let d = 0; d < 2; d++) {
    put(s++, nr.write, 0n, base + BigInt(2 * n * PART + 32 * d), 20n);
    for (let r = 0; r < n; r++) {
      put(s++, nr.read, 0n, base + BigInt((d * n + r) * PART), BigInt(PART));
    }
  }
  put(s, nr.close, 0n);
  try {
    await syscallChain(steps, count, [arena]);
    return answer(n, arena, steps);
  } finally {
    spare = arena;
  }
}

/** The chain's results: undefined when a dump needed more than `n` reads. */
function answer(
  n: number,
  arena: Uint8Array,
  steps: BigInt64Array,
): NetlinkDumpResult | undefined {
  const ret = (i: number) => steps[i * CHAIN_STEP_WORDS + 8];
  if (isError(ret(0))) return failure(Number(-ret(0)));
  const dumps: ArrayBuffer[] = [];
  let s = 1;
  for (let d = 0; d < 2; d++) {
    if (isError(ret(s))) return failure(Number(-ret(s)));
    s++;
    const parts: Uint8Array[] = [];
    let done = false;
    for (let r = 0; r < n; r++, s++) {
      const got = ret(s);
      if (done) continue;
      if (isError(got)) {
        if (Number(-got) === EAGAIN) return failure(EIO); // ended without its last message
        return failure(Number(-got));
      }
      const part = arena.subarray((d * n + r) * PART, (d * n + r) * PART + Number(got));
      parts.push(part);
      done = ends(part);
    }
    if (!done) return undefined;
    dumps.push(concat(parts));
  }
  return { ok: true, links: dumps[0], addresses: dumps[1] };
}

/** The link and address dumps of the caller's network namespace. */
export const netlinkDump: BlockingOp<NetlinkDumpArgs, NetlinkDumpResult> = {
  async trampoline() {
    for (;;) {
      const r = await chainOnce(reads);
      if (r !== undefined) return r;
      if (reads >= MOST_READS) return failure(EIO);
      reads *= 2;
    }
  },

  worker() {
    const c = libc();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd === -1) return failure(errno());
    try {
      const dumps: ArrayBuffer[] = [];
      for (const [type, seq] of [[RTM_GETLINK, 1], [RTM_GETADDR, 2]]) {
        const req = request(type, seq);
        if (Number(c.write(fd, req, BigInt(req.length))) === -1) return failure(errno());
        const parts: Uint8Array[] = [];
        for (let done = false; !done;) {
          const buf = new Uint8Array(PART);
          const n = Number(c.read(fd, buf, BigInt(PART)));
          if (n === -1) {
            const e = errno();
            return failure(e === EAGAIN ? EIO : e);
          }
          const part = buf.subarray(0, n);
          parts.push(part);
          done = n === 0 || ends(part);
        }
        dumps.push(concat(parts));
      }
      return { ok: true, links: dumps[0], addresses: dumps[1] };
    } finally {
      c.close(fd);
    }
  },

  transferables: (reply) => reply.ok ? [reply.links, reply.addresses] : [],
};
