/** The README's command list is the command table: same names, order and summaries. */

import { assertEquals } from "../assert.ts";
import { COMMANDS } from "../../lib/commands/mod.ts";

Deno.test("README command table matches the command table", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const rows = readme.split("\n")
    .map((l) => l.split("|").map((cell) => cell.trim()))
    .filter((cells) => cells.length === 4 && /^`guest-[a-z-]+`$/.test(cells[1]))
    .map((cells) => [cells[1].slice(1, -1), cells[2]]);
  assertEquals(rows, COMMANDS.map((c) => [c.name, c.summary]));
});

Deno.test("README opens with the start and test commands", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const block = readme.split("```sh\n")[1].split("```")[0].split("\n").filter((l) => l);
  assertEquals(block.length, 2);
  assertEquals(block[0].startsWith("npx -y deno@2.9.6 task start"), true);
  assertEquals(block[1].startsWith("npx -y deno@2.9.6 task test"), true);
});
