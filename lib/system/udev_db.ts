/**
 * A udev database entry, `/run/udev/data/b<major>:<minor>` for a block device, read the way
 * systemd's sd-device (libudev) reads it. Each line is `<letter>:<value>`; `E:KEY=VALUE` lines are
 * the device's properties (`E:ID_SERIAL=QEMU_HARDDISK_QM00001`, `E:DM_NAME=vg-root`); a line
 * counts only once its newline is seen, malformed lines and `E:` lines without `=` are
 * ignored.
 *
 * qemu-ga asks libudev for `ID_SERIAL` (a disk address's `serial`) and `DM_NAME` (a disk's
 * `alias`); without udev running there is no database and neither appears.
 *
 * @module
 */

const decoder = new TextDecoder();

/** The `E:` properties of a database entry (a later duplicate wins). */
export function parseUdevDb(data: Uint8Array): Map<string, string> {
  const props = new Map<string, string>();
  const text = decoder.decode(data);
  // sd-device's state machine, quirks included: a key letter followed by anything but `:` makes
  // the rest up to the next newline *after* that character invalid.
  let state: "preKey" | "key" | "invalid" | "value" = "preKey";
  let key = "";
  let valueStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (state === "preKey") {
      if (c !== "\n" && c !== "\r") {
        key = c;
        state = "key";
      }
    } else if (state === "key") {
      if (c === ":") {
        valueStart = i + 1;
        state = "value";
      } else {
        state = "invalid";
      }
    } else if (state === "invalid") {
      if (c === "\n") state = "preKey";
    } else if (c === "\n") {
      if (key === "E") addProperty(props, text.slice(valueStart, i));
      state = "preKey";
    }
  }
  return props;
}

function addProperty(props: Map<string, string>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq !== -1) props.set(assignment.slice(0, eq), assignment.slice(eq + 1));
}

/** The database file of a device node: `b` (block) or `c` (character) and its numbers. */
export function udevDbPath(kind: "b" | "c", major: number, minor: number): string {
  return `/run/udev/data/${kind}${major}:${minor}`;
}
