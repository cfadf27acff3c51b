// Capability tokens: the kernel-held table of what each agent may do.
//
// Invariants (each restated beside the check that keeps it):
//  - Tokens never leave the kernel. A token id is a random 128-bit value used
//    in audit records only; no method here takes an id as proof of anything:
//    every check is by agent id, which the kernel itself resolved.
//  - A revoked, expired, or exhausted token never authorises.
//  - max_invocations is counted *before* the tool runs (tool tokens at the
//    tool-level check, resource tokens at the resource check, which the tool
//    makes before touching the resource).
//  - Zero by default: an agent with no token covering a call is refused.
import { randomBytes } from "node:crypto";
import {
  CapabilityParseError,
  callMatches,
  coversCapability,
  formatCapability,
  globRoot,
  impliesTool,
  namespaceMatches,
  NAMESPACE_NAME,
  NAMESPACE_RULE,
  normalizePath,
  parseCallResource,
  parseCapability,
  parseResourceUrl,
  urlMatches,
  type Capability,
  type ResourceKind,
} from "./grammar.ts";

export interface TokenSpec {
  capability: string;
  max_invocations?: number;
  /** ms since the epoch */
  expires_at?: number;
}

export interface Token {
  /** random 128-bit hex (crypto); for audit records, never accepted as proof */
  id: string;
  agentId: string;
  capability: Capability;
  /** canonical text */
  text: string;
  maxInvocations?: number;
  used: number;
  expiresAt?: number;
  revoked: boolean;
}

export type CheckResult = { ok: true; token: Token } | { ok: false; capability: string; reason: string };
export type CoverResult = { ok: true } | { ok: false; capability: string; reason: string };

type Dead = "revoked" | "expired" | "exhausted";

function deadness(t: Token, now: number): Dead | null {
  if (t.revoked) return "revoked";
  if (t.expiresAt !== undefined && now >= t.expiresAt) return "expired";
  if (t.maxInvocations !== undefined && t.used >= t.maxInvocations) return "exhausted";
  return null;
}

function describeDead(t: Token, why: Dead): string {
  switch (why) {
    case "revoked":
      return `the token "${t.text}" was revoked`;
    case "expired":
      return `the token "${t.text}" expired at ${new Date(t.expiresAt!).toISOString()}`;
    case "exhausted":
      return `the token "${t.text}" is exhausted (max_invocations ${t.maxInvocations} used)`;
  }
}

/** among live candidates, spend an unlimited token before a limited one, then the one expiring soonest */
function better(a: Token, b: Token): boolean {
  const al = a.maxInvocations === undefined;
  const bl = b.maxInvocations === undefined;
  if (al !== bl) return al;
  return (a.expiresAt ?? Infinity) < (b.expiresAt ?? Infinity);
}

const matchers = new Map<string, (path: string) => boolean>();
/** a compiled globMatches for a canonical glob (a few hundred distinct globs at most per kernel) */
function pathMatcher(glob: string): (path: string) => boolean {
  let m = matchers.get(glob);
  if (!m) {
    const { root, tree } = globRoot(glob);
    const slash = root + "/";
    m = !tree
      ? (p) => p === root
      : root === "/"
        ? (p) => p.charCodeAt(0) === 47
        : (p) => p === root || p.startsWith(slash);
    if (matchers.size > 10_000) matchers.clear();
    matchers.set(glob, m);
  }
  return m;
}

