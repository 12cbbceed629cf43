/** lib/client's pure parts: exact big integers, and the tables of the informational commands. */

import { assertEquals } from "../assert.ts";
import { parseJson, stringifyJson } from "../../lib/client/connection.ts";
import {
  fsinfoTable,
  ifconfigTable,
  infoTable,
  keyValueTable,
  table,
} from "../../lib/client/tables.ts";
import { inChunks } from "../../lib/client/transfer.ts";

Deno.test("client JSON keeps integers beyond 2^53 digit for digit", () => {
  const v = parseJson('{"return": 1796416568597029123, "small": 3}');
  assertEquals(v, { return: 1796416568597029123n, small: 3 });
  assertEquals(stringifyJson(v), '{"return":1796416568597029123,"small":3}');
});

Deno.test("client tables: columns are aligned, the last one is not padded", () => {
  assertEquals(table([["A", "BB"], ["ccc", "d"]]), "A    BB\nccc  d\n");
});

Deno.test("client tables: info, ifconfig, fsinfo, osinfo", () => {
  assertEquals(
    infoTable({
      version: "10.2.50",
      supported_commands: [
        { name: "guest-sync", enabled: true, "success-response": true },
        { name: "guest-exec", enabled: false, "success-response": true },
      ],
    }),
    "version: 10.2.50\n" +
      "COMMAND     ENABLED  SUCCESS-RESPONSE\n" +
      "guest-exec  no       yes\n" +
      "guest-sync  yes      yes\n",
  );
  assertEquals(
    ifconfigTable([
      {
        name: "eth0",
        "hardware-address": "02:fc:00:00:00:01",
        "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "192.0.2.2", prefix: 24 }],
      },
      { name: "dummy0" },
    ]),
    "INTERFACE  HARDWARE-ADDRESS   TYPE  ADDRESS\n" +
      "eth0       02:fc:00:00:00:01  ipv4  192.0.2.2/24\n" +
      "dummy0     -                  -     -\n",
  );
  assertEquals(
    fsinfoTable([{
      name: "vda1",
      mountpoint: "/",
      type: "ext4",
      "used-bytes": 1536,
      "total-bytes": 3 * 1024 ** 3,
      disk: [{ dev: "/dev/vda" }],
    }, { name: "tmpfs", mountpoint: "/run", type: "tmpfs", disk: [] }]),
    "MOUNTPOINT  TYPE   DEVICE  USED     TOTAL    DISKS\n" +
      "/           ext4   vda1    1.5 KiB  3.0 GiB  /dev/vda\n" +
      "/run        tmpfs  tmpfs   -        -        -\n",
  );
  assertEquals(
    keyValueTable({ id: "debian", "version-id": "12" }),
    "id:          debian\nversion-id:  12\n",
  );
});

Deno.test("client transfer: inChunks regroups a stream into 4 MiB pieces", async () => {
  const parts = [new Uint8Array(3 * 1024 * 1024), new Uint8Array(2 * 1024 * 1024).fill(7)];
  const stream = ReadableStream.from(parts);
  const sizes: number[] = [];
  let last = 0;
  for await (const c of inChunks(stream)) {
    sizes.push(c.length);
    last = c[c.length - 1];
  }
  assertEquals(sizes, [4 * 1024 * 1024, 1024 * 1024]);
  assertEquals(last, 7);
});
