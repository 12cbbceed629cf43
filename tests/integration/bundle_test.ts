/**
 * The bundled agent (scripts/bundle.ts: what `deno task compile` embeds and the test guest runs)
 * behaves like `main.ts`: the same request script gets byte-identical replies from both, with the
 * bundle forced onto the Worker executor so that its separately bundled `syscall_worker.js` is
 * loaded and used; `-V` and `-b help` print the same.
 */

import { bundleAgent } from "../../scripts/bundle.ts";
import { COMMANDS } from "../../lib/commands/mod.ts";
import { syncCommands } from "../../lib/commands/sync.ts";
import { assertEquals, assertOk } from "../assert.ts";
import { type Agent, RawClient, runAgentOnce, showBytes, startAgent } from "./harness.ts";

const dec = new TextDecoder();

let bundled: Promise<{ dir: string; agent: string; files: string[] }> | undefined;
function bundle(): Promise<{ dir: string; agent: string; files: string[] }> {
  bundled ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "denoga-bundle-test-" });
    const b = await bundleAgent(dir);
    return { dir, agent: b.agent, files: b.files };
  })();
  return bundled;
}

/** Requests for an agent whose temp dir is `dir`; each gets exactly one reply line. */
function script(dir: string): string[] {
  const file = `${dir}/bundle-test.txt`;
  return [
    '\xff{"execute":"guest-sync-delimited","arguments":{"id":18446744073709551615}}',
    '{"execute":"guest-ping","id":"p1"}',
    '{"execute":"guest-info"}',
    '{"execute":}',
    '{"execute":"guest-nope","id":7}',
    `{"execute":"guest-file-open","arguments":{"path":${JSON.stringify(file)},"mode":"w+"}}`,
    '{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"aGVsbG8gd29ybGQ="}}',
    '{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":6,"whence":"set"}}',
    '{"execute":"guest-file-read","arguments":{"handle":1000,"count":100}}',
    '{"execute":"guest-file-flush","arguments":{"handle":1000}}',
    '{"execute":"guest-file-close","arguments":{"handle":1000}}',
    '{"execute":"guest-file-read","arguments":{"handle":1000}}',
    '{"execute":"guest-fsfreeze-status"}',
    '{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["/nonexistent-mnt"]}}',
    '{"execute":"guest-fsfreeze-status"}',
  ];
}

async function transcript(agent: Agent): Promise<string[]> {
  const c = await RawClient.connect(agent.socketPath);
  try {
    const out: string[] = [];
    for (const req of script(agent.dir)) {
      await c.send(Uint8Array.from(req, (ch) => ch.charCodeAt(0) & 0xff));
      out.push(showBytes(await c.recvLine()));
    }
    return out;
  } finally {
    c.close();
  }
}

Deno.test({
  name: "bundle: the same request script gets the same replies as main.ts (worker executor)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { agent: entry } = await bundle();
    const fromSource = await startAgent({ impl: "denoga" });
    const fromBundle = await startAgent({
      impl: "denoga",
      entry,
      env: { DENOGA_SYSCALL_EXECUTOR: "worker" },
    });
    try {
      const [a, b] = [await transcript(fromSource), await transcript(fromBundle)];
      assertEquals(b, a);
      const contents = dec.decode(await Deno.readFile(`${fromBundle.dir}/bundle-test.txt`));
      assertEquals(contents, "hello world");
    } finally {
      await fromSource.dispose();
      await fromBundle.dispose();
    }
  },
});

Deno.test("bundle: -V and -b help print what main.ts prints", async () => {
  const { agent: entry } = await bundle();
  for (const args of [["-V"], ["-b", "help"]]) {
    const a = await runAgentOnce("denoga", args);
    const b = await runAgentOnce("denoga", args, entry);
    assertEquals(b, a);
  }
});

