// Kernel-private state: the paths no tool may read, write, list, replace or
// link into, whatever a manifest grants. Grants are not refused at spawn
// (`file_write: /data/*` is a valid manifest); the private areas are carved
// out of every grant, on every call, before the capability check.
//
//   - everything under the data directory except <dataDir>/files and beneath
//     it (the audit log, approvals, logs, agent state, and any store added
//     later: private by default). The data directory itself may be listed,
//     and shows only `files`.
//   - <configDir>/secrets and beneath it
//   - every key file kernel.yaml names (absolute)
//   - every kernel log file (absolute)
//
// Paths compare lexically on `/` boundaries (`/data/filesx` is not
// `/data/files`), on paths already normalised by the caller. That is sound
// because the file tools open with no symlink anywhere in the path
// (kernel/sys/openat2.ts): the path a tool opens is the path checked here.
// The directories are therefore also resolved with realpath when they exist
// (a --data given through a symlink), and both spellings are private.
//
// Pure after construction: reason() and hides() look at O(areas) strings and
// touch no file system.
import { realpathSync } from "node:fs";
import { resolve } from "node:path";

export interface PrivateAreasOptions {
  dataDir: string;
  configDir: string;
  /** files kernel.yaml names as key files, absolute */
  keyFiles?: string[];
  /** kernel log files, absolute */
  logFiles?: string[];
}

/** the path itself and, when it exists and differs, its realpath */
function spellings(p: string): string[] {
  const lexical = resolve(p);
  let real = lexical;
  try {
    real = realpathSync(lexical);
  } catch {
    // not there (yet): the lexical path is all there is
  }
  return real === lexical ? [lexical] : [real, lexical];
}

/** is p the directory dir or beneath it (on a `/` boundary)? */
function within(p: string, dir: string): boolean {
  if (dir === "/") return true;
  return p === dir || (p.length > dir.length && p.charCodeAt(dir.length) === 47 /* / */ && p.startsWith(dir));
}

function join(dir: string, name: string): string {
  return dir === "/" ? "/" + name : `${dir}/${name}`;
}

export class PrivateAreas {
  /** the agents' own area on the data disk: <dataDir>/files */
  readonly filesDir: string;
  /** [data directory, its files directory], every spelling */
  private readonly data: { dir: string; files: string }[];
  private readonly secrets: string[];
  private readonly exact: Map<string, string>;

  constructor(opts: PrivateAreasOptions) {
    const dataDirs = spellings(opts.dataDir);
    this.data = dataDirs.map((dir) => ({ dir, files: join(dir, "files") }));
    this.filesDir = this.data[0]!.files;
    this.secrets = spellings(opts.configDir).map((d) => join(d, "secrets"));
    this.exact = new Map();
    for (const f of opts.keyFiles ?? [])
      for (const s of spellings(f)) this.exact.set(s, "a key file named in kernel.yaml");
    for (const f of opts.logFiles ?? [])
      for (const s of spellings(f)) if (!this.exact.has(s)) this.exact.set(s, "the kernel's log file");
  }

  /**
   * null when `path` (absolute, already normalised) may be touched by a tool
   * at all; otherwise a reason a person can act on
   */
  reason(path: string): string | null {
    for (const { dir, files } of this.data) {
      if (path !== dir && within(path, dir) && !within(path, files)) {
        return `${path} is kernel-private state (the audit log, approvals, logs and every store under the data directory other than ${this.filesDir}); agents' files go under ${this.filesDir}`;
      }
    }
    for (const s of this.secrets) {
      if (within(path, s)) return `${path} is kernel-private state (the secrets of the config directory, ${s})`;
    }
    const what = this.exact.get(path);
    if (what !== undefined) return `${path} is kernel-private state (${what})`;
    return null;
  }

  /**
   * null when nothing kernel-private, and not the agents' area itself, lies
   * at or beneath `path` (a directory a tool would move or delete whole);
   * otherwise why (moving the config directory would carry secrets/ out)
   */
  encloses(path: string): string | null {
    const candidates: string[] = [];
    for (const d of this.data) candidates.push(d.dir, d.files);
    candidates.push(...this.secrets, ...this.exact.keys());
    for (const c of candidates)
      if (within(c, path))
        return this.data.some((d) => d.files === c)
          ? `${path} holds the agents' own area ${c}, which the kernel keeps`
          : `${path} holds kernel-private state (${c})`;
    return null;
  }

  /**
   * true when a directory listing of `dir` must not show entry `name` (it is
   * private, or leads only into private state). Every area is a whole tree
   * or a single file, and every directory that holds one also holds
   * something public (the data directory holds `files`), so an entry is
   * hidden exactly when it is private itself.
   */
  hides(dir: string, name: string): boolean {
    if (name === "" || name === "." || name === ".." || name.includes("/")) return true;
    return this.reason(join(dir, name)) !== null;
  }
}