function printable(s: string): string {
  return s.replace(/[\0-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

const parsed = new Map<string, { capability: Capability; text: string }>();
/**
 * a capability string parsed once (parseCapability is a function of the text
 * alone): the tokens minted from one string, typically every agent spawned
 * from one manifest, share its frozen parse and canonical text
 */
function parsedCapability(text: string): { capability: Capability; text: string } {
  let p = parsed.get(text);
  if (!p) {
    const capability = deepFreeze(parseCapability(text));
    p = { capability, text: formatCapability(capability) };
    if (parsed.size > 10_000) parsed.clear();
    parsed.set(text, p);
  }
  return p;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function validateSpec(spec: TokenSpec): { capability: Capability; text: string } {
  if (spec === null || typeof spec !== "object" || typeof spec.capability !== "string") {
    throw new CapabilityParseError("a token spec needs a capability string", String(spec?.capability));
  }
  const cap = parsedCapability(spec.capability);
  if (spec.max_invocations !== undefined && !(Number.isSafeInteger(spec.max_invocations) && spec.max_invocations > 0)) {
    throw new CapabilityParseError(
      `max_invocations of "${spec.capability}" must be a positive integer`,
      spec.capability,
    );
  }
  if (spec.expires_at !== undefined && !Number.isFinite(spec.expires_at)) {
    throw new CapabilityParseError(
      `expires_at of "${spec.capability}" must be a time in ms since the epoch`,
      spec.capability,
    );
  }
  return cap;
}

export class CapabilityTable {
  private byAgent = new Map<string, Token[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** all or nothing: a bad spec throws CapabilityParseError and grants none */
  grant(agentId: string, specs: TokenSpec[]): Token[] {
    const tokens = this.mint(agentId, specs);
    this.install(agentId, tokens);
    return tokens;
  }

  /**
   * Make tokens without granting them (spawn audits the grant first, then
   * installs). All or nothing: a bad spec throws CapabilityParseError.
   */
  mint(agentId: string, specs: TokenSpec[]): Token[] {
    const caps = specs.map(validateSpec);
    return caps.map(({ capability, text }, i): Token => {
      const spec = specs[i]!;
      const t: Token = {
        id: randomBytes(16).toString("hex"),
        agentId,
        capability,
        text,
        used: 0,
        revoked: false,
      };
      if (spec.max_invocations !== undefined) t.maxInvocations = spec.max_invocations;
      if (spec.expires_at !== undefined) t.expiresAt = spec.expires_at;
      return t;
    });
  }

  /** grant minted tokens: from here on they authorise */
  install(agentId: string, tokens: Token[]): void {
    const list = this.byAgent.get(agentId) ?? [];
    list.push(...tokens);
    this.byAgent.set(agentId, list);
  }

  /**
   * Drop every token of an agent the process table forgot. Invariant: only
   * for an agent whose tokens are all revoked (a stopped agent), so nothing
   * that could still authorise is lost; bounds the table like the process
   * table is bounded.
   */
  forget(agentId: string): void {
    const list = this.byAgent.get(agentId);
    if (list && list.some((t) => !t.revoked)) throw new Error(`forget(${agentId}): the agent still holds live tokens`);
    this.byAgent.delete(agentId);
  }

  /** agents with an entry in the table (for bound tests) */
  size(): number {
    return this.byAgent.size;
  }

  /** how many of the agent's tokens revokeAll would revoke now */
  unrevokedCount(agentId: string): number {
    let n = 0;
    for (const t of this.byAgent.get(agentId) ?? []) if (!t.revoked) n++;
    return n;
  }

  /**
   * Still good to act on after a wait (an approval): not revoked, not
   * expired. It was counted when the call was let in, so exhaustion by that
   * call is not a reason to refuse it.
   */
  stillValid(t: Token): { ok: true } | { ok: false; reason: string } {
    if (t.revoked) return { ok: false, reason: describeDead(t, "revoked") };
    if (t.expiresAt !== undefined && this.now() >= t.expiresAt)
      return { ok: false, reason: describeDead(t, "expired") };
    return { ok: true };
  }

  /** stop revokes: returns how many live tokens were revoked */
  revokeAll(agentId: string): number {
    let n = 0;
    for (const t of this.byAgent.get(agentId) ?? []) {
      if (!t.revoked) {
        t.revoked = true;
        n++;
      }
    }
    return n;
  }

  /** every token the agent was granted, dead ones included */
  tokens(agentId: string): Token[] {
    return [...(this.byAgent.get(agentId) ?? [])];
  }

  /** canonical texts of live tokens */
  capabilityStrings(agentId: string): string[] {
    const now = this.now();
    return (this.byAgent.get(agentId) ?? []).filter((t) => deadness(t, now) === null).map((t) => t.text);
  }

  /** the live tokens that let the agent call the tool: no counting (tool.list) */
  mayCallTool(agentId: string, tool: string): boolean {
    const now = this.now();
    // a revoked, expired, or exhausted token never authorises
    return (this.byAgent.get(agentId) ?? []).some((t) => impliesTool(t.capability, tool) && deadness(t, now) === null);
  }

  /** a live `call:` token covers AGENT.METHOD: no counting (an MCP principal's tools/list) */
  mayCall(agentId: string, agent: string, method: string): boolean {
    const now = this.now();
    return (this.byAgent.get(agentId) ?? []).some(
      (t) => t.capability.kind === "call" && callMatches(t.capability, agent, method) && deadness(t, now) === null,
    );
  }

  /**
   * Tool level. A live `tool: NAME` token is preferred and counted here,
   * before the tool runs. When only a resource capability implies the tool
   * (`file_read: /x/*` implies file_read and file_list), the call is let in
   * uncounted: that token is counted at the resource check, which the tool
   * makes before it touches anything, so one call never spends it twice.
   */
  checkTool(agentId: string, tool: string, opts: { count?: boolean } = {}): CheckResult {
    const now = this.now();
    let bestTool: Token | undefined;
    let bestImplied: Token | undefined;
    let dead: string | undefined;
    for (const t of this.byAgent.get(agentId) ?? []) {
      if (!impliesTool(t.capability, tool)) continue;
      // a revoked, expired, or exhausted token never authorises
      const why = deadness(t, now);
      if (why) {
        dead ??= describeDead(t, why);
        continue;
      }
      if (t.capability.kind === "tool") {
        if (!bestTool || better(t, bestTool)) bestTool = t;
      } else if (!bestImplied || better(t, bestImplied)) {
        bestImplied = t;
      }
    }
    if (bestTool) {
      // counted before the tool runs (a peek, count: false, spends nothing)
      if (opts.count !== false) bestTool.used++;
      return { ok: true, token: bestTool };
    }
    if (bestImplied) return { ok: true, token: bestImplied };
    return {
      ok: false,
      capability: `tool: ${tool}`,
      reason: dead ?? `the agent holds no capability for tool "${tool}"`,
    };
  }

  /**
   * Resource level: is the path, URL, call target ("AGENT.METHOD") or memory
   * namespace covered by a live token of that kind? Counts one invocation on
   * the chosen token when it is. Paths are normalised lexically here; the
   * tools open exactly the normalised path with every symlink refused, so
   * what is checked is what is opened. A call target is exactly AGENT.METHOD
   * (never `*`); a namespace is exactly a name (never `*`, never an agent's
   * own `agent:<id>`, which needs no resource check).
   */
  checkResource(agentId: string, kind: ResourceKind, resource: string): CheckResult {
    const wanted = () => `${kind}: ${printable(String(resource))}`;
    let matches: (c: Capability) => boolean;
    let shown: string;
    let note = "";
    if (kind === "web_fetch") {
      const u = parseResourceUrl(resource);
      if (!u.ok) return { ok: false, capability: wanted(), reason: u.reason };
      matches = (c) => c.kind === "web_fetch" && urlMatches(c.pattern, u.url);
      shown = printable(resource);
      if (u.url.encodedPathTricks)
        note = " (an encoded '/', '\\' or '.' in the path is refused under a path-prefix grant)";
    } else if (kind === "call") {
      const c = parseCallResource(resource);
      if (!c.ok) return { ok: false, capability: wanted(), reason: c.reason };
      matches = (cap) => cap.kind === "call" && callMatches(cap, c.agent, c.method);
      shown = `${c.agent}.${c.method}`;
    } else if (kind === "memory_read" || kind === "memory_write") {
      if (typeof resource !== "string" || !NAMESPACE_NAME.test(resource)) {
        const reason = `"${printable(String(resource))}" is not a namespace name (${NAMESPACE_RULE})`;
        return { ok: false, capability: wanted(), reason };
      }
      matches = (cap) => cap.kind === kind && namespaceMatches(cap.namespace, resource);
      shown = `namespace ${resource}`;
    } else {
      const n = normalizePath(resource);
      if (!n.ok) return { ok: false, capability: wanted(), reason: n.reason };
      const path = n.path;
      matches = (c) => c.kind === kind && pathMatcher(c.glob)(path);
      shown = path;
      if (n.dotdot)
        note = ` ("${printable(resource)}" resolves to ${path}; ".." is resolved, never followed out of a grant)`;
    }
    const now = this.now();
    let best: Token | undefined;
    let dead: string | undefined;
    const tokens = this.byAgent.get(agentId) ?? [];
    for (const t of tokens) {
      if (t.capability.kind !== kind || !matches(t.capability)) continue;
      // a revoked, expired, or exhausted token never authorises
      const why = deadness(t, now);
      if (why) {
        dead ??= describeDead(t, why);
        continue;
      }
      if (!best || better(t, best)) best = t;
    }
    if (best) {
      // counted before the resource is touched (and so before the tool acts)
      best.used++;
      return { ok: true, token: best };
    }
    if (dead) return { ok: false, capability: wanted(), reason: dead };
    const held = tokens.filter((t) => t.capability.kind === kind && deadness(t, now) === null).map((t) => t.text);
    const holds = held.length ? `; the agent holds ${held.slice(0, 5).join(", ")}${held.length > 5 ? ", …" : ""}` : "";
    return { ok: false, capability: wanted(), reason: `no ${kind} capability covers ${shown}${note}${holds}` };
  }

  /**
   * Narrowing for spawn: every child spec must be equal to or narrower than
   * some live parent token, with limits no looser (a limited parent token
   * needs a child max_invocations no larger than what it has left; an
   * expiring one needs a child expires_at no later).
   */
  covers(parentAgentId: string, child: TokenSpec[]): CoverResult {
    const now = this.now();
    const live = (this.byAgent.get(parentAgentId) ?? []).filter((t) => deadness(t, now) === null);
    for (const spec of child) {
      let cap: Capability;
      let text: string;
      try {
        ({ capability: cap, text } = validateSpec(spec));
      } catch (e) {
        return { ok: false, capability: String(spec?.capability), reason: (e as Error).message };
      }
      const wider = live.filter((t) => coversCapability(t.capability, cap));
      if (wider.length === 0) {
        const held = live.map((t) => t.text);
        return {
          ok: false,
          capability: text,
          reason: `the parent holds no live capability covering "${text}"${held.length ? ` (it holds ${held.slice(0, 8).join(", ")}${held.length > 8 ? ", …" : ""})` : ""}`,
        };
      }
      let why = "";
      const ok = wider.some((t) => {
        if (t.maxInvocations !== undefined) {
          const left = t.maxInvocations - t.used;
          if (spec.max_invocations === undefined || spec.max_invocations > left) {
            why ||= `the parent's "${t.text}" has ${left} invocation(s) left; ask for max_invocations of at most ${left}`;
            return false;
          }
        }
        if (t.expiresAt !== undefined && (spec.expires_at === undefined || spec.expires_at > t.expiresAt)) {
          why ||= `the parent's "${t.text}" expires at ${new Date(t.expiresAt).toISOString()}; the child's token may not outlive it`;
          return false;
        }
        return true;
      });
      if (!ok) return { ok: false, capability: text, reason: why };
    }
    return { ok: true };
  }
}
