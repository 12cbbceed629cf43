/**
 * Replies of tens of MiB: guest-file-read of 24 MiB or more puts its base64 into the reply as
 * bytes and builds the reply line around them in their own buffer, or copies them when the id
 * is longer than the room kept around them. Both must give exactly the line the text path gives
 * for a small read (whose bytes side_by_side_test.ts compares with qemu-ga's), with the count,
 * data and id of the big read.
 *
 * @module
 */

import { assertEquals, assertOk } from "../assert.ts";
import { RawClient, startAgent } from "./harness.ts";

const SMALL = 100_000;
const BIG = 25 << 20;
/** Longer than VERBATIM_ROOM (lib/protocol/value.ts), so the line is copied. */
const LONG_ID = "i".repeat(3000);

/** A scrambled 64 KiB pattern, repeated, each copy with its own first byte. */
function content(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < 1 << 16; i++) out[i] = (i * 7919 + (i >> 8)) & 0xff;
  for (let o = 1 << 16; o < size; o += 1 << 16) {
    out.copyWithin(o, 0, 1 << 16);
    out[o] = o >> 16;
  }
  return out;
}

Deno.test("big guest-file-read replies: built in place or copied, the text path's line", async () => {
  const data = content(SMALL + 2 * BIG);
  const agent = await startAgent({
    impl: "denoga",
    setup: (dir) => Deno.writeFile(`${dir}/big.bin`, data),
  });
  try {
    const c = await RawClient.connect(agent.socketPath);
    try {
      const latin1 = new TextDecoder("latin1");
      const ask = async (body: string) => {
        await c.send(body);
        return latin1.decode(await c.recvLine(60_000));
      };
      const open = await ask(
        `{"execute":"guest-file-open","arguments":{"path":"${agent.dir}/big.bin"}}`,
      );
      const handle = open.match(/^\{"return": (\d+)\}$/)?.[1];
      assertOk(handle !== undefined, open);
      const read = (count: number, id: string) =>
        ask(
          `{"execute":"guest-file-read","arguments":{"handle":${handle},"count":${count}},` +
            `"id":"${id}"}`,
        );
      const small = await read(SMALL, "short");
      const smallB64 = data.subarray(0, SMALL).toBase64();
      assertOk(small.includes(`"count": ${SMALL}`) && small.includes(smallB64), small);
      // The big reads' expected lines, from the small read's.
      const expected = (at: number, id: string) =>
        small.replace(`"count": ${SMALL}`, `"count": ${BIG}`)
          .replace(smallB64, data.subarray(at, at + BIG).toBase64())
          .replace('"id": "short"', `"id": "${id}"`);
      const inPlace = await read(BIG, "short");
      assertEquals(inPlace.length, expected(SMALL, "short").length);
      assertOk(inPlace === expected(SMALL, "short"), "the line built in place differs");
      const copied = await read(BIG, LONG_ID);
      assertOk(copied === expected(SMALL + BIG, LONG_ID), "the copied line differs");
      // The agent carries on.
      assertEquals(await ask('{"execute":"guest-ping"}'), '{"return": {}}');
    } finally {
      c.close();
    }
  } finally {
    await agent.dispose();
  }
});
