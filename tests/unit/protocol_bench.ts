/**
 * Protocol engine benchmarks: `deno bench tests/unit/protocol_bench.ts`.
 *
 * The large cases model a 4 MiB `guest-file-write` (a ~5.6 MB base64 string in one request)
 * arriving in 64 KiB and 1 MiB reads, and the matching ~5.6 MB `buf-b64` reply being written.
 */
import { JsonMessageParser } from "../../lib/protocol/streamer.ts";
import { toJson } from "../../lib/protocol/writer.ts";
import type { ReplyValue } from "../../lib/protocol/value.ts";

const B64_LEN = 5_592_408; // base64 length of 4 MiB
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const b64 = ALPHABET.repeat(Math.ceil(B64_LEN / 64)).slice(0, B64_LEN - 2) + "==";
const encoder = new TextEncoder();
const bigRequest = encoder.encode(
  `{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"${b64}"}}\n`,
);
// Some JSON encoders escape every "/" (PHP's default): the slow, decoding path.
const escapedRequest = encoder.encode(
  `{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"${
    b64.replaceAll("/", "\\/")
  }"}}\n`,
);
const ping = encoder.encode('{"execute":"guest-ping"}');
const readRequest = encoder.encode(
  '{"execute":"guest-file-read","arguments":{"handle":1000,"count":4096},"id":"abc-123"}\n',
);

let values = 0;
const parser = new JsonMessageParser((ev) => {
  if (ev.kind !== "value") throw new Error(ev.desc);
  values++;
});

function feedIn(bytes: Uint8Array, chunk: number): void {
  for (let k = 0; k < bytes.length; k += chunk) parser.feed(bytes.subarray(k, k + chunk));
}

Deno.bench("feed+parse 5.6 MB guest-file-write, 64 KiB chunks", { group: "big request" }, () => {
  feedIn(bigRequest, 64 * 1024);
});
Deno.bench("feed+parse 5.6 MB guest-file-write, 1 MiB chunks", { group: "big request" }, () => {
  feedIn(bigRequest, 1024 * 1024);
});
Deno.bench("feed+parse 5.6 MB guest-file-write, 4 KiB chunks", { group: "big request" }, () => {
  feedIn(bigRequest, 4096);
});
Deno.bench("feed+parse 5.6 MB guest-file-write with escaped slashes, 64 KiB", {
  group: "big request",
}, () => {
  feedIn(escapedRequest, 64 * 1024);
});

const bigReply: ReplyValue = {
  return: { count: 4194304n, "buf-b64": b64, eof: false },
};
Deno.bench("toJson 5.6 MB guest-file-read reply", { group: "big reply" }, () => {
  toJson(bigReply);
});
Deno.bench("toJson + TextEncoder 5.6 MB reply", { group: "big reply" }, () => {
  encoder.encode(toJson(bigReply) + "\n");
});

Deno.bench("feed+parse guest-ping", { group: "small" }, () => {
  parser.feed(ping);
});
Deno.bench("feed+parse guest-file-read request with id", { group: "small" }, () => {
  parser.feed(readRequest);
});
const smallReply: ReplyValue = {
  return: { count: 16n, "buf-b64": "aGVsbG8gcWdhCmxpbmUyCg==", eof: true },
  id: "abc-123",
};
Deno.bench("toJson small reply", { group: "small" }, () => {
  toJson(smallReply);
});

globalThis.addEventListener("unload", () => {
  if (values === 0) throw new Error("benchmarks parsed nothing");
});
