/**
 * The blocking operations, one line each. Adding one: write `ffi/ops/<name>.ts` exporting a
 * `BlockingOp` (op.ts) under the same name, and add its line here; both executors, the worker
 * module and `runBlocking`'s types pick it up from this list.
 *
 * @module
 */

export { noop } from "./noop.ts";
export { open } from "./open.ts";
export { close } from "./close.ts";
export { read } from "./read.ts";
export { write } from "./write.ts";
export { lseek } from "./lseek.ts";
export { fchmod } from "./fchmod.ts";
export { ftruncate } from "./ftruncate.ts";
export { fsync } from "./fsync.ts";
export { freeze } from "./freeze.ts";
export { thaw } from "./thaw.ts";
export { statfs } from "./statfs.ts";
export { fitrim } from "./fitrim.ts";
export { settimeofday } from "./settimeofday.ts";
export { chain } from "./chain.ts";
export { nvmeSmart } from "./nvme_smart.ts";
export { netlinkDump } from "./netlink_dump.ts";