/** CPU time of all of a process's threads so far, ns (schedstat). */
function threadsCpuNs(pid: number): number {
  let ns = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`);
      ns += Number(s.slice(0, s.indexOf(" ")));
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

/** Agent CPU per reply (ns) over `total` guest-pings sent 64 at a time, refilled per read. */
async function pipelinedCpuPerPing(agent: Agent, total: number): Promise<number> {
  const ping = new TextEncoder().encode('{"execute":"guest-ping"}\n');
  const depth = 64;
  const batch = new Uint8Array(ping.length * depth);
  for (let i = 0; i < depth; i++) batch.set(ping, i * ping.length);
  const conn = await Deno.connect({ transport: "unix", path: agent.socketPath });
  try {
    const buf = new Uint8Array(1 << 16);
    const cpu0 = threadsCpuNs(agent.proc.pid);
    let sent = depth;
    let received = 0;
    await conn.write(batch);
    while (received < total) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("the agent closed the connection");
      let k = 0;
      for (let i = 0; i < n; i++) if (buf[i] === 0x0a) k++;
      received += k;
      const more = Math.min(k, total - sent);
      if (more > 0) {
        for (let off = 0; off < more * ping.length;) {
          off += await conn.write(batch.subarray(off, more * ping.length));
        }
        sent += more;
      }
    }
    return (threadsCpuNs(agent.proc.pid) - cpu0) / total;
  } finally {
    conn.close();
  }
}

// The shipped form must not cost more per request than the module tree: a bundling artefact on
// the request path (a closure per request that `--keep-names` names with defineProperty) once
// doubled it. Interleaved, best of several, and a wide margin: only a gross regression fails.
Deno.test({
  name: "bundle: CPU per pipelined guest-ping is within 1.5x of main.ts's",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { agent: entry } = await bundle();
    const fromSource = await startAgent({ impl: "denoga" });
    const fromBundle = await startAgent({ impl: "denoga", entry });
    try {
      for (const a of [fromSource, fromBundle]) await pipelinedCpuPerPing(a, 50_000); // JIT
      const best = [Infinity, Infinity];
      for (let round = 0; round < 8; round++) {
        for (const [k, a] of [fromSource, fromBundle].entries()) {
          best[k] = Math.min(best[k], await pipelinedCpuPerPing(a, 50_000));
        }
      }
      const [source, bundled] = best;
      console.log(
        `CPU per pipelined ping: main.ts ${source.toFixed(0)} ns, bundle ${bundled.toFixed(0)} ns`,
      );
      assertOk(bundled <= 1.5 * source, `bundle ${bundled} ns vs main.ts ${source} ns per ping`);
    } finally {
      await fromSource.dispose();
      await fromBundle.dispose();
    }
  },
});

/** The files a start loads: the entry and what it imports statically, transitively. */
function loadedAtStart(entry: string): string[] {
  const dir = entry.replace(/[^/]*$/, "");
  const files = [entry];
  for (let i = 0; i < files.length; i++) {
    const code = Deno.readTextFileSync(files[i]);
    // Minified static imports: `import{a as b}from"./chunk-X.js"` and `import"./chunk-Y.js"`.
    for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*"\.\/([\w.-]+\.js)"/g)) {
      if (!files.includes(dir + m[1])) files.push(dir + m[1]);
    }
  }
  return files;
}

// A start parses all of every file it loads, and a guest's boot waits for the first reply: the
// families other than the sync one must be in chunks that only `import()` reaches.
Deno.test("bundle: a start loads the sync family and no other command family", async () => {
  const { agent, files } = await bundle();
  const atStart = loadedAtStart(agent);
  assertOk(atStart.length < files.length, "some chunks load later");
  const code = atStart.map((f) => Deno.readTextFileSync(f)).join("\n");
  const loaded = COMMANDS.filter((c) => code.includes(JSON.stringify(c.summary)));
  assertEquals(loaded.map((c) => c.name), syncCommands.map((c) => c.name));
  const bytes = atStart.reduce((n, f) => n + Deno.statSync(f).size, 0);
  const all = files.reduce((n, f) => n + Deno.statSync(f).size, 0);
  console.log(`loaded at start: ${atStart.length} of ${files.length} files, ${bytes} of ${all} B`);
  // Only a gross regression fails (about 0.3 of the whole when written).
  assertOk(bytes < 0.5 * all, `${bytes} of ${all} bytes load at start`);
});

Deno.test("bundle: clean up", async () => {
  if (bundled) await Deno.remove((await bundled).dir, { recursive: true });
});
