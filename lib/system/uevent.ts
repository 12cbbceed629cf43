/**
 * A sysfs `uevent` file (`MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n`) read the way
 * systemd's sd-device (libudev) reads it: `KEY=VALUE` lines, a line only counts once its newline
 * is seen, a line without `=` is ignored, and an empty value is kept.
 *
 * qemu-ga takes a disk's device node from here: libudev's `udev_device_get_devnode` is `DEVNAME`
 * with `/dev/` in front when it is relative.
 *
 * @module
 */

const decoder = new TextDecoder();

/** The properties of a uevent file in file order (a later duplicate wins). */
export function parseUevent(data: Uint8Array): Map<string, string> {
  const props = new Map<string, string>();
  const text = decoder.decode(data);
  let start = 0;
  for (;;) {
    const nl = text.slice(start).search(/[\n\r]/);
    if (nl === -1) break; // an unterminated last line is never handled
    const line = text.slice(start, start + nl);
    start += nl + 1;
    const eq = line.indexOf("=");
    if (line === "" || eq === -1) continue;
    props.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return props;
}

/** libudev's device node: `DEVNAME`, under `/dev/` unless absolute; undefined without one. */
export function devnodeOf(uevent: ReadonlyMap<string, string>): string | undefined {
  const name = uevent.get("DEVNAME");
  if (name === undefined) return undefined;
  return name.startsWith("/") ? name : `/dev/${name}`;
}
