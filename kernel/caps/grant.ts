// For the file tools: authorize a path through the ToolContext, then find
// the granted root to open beneath. The resource check (and its counting and
// audit) is the kernel's ctx.authorize; this only learns *which* grant
// covered the path, without counting anything:
//   1. from what authorize returned, when the kernel hands back the token or
//      its capability (allowed by the `void` return type of the contract);
//   2. otherwise from services.status(agent).capabilities (live tokens);
//   3. otherwise the path itself is the grant (no parent may be created).
// Every choice is a grant the agent holds live, so opening beneath any of
// them is sound; the broadest is picked so parents can be created as far up
// as the agent may.
import type { ToolContext } from "../tools/tool.ts";
import { capabilityDenied } from "../errors.ts";
import { globMatches, globRoot, normalizePath, parseCapability, type Capability } from "./grammar.ts";

export interface Grant {
  /** the normalised path the agent asked for */
  path: string;
  /** the canonical glob that covered it */
  glob: string;
  /** the directory the glob is rooted at (exact grants: the path itself) */
  root: string;
  /** true for `/dir/*` grants */
  tree: boolean;
}

function capabilityOf(x: unknown): Capability | undefined {
  if (!x || typeof x !== "object") return undefined;
  const o = x as Record<string, unknown>;
  if (typeof o.kind === "string" && ("glob" in o || "tool" in o || "pattern" in o)) return o as Capability;
  if (o.capability && typeof o.capability === "object") return capabilityOf(o.capability);
  if (o.token && typeof o.token === "object") return capabilityOf(o.token);
  return undefined;
}

export function authorizePath(ctx: ToolContext, kind: "file_read" | "file_write", rawPath: string): Grant {
  // the kernel's check comes first, with the path exactly as the agent wrote
  // it: a denial is counted nowhere, audited, and nothing has been touched
  const returned: unknown = ctx.authorize(kind, rawPath);
  const n = normalizePath(rawPath);
  if (!n.ok) throw new Error(`authorize accepted a path normalizePath refuses: ${n.reason}`); // cannot happen
  const path = n.path;
  // the kernel's authorize refuses kernel-private state (and audits it);
  // checked again here so no file tool can reach it through a context that forgot
  const why = ctx.privateAreas.reason(path);
  if (why !== null) throw capabilityDenied(kind, `${kind}: ${path}`, why);

  const fits = (c: Capability | undefined): c is Extract<Capability, { glob: string }> =>
    c !== undefined && c.kind === kind && globMatches(c.glob, path);
  const candidates: string[] = [];
  const direct = capabilityOf(returned);
  if (fits(direct)) candidates.push(direct.glob);
  if (candidates.length === 0) {
    try {
      for (const text of ctx.services.status(ctx.agentId).capabilities) {
        try {
          const c = parseCapability(text);
          if (fits(c)) candidates.push(c.glob);
        } catch {
          // not ours to judge here
        }
      }
    } catch {
      // no status available: fall back to the exact path
    }
  }
  let glob = path;
  let best = Infinity;
  for (const g of candidates) {
    const { root, tree } = globRoot(g);
    const depth = tree ? (root === "/" ? 0 : root.split("/").length) : Infinity - 1;
    if (depth < best) {
      best = depth;
      glob = g;
    }
  }
  const { root, tree } = globRoot(glob);
  return { path, glob, root, tree };
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
