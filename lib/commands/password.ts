/**
 * guest-set-user-password (§3.12, newest qga/commands-posix.c): base64 checked with qemu-ga's
 * validator, then `chpasswd` (`-e` for a crypted password, found in PATH like execvp finds it)
 * fed `user:password\n` on stdin through the generic runner, whose failure text is
 * `child process has failed to set user password: <output>`.
 *
 * @module
 */

import { decodeBase64 } from "../base64.ts";
import { t } from "../dispatch/schema.ts";
import { audited } from "../audit.ts";
import { defineCommand } from "../dispatch/table.ts";
import { genericError } from "../errors.ts";
import { encodeModUtf8 } from "../protocol/utf8.ts";

const NEWLINE = 0x0a;

/** Sets a user's password with chpasswd; the password is base64, plain or already crypted. */
export const guestSetUserPassword = defineCommand({
  name: "guest-set-user-password",
  summary: "Set a user's password (base64, plain or crypted) with chpasswd",
  args: [
    { name: "username", type: t.str },
    { name: "password", type: t.str },
    { name: "crypted", type: t.bool },
  ],
  run: ({ username, password, crypted }, agent) =>
    audited(agent, "guest-set-user-password", { user: username, crypted }, async () => {
      agent.policy.checkUser(username);
      const decoded = decodeBase64(password);
      // qemu-ga holds the password as a C string: it ends at the first NUL.
      const nul = decoded.indexOf(0);
      const raw = nul < 0 ? decoded : decoded.subarray(0, nul);
      if (raw.includes(NEWLINE)) throw genericError("forbidden characters in raw password");
      if (username.includes("\n") || username.includes(":")) {
        throw genericError("forbidden characters in username");
      }
      const user = encodeModUtf8(username);
      const input = new Uint8Array(user.length + raw.length + 2);
      input.set(user);
      input[user.length] = 0x3a; // ':'
      input.set(raw, user.length + 1);
      input[input.length - 1] = NEWLINE;
      await agent.platform.run(
        crypted ? ["chpasswd", "-e"] : ["chpasswd"],
        "set user password",
        input,
      );
      return undefined;
    }),
});

/** The family, for the command table. */
export const passwordCommands = [guestSetUserPassword];
