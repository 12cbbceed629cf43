/**
 * denoga's argument policy (opt-in, beyond qemu-ga's RPC allow/block lists): which programs
 * guest-exec may run (`allow-exec`), where guest-file-open may open (`allow-file-path`) and whose
 * password and ssh keys the host may touch (`deny-user`). Every check runs before the command's
 * first side effect; a refusal is a GenericError naming the rule. File system look-ups go
 * through the `os` facet, whose calls run off the event loop, so a dead NFS mount holds only the
 * request that reached for it.
 *
 * @module
 */

import { genericError } from "./errors.ts";
import type { OsFiles } from "./platform/files.ts";
import { chooseSearchPath, execCandidates } from "./system/exec_search.ts";

/** The rules; an absent or empty list leaves that check off. */
export interface PolicyRules {
  /** Programs (or directories, written with a trailing `/`) guest-exec may run. */
  readonly allowExec?: readonly string[];
  /** Directory prefixes guest-file-open may open files under. */
  readonly allowFilePath?: readonly string[];
  /** Users guest-set-user-password and guest-ssh-*-authorized-keys refuse. */
  readonly denyUser?: readonly string[];
}

/**
 * `path` with `.`, `..` and repeated slashes folded away lexically, relative paths taken from
 * `cwd`; `..` at the root stays at the root, as the kernel treats it.
 *
 * @example
 * ```ts
 * normalizePath("/srv/a/../b//c/."); // "/srv/b/c"
 * ```
 */
export function normalizePath(path: string, cwd = "/"): string {
  const parts: string[] = [];
  for (const p of (path.startsWith("/") ? path : `${cwd}/${path}`).split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return `/${parts.join("/")}`;
}

/**
 * True when the canonical `path` is `prefix` itself or lies beneath it; `prefix` is canonical
 * too (a trailing slash is ignored, `/` holds everything).
 *
 * @example
 * ```ts
 * isUnder("/srv/data/x", "/srv/data"); // true
 * isUnder("/srv/database", "/srv/data"); // false
 * ```
 */
export function isUnder(path: string, prefix: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  if (p === "/") return true;
  return path === p || path.startsWith(`${p}/`);
}

/**
 * True when the canonical program path matches an `allow-exec` entry: an entry ending in `/` is
 * a directory holding allowed programs at any depth, any other entry is one program.
 */
export function execAllowed(program: string, entries: readonly string[]): boolean {
  return entries.some((e) => e.endsWith("/") ? isUnder(program, e) : program === e);
}

/** The path with symlinks resolved, or its lexical form when it does not exist (yet). */
async function canonical(os: OsFiles, path: string): Promise<string> {
  try {
    return await os.realPath(path);
  } catch {
    return normalizePath(path);
  }
}

/** The rules of one agent run. */
export class Policy {
  readonly #rules: PolicyRules;
  readonly #os: OsFiles;
  readonly #cwd: () => string;

  constructor(rules: PolicyRules, os: OsFiles, cwd: () => string = () => Deno.cwd()) {
    this.#rules = rules;
    this.#os = os;
    this.#cwd = cwd;
  }

  /** True when no rule is set (replies are then exactly qemu-ga's). */
  get empty(): boolean {
    const r = this.#rules;
    return !r.allowExec?.length && !r.allowFilePath?.length && !r.denyUser?.length;
  }

  /**
   * guest-exec: finds the program as the spawn will (GLib's PATH search over the supplied or the
   * agent's PATH; the first candidate that is an executable regular file), resolves its
   * symlinks and matches the result against `allow-exec`, whose entries are resolved the same
   * way. Returns the resolved program, or undefined when the rule is off.
   */
  async checkExec(path: string, env: readonly string[] | undefined): Promise<string | undefined> {
    const allow = this.#rules.allowExec;
    if (!allow?.length) return undefined;
    const searchPath = chooseSearchPath(env, Deno.env.get("PATH"));
    let found: string | undefined;
    for (const candidate of execCandidates(path, searchPath)) {
      const file = normalizePath(candidate, this.#cwd());
      const st = await this.#os.stat(file).catch(() => undefined);
      if (st?.isFile && (st.mode & 0o111) !== 0) {
        found = await canonical(this.#os, file);
        break;
      }
    }
    const entries = await Promise.all(
      allow.map(async (e) => {
        const c = await canonical(this.#os, e);
        return e.endsWith("/") && !c.endsWith("/") ? `${c}/` : c;
      }),
    );
    if (found === undefined || !execAllowed(found, entries)) {
      const shown = found === undefined ? "" : ` (resolved to '${found}')`;
      throw genericError(`program '${path}'${shown} is not allowed by allow-exec`);
    }
    return found;
  }

  /**
   * guest-file-open: the file's directory is resolved with realpath (the file itself may not
   * exist yet for the creating modes), the last component appended and, when that is a symlink,
   * followed too; the result must lie under an `allow-file-path` prefix (resolved the same
   * way). A symlink whose target does not exist is refused: opening it could create a file
   * anywhere. Returns the resolved path, or undefined when the rule is off.
   */
  async checkFileOpen(path: string): Promise<string | undefined> {
    const allow = this.#rules.allowFilePath;
    if (!allow?.length) return undefined;
    const refuse = (resolved?: string) => {
      const shown = resolved === undefined ? "" : ` (resolved to '${resolved}')`;
      return genericError(`path '${path}'${shown} is not allowed by allow-file-path`);
    };
    const abs = path.startsWith("/") ? path : `${this.#cwd()}/${path}`;
    const slash = abs.lastIndexOf("/");
    const base = abs.slice(slash + 1);
    let resolved: string;
    try {
      if (base === "" || base === "." || base === "..") {
        resolved = await this.#os.realPath(abs);
      } else {
        const dir = await this.#os.realPath(abs.slice(0, slash) || "/");
        const joined = dir === "/" ? `/${base}` : `${dir}/${base}`;
        const link = await this.#os.lstat(joined).then((st) => st.isSymlink, () => false);
        resolved = link ? await this.#os.realPath(joined) : joined;
      }
    } catch {
      // An unresolvable directory or a dangling symlink: nothing to match safely.
      throw refuse();
    }
    const prefixes = await Promise.all(allow.map((p) => canonical(this.#os, p)));
    if (!prefixes.some((p) => isUnder(resolved, p))) throw refuse(resolved);
    return resolved;
  }

  /** guest-set-user-password, guest-ssh-*-authorized-keys: refuses a `deny-user` name. */
  checkUser(username: string): void {
    if (this.#rules.denyUser?.includes(username)) {
      throw genericError(`user '${username}' is denied by deny-user`);
    }
  }
}
