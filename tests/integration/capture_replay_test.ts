/**
 * Replays the team's wire capture of qemu-ga 7.2 (`../shared/reference/captures/
 * host-probe-qemu-ga-7.2.txt`) against denoga: the same bytes, in the same order, on one
 * connection to a fresh agent, must produce the captured replies byte for byte. Sections for
 * commands of the modern set (issue #4) and the reconnect experiments (covered by
 * agent_test.ts) are left out; guest-info is compared on the seed commands with the version
 * normalised.
 */

import { assertEquals } from "../assert.ts";
import { RawClient, startAgent } from "./harness.ts";
import { COMMANDS } from "../../lib/commands/mod.ts";

const CAPTURE = new URL(
  "../../../shared/reference/captures/host-probe-qemu-ga-7.2.txt",
  import.meta.url,
);

interface Exchange {
  title: string;
  send: Uint8Array;
  expect: Uint8Array;
}

/** Decodes a Python bytes literal body (the text between b' and '). */
function pyBytes(body: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") {
      out.push(...new TextEncoder().encode(c));
      continue;
    }
    const n = body[++i];
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, "\\": 92, "'": 39, '"': 34 };
    if (n === "x") {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (n in simple) {
      out.push(simple[n]);
    } else {
      throw new Error(`unsupported escape \\${n}`);
    }
  }
  return new Uint8Array(out);
}

async function loadExchanges(workdir: string): Promise<Exchange[]> {
  const text = await Deno.readTextFile(CAPTURE);
  const out: Exchange[] = [];
  let title = "";
  let send: Uint8Array | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("### ")) title = line.slice(4);
    const m = /^(>>>|<<<) b'(.*)'$/.exec(line);
    if (!m) continue;
    const bytes = pyBytes(m[2].replaceAll("$WORKDIR", workdir));
    if (m[1] === ">>>") send = bytes;
    else if (send) {
      out.push({ title, send, expect: bytes });
      send = undefined;
    }
  }
  return out;
}

/** Commands both list: denoga's, less those newer than 7.2 (guest-get-devices is Windows-only). */
const NEWER_THAN_72 = new Set(["guest-get-load", "guest-network-get-route"]);
const SEED = new Set(COMMANDS.map((c) => c.name).filter((n) => !NEWER_THAN_72.has(n)));
const dec = new TextDecoder("latin1");

/** guest-info with the version masked and only the commands both agents register. */
function normaliseInfo(line: string): string {
  const m = /^\{"return": \{"version": "[^"]*", "supported_commands": \[(.*)\]\}\}$/.exec(line);
  if (!m) return line;
  const entries = m[1].split(/(?<=\}), (?=\{)/).filter((e) => {
    const name = /"name": "([^"]+)"/.exec(e)?.[1] ?? "";
    return SEED.has(name);
  });
  return `{"return": {"version": "@VERSION@", "supported_commands": [${entries.join(", ")}]}}`;
}

Deno.test("the qemu-ga 7.2 wire capture replays byte for byte against denoga", async () => {
  const workdir = await Deno.makeTempDir({ prefix: "denoga-capture-" });
  await Deno.mkdir(`${workdir}/probe2`);
  const agent = await startAgent({ impl: "denoga" });
  const client = await RawClient.connect(agent.socketPath);
  try {
    const all = await loadExchanges(workdir);
    const end = all.findIndex((x) => x.title.startsWith("read-only extra"));
    const exchanges = all.slice(0, end);
    assertEquals(exchanges.length > 40, true);
    for (const x of exchanges) {
      await client.send(x.send);
      const expected = dec.decode(x.expect).split("\n").filter((l) => l !== "");
      if (expected.length === 0) {
        await client.expectSilence(200);
        continue;
      }
      const got: string[] = [];
      for (let i = 0; i < expected.length; i++) got.push(dec.decode(await client.recvLine()));
      assertEquals(got.map(normaliseInfo), expected.map(normaliseInfo), x.title);
    }
  } finally {
    client.close();
    await agent.stop();
    await Deno.remove(workdir, { recursive: true });
  }
});
