/**
 * What `MemoryDenyWriteExecute=` (README, "Deploying into a guest image") does to the agent,
 * reproduced without systemd: prctl(PR_SET_MDWE) before exec is the same refusal of executable
 * memory. V8 then needs `--jitless`; the agent's syscall trampoline is refused, blocking calls
 * fall back to the worker pool, the log says so once (a warning: shown with -v), and file
 * requests still work. Deno itself prints "Failed to compile FFI turbocall" for each FFI symbol
 * on stderr: its fast FFI path needs executable memory too.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { mdweUnsupported } from "../fixtures/emulation.ts";
import { RawClient, realTest, type Requirement, startAgent } from "./harness.ts";

/** Sets PR_SET_MDWE (65) with PR_MDWE_REFUSE_EXEC_GAIN (1), then execs deno with --jitless. */
const MDWE_EXEC = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed: errno %d" % ctypes.get_errno())
argv = sys.argv[1:]
argv.insert(argv.index("run") + 1, "--v8-flags=--jitless")
os.execv(argv[0], argv)
`;

function needMdwe(): Requirement[] {
  let python = false;
  try {
    python = new Deno.Command("python3", { args: ["-c", ""] }).outputSync().success;
  } catch {
    // absent
  }
  const why = mdweUnsupported();
  return [
    { what: "python3 (to set PR_SET_MDWE before exec)", present: python },
    { what: why ?? "PR_SET_MDWE", present: why === undefined },
  ];
}

realTest("MDWE: trampoline refused → worker pool, said once in the log", needMdwe(), async () => {
  const agent = await startAgent({
    impl: "denoga",
    wrap: ["python3", "-c", MDWE_EXEC],
    // Warnings, like qemu-ga's, are logged with -v only.
    args: ["-v"],
  });
  try {
    const c = await RawClient.connect(agent.socketPath);
    try {
      const file = `${agent.dir}/mdwe.txt`;
      for (let i = 0; i < 3; i++) {
        const open = await c.request(
          JSON.stringify({
            execute: "guest-file-open",
            arguments: { path: file, mode: "w+" },
          }),
        ) as { return: number };
        const h = open.return;
        assertEquals(typeof h, "number", JSON.stringify(open));
        await c.request(JSON.stringify({
          execute: "guest-file-write",
          arguments: { handle: h, "buf-b64": "aGVsbG8=" },
        }));
        await c.request(JSON.stringify({
          execute: "guest-file-seek",
          arguments: { handle: h, offset: 0, whence: "set" },
        }));
        const read = await c.request(
          JSON.stringify({ execute: "guest-file-read", arguments: { handle: h } }),
        );
        assertEquals(
          JSON.stringify(read),
          JSON.stringify({ return: { count: 5, "buf-b64": "aGVsbG8=", eof: true } }),
        );
        await c.request(JSON.stringify({ execute: "guest-file-close", arguments: { handle: h } }));
      }
    } finally {
      c.close();
    }
    const log = await Deno.readTextFile(agent.logPath);
    const notes = log.split("\n").filter((l) =>
      l.includes("blocking calls run on the worker pool")
    );
    assertEquals(notes.length, 1, `log:\n${log}\noutput:\n${agent.output()}`);
    assertOk(notes[0].includes("mprotect(PROT_READ|PROT_EXEC)"), notes[0]);
  } finally {
    await agent.stop();
  }
});
