/**
 * Agent lifecycle behaviour beyond single requests: state kept across client reconnects and
 * agent restarts, starting frozen from a leftover `qga.state.isfrozen`, SIGTERM while frozen,
 * start-up failures and `-V`. Wherever qemu-ga has the behaviour the check runs side by side
 * with it (same harness and normalizations as side_by_side_test.ts).
 *
 * @module
 */

import {
  type Agent,
  type Case,
  compareResults,
  exec,
  type Impl,
  needQemuGa,
  realTest,
  registerLoopSideBySide,
  registerSideBySide,
  runAgentOnce,
  runCase,
  sideBySideImpls,
  startAgent,
  type Step,
  VERSION_PLACEHOLDER,
  withTimeout,
} from "./harness.ts";

const NEED_QGA = [needQemuGa()];
const PING = '{"execute":"guest-ping"}';
const PONG = '{"return": {}}';

/** Host step: the statedir's file names (sorted) and the log file's presence. */
function stateFiles(): Step {
  return {
    host: async (ctx) => {
      const names: string[] = [];
      for await (const e of Deno.readDir(ctx.agent.statedir)) names.push(e.name);
      return `statedir: ${names.sort().join(" ") || "(empty)"}`;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reconnects: the parser, handles and the one-client-at-a-time rule (§2.1, §6)

registerSideBySide("reconnect", [
  {
    name: "a half request left by one client is continued by the next (parser not reset)",
    steps: [
      { send: '{"execute":"guest-ping"' },
      { disconnect: 0 },
      { connect: 0 },
      { send: '{"execute":"guest-ping","id":2}' },
      { silence: 200 },
      { send: "}" },
      { recv: 1 },
    ],
    expect: [
      '{"error": {"class": "GenericError", "desc": "JSON parse error, expected separator in dict"}}',
    ],
  },
  {
    name: "a half token left by one client is continued by the next",
    steps: [
      { send: '{"execute":"guest-sy' },
      { disconnect: 0 },
      { connect: 0 },
      { send: 'nc","arguments":{"id":31}}' },
      { recv: 1 },
    ],
    expect: ['{"return": 31}'],
  },
  {
    name: "0xFF from the next client resynchronises a half request",
    steps: [
      { send: '{"execute":"guest-sync","arguments":' },
      { disconnect: 0 },
      { connect: 0 },
      { send: Uint8Array.of(0xff) },
      { send: '{"execute":"guest-sync-delimited","arguments":{"id":32}}' },
      { recv: 2 },
    ],
    expect: [
      String.raw`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}`,
      String.raw`\xff{"return": 32}`,
    ],
  },
  {
    name: "a second client waits until the first disconnects",
    steps: [
      { connect: 1 },
      { send: PING, client: 1 },
      { silence: 200, client: 1 },
      { send: exec("guest-sync", '{"id":33}') },
      { recv: 1 },
      { disconnect: 0 },
      { recv: 1, client: 1 },
    ],
    expect: ['{"return": 33}', `[c1] ${PONG}`],
  },
  {
    name: "a handle opened by one client is used and closed by the next",
    steps: [
      { host: (ctx) => Deno.writeTextFile(`${ctx.dir}/r.txt`, "reconnect") },
      { req: exec("guest-file-open", '{"path":"@DIR@/r.txt"}'), capture: "h" },
      { disconnect: 0 },
      { connect: 0 },
      { req: exec("guest-file-read", '{"handle":@h@,"count":5}') },
      { disconnect: 0 },
      { connect: 2 },
      { req: exec("guest-file-close", '{"handle":@h@}'), client: 2 },
      { req: exec("guest-file-close", '{"handle":@h@}'), client: 2 },
    ],
    expect: [
      '{"return": 1000}',
      '{"return": {"count": 5, "buf-b64": "cmVjb24=", "eof": false}}',
      `[c2] ${PONG}`,
      `[c2] {"error": {"class": "GenericError", "desc": "handle '1000' has not been found"}}`,
    ],
  },
]);

// ---------------------------------------------------------------------------------------------
// Persistent handle counter across agent restarts (§3.2)

realTest("handle counter persists across agent restarts (same statedir)", NEED_QGA, async () => {
  const results = new Map<Impl, { transcript: string[]; healthy: boolean; log: string }>();
  const round: Case = {
    name: "open, state file",
    steps: [
      { req: exec("guest-file-open", '{"path":"@DIR@/p","mode":"w"}') },
      {
        host: async (ctx) =>
          JSON.stringify(await Deno.readTextFile(`${ctx.agent.statedir}/qga.state`)),
      },
    ],
  };
  for (const impl of sideBySideImpls()) {
    const statedir = await Deno.makeTempDir({ prefix: `denoga-it-${impl}-statedir-` });
    const transcript: string[] = [];
    let healthy = true;
    let log = "";
    try {
      for (let i = 0; i < 2; i++) {
        const agent = await startAgent({ impl, statedir });
        const r = await runCase(round, agent);
        transcript.push(...r.transcript, `# exit ${await agent.stop()}`);
        healthy &&= r.healthy;
        log += agent.output();
      }
    } finally {
      await Deno.remove(statedir, { recursive: true }).catch(() => {});
    }
    results.set(impl, { transcript, healthy, log });
  }
  await compareResults(
    {
      ...round,
      expect: [
        '{"return": 1000}',
        '# "[global]\\nfd_counter=1001\\n"',
        "# exit 0",
        '{"return": 1001}',
        '# "[global]\\nfd_counter=1002\\n"',
        "# exit 0",
      ],
    },
    results,
    async () => {},
  );
});

// ---------------------------------------------------------------------------------------------
// Starting frozen: a leftover qga.state.isfrozen (§4)

registerSideBySide("start frozen (marker left in the statedir)", [
  {
    name: "starts frozen, only the allow-list works, thaw clears the marker",
    steps: [
      stateFiles(),
      { req: exec("guest-fsfreeze-status") },
      { req: PING },
      { req: exec("guest-file-open", '{"path":"@DIR@/x","mode":"w"}') },
      { req: exec("guest-fsfreeze-freeze-list", '{"x-frozen-probe":1}') },
      { req: exec("guest-shutdown", '{"mode":"x-frozen-probe"}') },
      { req: exec("guest-info") },
      { req: exec("guest-fsfreeze-thaw") },
      stateFiles(),
      { req: exec("guest-fsfreeze-status") },
      { req: exec("guest-file-open", '{"path":"@DIR@/x","mode":"w"}'), capture: "h" },
      { req: exec("guest-file-close", '{"handle":@h@}') },
      stateFiles(),
    ],
  },
], {
  setup: async (dir) => {
    await Deno.writeFile(`${dir}/state/qga.state.isfrozen`, new Uint8Array(), { mode: 0o600 });
  },
});

// ---------------------------------------------------------------------------------------------
// SIGTERM while frozen is not acted on (§4, captures/host-fsfreeze-qemu-ga-7.2.txt): qemu-ga
// ignores it for good and needs a new SIGTERM after the thaw; denoga defers it and exits by
// itself once the thaw has been answered (issue #2: "SIGTERM deferred while frozen"). Both end
// with status 0 and never leave a filesystem frozen.

/** Resolves true if the agent exits within `ms` (a bounded wait for a negative check). */
async function exitsWithin(agent: Agent, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    agent.exited.then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms)),
  ]);
  clearTimeout(timer);
  return r;
}

