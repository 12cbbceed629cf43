/** lib/system/inet.ts: glibc inet_ntop's IPv6 text (cases checked against glibc). */

import { assertEquals } from "../assert.ts";
import { formatIpv6, parseIpv4, parseIpv6 } from "../../lib/system/inet.ts";

const GLIBC: [string, string][] = [
  ["::2", "::2"],
  ["::102:304", "::1.2.3.4"],
  ["::ffff:102:304", "::ffff:1.2.3.4"],
  ["::ffff:0:102:304", "::ffff:0:102:304"],
  ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
  ["1:0:1:0:0:1:0:0", "1:0:1::1:0:0"],
  ["0:0:1::", "0:0:1::"],
  ["::1:0:0:0:0:0", "0:0:1::"],
  ["fe80::", "fe80::"],
  ["::", "::"],
  ["1::", "1::"],
  ["0:1:0:0:0:0:0:0", "0:1::"],
  ["::0:ffff:0:0", "::ffff:0.0.0.0"],
  ["0:0:0:0:0:1:0:0", "::1:0:0"],
  ["1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"],
  ["0:0:0:0:0:0:ffff:102", "::255.255.1.2"],
  ["::1:2", "::0.1.0.2"],
  ["::1", "::1"],
  ["FE80::EC82:96FF:FE25:E399", "fe80::ec82:96ff:fe25:e399"],
  ["2001:db8::1.2.3.4", "2001:db8::102:304"],
];

Deno.test("inet: IPv6 text as glibc's inet_ntop writes it", () => {
  for (const [input, want] of GLIBC) {
    const bytes = parseIpv6(input);
    assertEquals(bytes && formatIpv6(bytes), want, input);
  }
});

Deno.test("inet: malformed IPv6 and IPv4 text is refused", () => {
  for (const bad of ["", ":", "1:2", "1::2::3", "12345::", "g::", "1:2:3:4:5:6:7:8:9", "::1.2.3"]) {
    assertEquals(parseIpv6(bad), undefined, bad);
  }
  for (const bad of ["", "1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5"]) {
    assertEquals(parseIpv4(bad), undefined, bad);
  }
});
