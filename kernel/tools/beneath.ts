// The file tools' first step: authorize a path, then name the directory to
// open beneath. The resource check (its counting, its audit, the refusal of
// kernel-private state) is the kernel's ctx.authorize; what it returns is
// the token that allowed the call, and that token's grant is the tool's
// authority: the tool opens beneath the grant's root (a `/dir/*` grant) or
// opens exactly the granted file (an exact grant), never anything the grant
// does not cover. The open itself is kernel/sys/openat2.ts's openBeneath.
import { globRoot, normalizePath } from "../caps/index.ts";
import type { ToolContext } from "./tool.ts";

/** a path the agent may touch, and the grant that lets it */
export interface GrantedPath {
  /** the normalised path the agent asked for */
  path: string;
  /** the canonical glob of the token that covered it */
  glob: string;
  /** the directory the glob is rooted at (exact grants: the path itself) */
  root: string;
  /** true for `/dir/*` grants */
  tree: boolean;
}

export function authorizePath(ctx: ToolContext, kind: "file_read" | "file_write", rawPath: string): GrantedPath {
  // the kernel's check comes first, with the path exactly as the agent wrote
  // it: a denial is counted nowhere, audited, and nothing has been touched
  const token = ctx.authorize(kind, rawPath);
  const n = normalizePath(rawPath);
  if (!n.ok) throw new Error(`authorize accepted a path normalizePath refuses: ${n.reason}`); // cannot happen
  const path = n.path;
  // kernel-private state was refused (and audited) by authorize itself
  const cap = token.capability;
  if (cap.kind !== kind || (cap.kind !== "file_read" && cap.kind !== "file_write"))
    throw new Error(`authorize(${kind}) returned a ${cap.kind} token`); // cannot happen
  const { root, tree } = globRoot(cap.glob);
  return { path, glob: cap.glob, root, tree };
}

export function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

export function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** the path below a directory ("" when equal); both normalised, p beneath dir */
export function relativeTo(dir: string, p: string): string {
  if (p === dir) return "";
  return dir === "/" ? p.slice(1) : p.slice(dir.length + 1);
}