for (const fs of ["ext4", "xfs"] as const) {
  registerLoopSideBySide(fs, {
    name: "SIGTERM while frozen waits for the thaw (qemu-ga ignores it, denoga defers it)",
    endsAgent: true,
    timeoutMs: 60_000,
    steps: [
      { req: exec("guest-fsfreeze-freeze-list", '{"mountpoints":["@MNT@"]}') },
      {
        host: async (ctx) => {
          await ctx.agent.signalWhenIdle("SIGTERM");
          return `exited within 1 s of SIGTERM while frozen: ${await exitsWithin(ctx.agent, 1000)}`;
        },
      },
      { req: PING },
      { req: exec("guest-fsfreeze-status") },
      { req: exec("guest-fsfreeze-thaw") },
      {
        host: async (ctx) => {
          if (ctx.impl === "denoga") {
            const st = await withTimeout(ctx.agent.exited, 10_000, "deferred exit after thaw");
            return `stopped after the thaw with status ${st.code}`;
          }
          if (await exitsWithin(ctx.agent, 1000)) return "qemu-ga exited without a new signal";
          await ctx.agent.signalWhenIdle("SIGTERM");
          const st = await withTimeout(ctx.agent.exited, 10_000, "exit after SIGTERM");
          return `stopped after the thaw with status ${st.code}`;
        },
      },
    ],
    expect: [
      '{"return": 1}',
      "# exited within 1 s of SIGTERM while frozen: false",
      PONG,
      '{"return": "frozen"}',
      '{"return": 1}',
      "# stopped after the thaw with status 0",
    ],
  });
}

/** Host step: `path`'s contents as text, or the error reading it. */
function fileText(path: string): Step {
  return {
    host: async (ctx) =>
      `${path}: ${await Deno.readTextFile(ctx.path(path)).catch((e) => (e as Error).name)}`,
  };
}

registerSideBySide("exit", [
  {
    // qemu-ga's exit() flushes its stdio buffers; denoga writes out what it holds before exiting.
    name: "SIGTERM: what guest-file-write left buffered reaches the file",
    endsAgent: true,
    steps: [
      { req: exec("guest-file-open", '{"path":"@DIR@/buffered","mode":"w"}'), capture: "h" },
      { req: exec("guest-file-write", '{"handle":@h@,"buf-b64":"aGVsbG8="}') },
      fileText("@DIR@/buffered"),
      {
        host: async (ctx) => {
          await ctx.agent.signalWhenIdle("SIGTERM");
          const st = await withTimeout(ctx.agent.exited, 10_000, "exit after SIGTERM");
          return `exited with status ${st.code}`;
        },
      },
      fileText("@DIR@/buffered"),
    ],
  },
]);

// ---------------------------------------------------------------------------------------------
// Command line outcomes that need no socket

/**
 * Start-up failure exit status: 7.2 exits 0 after `error initializing guest agent`, 9.1+
 * exits 1 (§5.1, §9). Normalization: qemu-ga's 0 counts as 1.
 */
realTest("a missing statedir fails start-up (exit 1 newest, 0 in 7.2)", NEED_QGA, async () => {
  const codes = new Map<Impl, number>();
  for (const impl of sideBySideImpls()) {
    const dir = await Deno.makeTempDir({ prefix: `denoga-it-${impl}-nostate-` });
    try {
      const r = await runAgentOnce(impl, [
        "-m",
        "unix-listen",
        "-p",
        `${dir}/qga.sock`,
        "-t",
        `${dir}/missing`,
        "-l",
        `${dir}/agent.log`,
      ]);
      const log = await Deno.readTextFile(`${dir}/agent.log`).catch(() => "");
      if (!log.includes("failed to load persistent state")) {
        throw new Error(`${impl}: log lacks 'failed to load persistent state':\n${log}`);
      }
      codes.set(impl, impl === "qemu-ga" && r.code === 0 ? 1 : r.code);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  for (const [impl, code] of codes) {
    if (code !== 1) throw new Error(`${impl} exit status ${code}, want 1 (normalized)`);
  }
});

realTest("-V prints 'QEMU Guest Agent <version>' and exits 0", NEED_QGA, async () => {
  const outs = new Map<Impl, string>();
  for (const impl of sideBySideImpls()) {
    const r = await runAgentOnce(impl, ["-V"]);
    if (r.code !== 0) throw new Error(`${impl} -V exited ${r.code}: ${r.stderr}`);
    outs.set(
      impl,
      r.stdout.replace(/^(QEMU Guest Agent )\d+\.\d+\.\d+\n$/, `$1${VERSION_PLACEHOLDER}\n`),
    );
  }
  for (const [impl, out] of outs) {
    if (out !== `QEMU Guest Agent ${VERSION_PLACEHOLDER}\n`) {
      throw new Error(`${impl} -V printed ${JSON.stringify(out)}`);
    }
  }
});
