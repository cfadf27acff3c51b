// The capability grammar: parsing and canonical text of the strings a
// manifest lists under `capabilities:`, and the pure matching and narrowing
// rules for paths and URLs. No state here; tokens live in table.ts.
//
//   NAME                      = tool: NAME            (e.g. web_search, echo)
//   tool: NAME
//   file_read: PATH_GLOB      implies tool: file_read and tool: file_list
//   file_write: PATH_GLOB     implies tool: file_write, file_delete, file_move, dir_create
//   web_fetch: URL_PATTERN    implies tool: web_fetch
//   call: AGENT.METHOD        implies tool: agent_call and tool: agent_notify
//   call: AGENT.*
//   memory_read: NAMESPACE    implies tool: memory_search
//   memory_write: NAMESPACE   implies tool: memory_store and tool: memory_delete
//   tool: mcp.SERVER.TOOL     a tool of an external MCP server (kernel/mcp/client.ts)
//   tool: mcp.SERVER.*        every tool of that server, now or later
//
// PATH_GLOB is absolute; `/dir/*` grants /dir and everything beneath it on a
// `/` boundary, anything else grants exactly that path. URL_PATTERN is
// `[http|https://]HOST[:PORT][/PATH_GLOB]` where HOST may start with `*.`
// (any sub-domain, at any depth, not the bare domain). Without a port a
// pattern grants the scheme's default port only (80/443); without a path it
// grants every path on that host. AGENT is a manifest name
// ([a-z0-9][a-z0-9_-]{0,62}) and METHOD a method it serves
// ([a-z][a-z0-9_]{0,62}), or `*` for every method it serves; the resource a
// call is checked against is the text "AGENT.METHOD". NAMESPACE is a named
// memory namespace ([a-z0-9][a-z0-9_.-]{0,62}) or `*` for every named
// namespace (never an agent's own memory, the internal namespace
// `agent:<id>`, which needs only the tool); the resource a memory access is
// checked against is the namespace name.

export type ToolCapability = { kind: "tool"; tool: string };
export type PathCapability = { kind: "file_read" | "file_write"; glob: string };
export type UrlPattern = {
  /** absent: http and https */
  scheme?: "http" | "https";
  /** lower case, no trailing dot, without the `*.` of a wildcard; IPv6 in brackets */
  host: string;
  /** `*.host`: any sub-domain of host (not host itself) */
  wildcard: boolean;
  /** absent: the scheme's default port */
  port?: number;
  /** a PATH_GLOB; absent: every path */
  path?: string;
};
export type WebCapability = { kind: "web_fetch"; pattern: UrlPattern };
/** calling (or notifying) METHOD of the agent named AGENT; method "*": every method it serves */
export type CallCapability = { kind: "call"; agent: string; method: string };
/** reading (memory_search) or writing (memory_store, memory_delete) a named memory namespace; "*": every one */
export type MemoryCapability = { kind: "memory_read" | "memory_write"; namespace: string };
export type Capability = ToolCapability | PathCapability | WebCapability | CallCapability | MemoryCapability;
export type ResourceKind = "file_read" | "file_write" | "web_fetch" | "call" | "memory_read" | "memory_write";

export class CapabilityParseError extends Error {
  constructor(
    message: string,
    readonly text: string,
  ) {
    super(message);
    this.name = "CapabilityParseError";
  }
}

const TOOL_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** the SERVER of `mcp.SERVER.TOOL`: a kernel.yaml mcp.servers name */
export const MCP_SERVER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** the TOOL of `mcp.SERVER.TOOL`: the name the server gives it (MCP's own rule) */
export const MCP_TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** `mcp.SERVER.TOOL` (tool "*": every tool of SERVER) split, or null for any other name */
export function mcpToolName(name: string): { server: string; tool: string } | null {
  if (!name.startsWith("mcp.")) return null;
  const dot = name.indexOf(".", 4);
  if (dot < 0) return null;
  const server = name.slice(4, dot);
  const tool = name.slice(dot + 1);
  if (!MCP_SERVER_NAME.test(server) || (tool !== "*" && !MCP_TOOL_NAME.test(tool))) return null;
  return { server, tool };
}

function validToolName(name: string): boolean {
  return name.startsWith("mcp.") ? mcpToolName(name) !== null : TOOL_NAME.test(name);
}
const KINDS = ["tool", "file_read", "file_write", "web_fetch", "call", "memory_read", "memory_write"] as const;
/** the AGENT of `call: AGENT.METHOD`: a manifest name (kernel/manifest/schema.ts MANIFEST_NAME) */
export const CALL_AGENT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** the METHOD of `call: AGENT.METHOD`, and a key of a manifest's `serves` */
export const CALL_METHOD = /^[a-z][a-z0-9_]{0,62}$/;
/** a named memory namespace (an agent's own, `agent:<id>`, is internal: the colon keeps it out of every grant) */
export const NAMESPACE_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
export const NAMESPACE_RULE =
  "lower-case letters, digits, '.', '-' and '_', starting with a letter or digit, at most 63 characters";
export const MAX_PATH_BYTES = 4096;

/** which tools a resource capability lets an agent call */
export const IMPLIED_TOOLS: Record<ResourceKind, readonly string[]> = {
  file_read: ["file_read", "file_list"],
  file_write: ["file_write", "file_delete", "file_move", "dir_create"],
  web_fetch: ["web_fetch"],
  call: ["agent_call", "agent_notify"],
  memory_read: ["memory_search"],
  memory_write: ["memory_store", "memory_delete"],
};

export function impliesTool(c: Capability, tool: string): boolean {
  // mcp.S.* grants every tool of S (and covers a child's mcp.S.*; mcp.S.T never covers mcp.S.*)
  if (c.kind === "tool") return c.tool === tool || (c.tool.endsWith(".*") && tool.startsWith(c.tool.slice(0, -1)));
  return IMPLIED_TOOLS[c.kind].includes(tool);
}

// ---- parsing -------------------------------------------------------------

export function parseCapability(text: string): Capability {
  if (typeof text !== "string") throw new CapabilityParseError("a capability must be a string", String(text));
  const fail = (msg: string): never => {
    throw new CapabilityParseError(msg, text);
  };
  if (text.includes("\0")) fail("contains a NUL byte");
  const t = text.trim();
  if (t === "")
    fail('empty capability; write a tool name (e.g. "echo") or "KIND: VALUE" (e.g. "file_read: /data/files/*")');
  const colon = t.indexOf(":");
  if (colon < 0) {
    if (!validToolName(t))
      fail(`"${t}" is not a tool name (letters, digits, '_', '-', '.', starting with a letter) nor "KIND: VALUE"`);
    return { kind: "tool", tool: t };
  }
  const kind = t.slice(0, colon).trim();
  const value = t.slice(colon + 1).trim();
  if (!(KINDS as readonly string[]).includes(kind)) {
    fail(`unknown capability kind "${kind}" (expected one of ${KINDS.join(", ")}, or a bare tool name)`);
  }
  if (value === "") fail(`"${kind}:" needs a value, e.g. ${example(kind)}`);
  switch (kind) {
    case "tool":
      if (!validToolName(value))
        fail(
          `"${value}" is not a tool name (letters, digits, '_', '-', '.', starting with a letter; or mcp.SERVER.TOOL, mcp.SERVER.*)`,
        );
      return { kind: "tool", tool: value };
    case "file_read":
    case "file_write":
      return { kind, glob: parsePathGlob(value, kind, fail) };
    case "call":
      return parseCall(value, fail);
    case "memory_read":
    case "memory_write":
      if (value !== "*" && !NAMESPACE_NAME.test(value)) {
        const own = value.startsWith("agent:")
          ? '; an agent\'s own memory needs no grant, only the tool (e.g. "tool: memory_search")'
          : "";
        fail(`${kind} "${value}" is not a namespace name (${NAMESPACE_RULE}) nor "*", e.g. ${example(kind)}${own}`);
      }
      return { kind, namespace: value };
    default:
      return { kind: "web_fetch", pattern: parseUrlPattern(value, fail) };
  }
}

function parseCall(value: string, fail: (m: string) => never): CallCapability {
  const dot = value.indexOf(".");
  if (dot < 0) {
    fail(
      `call "${value}": expected AGENT.METHOD or AGENT.* (e.g. "call: summariser.summarise" or "call: summariser.*")`,
    );
  }
  const agent = value.slice(0, dot);
  const method = value.slice(dot + 1);
  if (!CALL_AGENT.test(agent)) {
    fail(
      `call "${value}": "${agent}" is not an agent name (lower-case letters, digits, '-' and '_', at most 63 characters); expected AGENT.METHOD or AGENT.*`,
    );
  }
  if (method !== "*" && !CALL_METHOD.test(method)) {
    fail(
      `call "${value}": "${method}" is not a method name (lower-case letters, digits and '_', starting with a letter, at most 63 characters) nor "*"; expected AGENT.METHOD or AGENT.*`,
    );
  }
  return { kind: "call", agent, method };
}

/** the AGENT.METHOD a call resource names, or why it names none ("*" is a grant, never a resource) */
export function parseCallResource(
  resource: string,
): { ok: true; agent: string; method: string } | { ok: false; reason: string } {
  if (typeof resource !== "string") return { ok: false, reason: "the call target is not a string" };
  const dot = resource.indexOf(".");
  const agent = dot < 0 ? "" : resource.slice(0, dot);
  const method = dot < 0 ? "" : resource.slice(dot + 1);
  if (!CALL_AGENT.test(agent) || !CALL_METHOD.test(method))
    return { ok: false, reason: `"${printableText(resource)}" is not AGENT.METHOD` };
  return { ok: true, agent, method };
}

/** does a call capability grant calling agent.method? */
export function callMatches(c: CallCapability, agent: string, method: string): boolean {
  return c.agent === agent && (c.method === "*" || c.method === method);
}

/** does a memory capability grant the (named) namespace ns? `*` grants every named namespace */
export function namespaceMatches(grant: string, ns: string): boolean {
  if (!NAMESPACE_NAME.test(ns)) return false;
  return grant === "*" || grant === ns;
}

function printableText(s: string): string {
  return s.replace(/[\0-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function example(kind: string): string {
  return {
    tool: '"tool: file_write"',
    file_read: '"file_read: /data/files/*"',
    file_write: '"file_write: /data/files/out/*"',
    web_fetch: '"web_fetch: https://api.example.com/*"',
    call: '"call: summariser.summarise" or "call: summariser.*"',
    memory_read: '"memory_read: team" or "memory_read: *"',
    memory_write: '"memory_write: team" or "memory_write: *"',
  }[kind]!;
}

/** a path glob of a grant: absolute, no NUL, no `..`, `*` only as a final `/*`; normalised */
function parsePathGlob(value: string, kind: string, fail: (m: string) => never): string {
  if (!value.startsWith("/")) fail(`${kind} path "${value}" must be absolute (start with "/"), e.g. ${example(kind)}`);
  if (Buffer.byteLength(value) > MAX_PATH_BYTES) fail(`${kind} path is longer than ${MAX_PATH_BYTES} bytes`);
  let tree = false;
  let body = value;
  if (body.endsWith("/*")) {
    tree = true;
    body = body.slice(0, -2);
  }
  if (body.includes("*")) {
    fail(
      `${kind} path "${value}": "*" is only allowed as a final "/*" (meaning the directory and everything beneath it)`,
    );
  }
  const parts: string[] = [];
  for (const seg of body.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") fail(`${kind} path "${value}" contains a ".." segment; write the path it means instead`);
    parts.push(seg);
  }
  const root = "/" + parts.join("/");
  if (tree) return root === "/" ? "/*" : root + "/*";
  return root;
}

function parseUrlPattern(value: string, fail: (m: string) => never): UrlPattern {
  if (/\s/.test(value)) fail(`web_fetch pattern "${value}" contains white space`);
  const m = /^(?:([A-Za-z][A-Za-z0-9+.-]*):\/\/)?(\[[0-9A-Fa-f:.]+\]|[^/:?#[\]@]+)(?::([^/]*))?(\/[^?#]*)?$/.exec(
    value,
  );
  if (!m) {
    fail(
      `web_fetch pattern "${value}" is not [http:// or https://]HOST[:PORT][/PATH], e.g. "https://api.example.com/*" or "*.example.org"`,
    );
  }
  const [, schemeRaw, hostRaw, portRaw, pathRaw] = m!;
  let scheme: "http" | "https" | undefined;
  if (schemeRaw !== undefined) {
    const s = schemeRaw.toLowerCase();
    if (s !== "http" && s !== "https")
      fail(`web_fetch pattern "${value}": scheme "${schemeRaw}" is not allowed (only http and https)`);
    scheme = s as "http" | "https";
  }
  let host = hostRaw!.toLowerCase();
  let wildcard = false;
  if (host.startsWith("*.")) {
    wildcard = true;
    host = host.slice(2);
  }
  if (host.includes("*")) fail(`web_fetch pattern "${value}": "*" is only allowed as a leading "*." of the host`);
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.startsWith("[")) {
    if (wildcard) fail(`web_fetch pattern "${value}": an IPv6 address cannot have a "*." wildcard`);
    try {
      host = new URL(`http://${host}/`).hostname;
    } catch {
      fail(`web_fetch pattern "${value}": "${hostRaw}" is not an IPv6 address`);
    }
  } else {
    const labels = host.split(".");
    if (host === "" || labels.some((l) => !/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) {
      fail(
        `web_fetch pattern "${value}": "${hostRaw}" is not a host name (letters, digits, '-', dots; optionally a leading "*.")`,
      );
    }
  }
  let port: number | undefined;
  if (portRaw !== undefined) {
    if (!/^\d{1,5}$/.test(portRaw) || Number(portRaw) < 1 || Number(portRaw) > 65535) {
      fail(`web_fetch pattern "${value}": port "${portRaw}" is not a number from 1 to 65535`);
    }
    port = Number(portRaw);
  }
  let path: string | undefined;
  if (pathRaw !== undefined) path = parsePathGlob(pathRaw, "web_fetch", fail);
  const out: UrlPattern = { host, wildcard };
  if (scheme) out.scheme = scheme;
  if (port !== undefined) out.port = port;
  if (path !== undefined) out.path = path;
  return out;
}

// ---- canonical text ------------------------------------------------------

export function formatCapability(c: Capability): string {
  switch (c.kind) {
    case "tool":
      return `tool: ${c.tool}`;
    case "file_read":
    case "file_write":
      return `${c.kind}: ${c.glob}`;
    case "web_fetch":
      return `web_fetch: ${formatUrlPattern(c.pattern)}`;
    case "call":
      return `call: ${c.agent}.${c.method}`;
    case "memory_read":
    case "memory_write":
      return `${c.kind}: ${c.namespace}`;
  }
}

export function formatUrlPattern(p: UrlPattern): string {
  return `${p.scheme ? p.scheme + "://" : ""}${p.wildcard ? "*." : ""}${p.host}${p.port !== undefined ? ":" + p.port : ""}${p.path ?? ""}`;
}

// ---- paths ---------------------------------------------------------------

export type Normalised = { ok: true; path: string; dotdot: boolean } | { ok: false; reason: string };

/**
 * Lexical normalisation of a resource path: absolute, no NUL, `//` and `.`
 * collapsed, `..` applied lexically (never followed through the file system:
 * the tools open exactly the normalised path and refuse every symlink), and a
 * `..` that would climb above `/` is denied rather than clamped.
 */
export function normalizePath(path: string): Normalised {
  if (typeof path !== "string" || path === "") return { ok: false, reason: "the path is empty" };
  if (path.includes("\0")) return { ok: false, reason: "the path contains a NUL byte" };
  if (!path.startsWith("/"))
    return { ok: false, reason: `the path "${path}" is not absolute (it must start with "/")` };
  if (path.length * 3 > MAX_PATH_BYTES && Buffer.byteLength(path) > MAX_PATH_BYTES)
    return { ok: false, reason: `the path is longer than ${MAX_PATH_BYTES} bytes` };
  // already normal: no empty, "." or ".." segment and no trailing "/"
  if (!/\/(\.{0,2})(\/|$)/.test(path)) return { ok: true, path, dotdot: false };
  const parts: string[] = [];
  let dotdot = false;
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      dotdot = true;
      if (parts.length === 0) return { ok: false, reason: `the path "${path}" climbs above "/" with ".."` };
      parts.pop();
      continue;
    }
    parts.push(seg);
  }
  return { ok: true, path: "/" + parts.join("/"), dotdot };
}

/** the directory a glob is rooted at, and whether it grants the tree beneath it */
export function globRoot(glob: string): { root: string; tree: boolean } {
  if (glob === "/*") return { root: "/", tree: true };
  if (glob.endsWith("/*")) return { root: glob.slice(0, -2), tree: true };
  return { root: glob, tree: false };
}

/** does a (canonical) glob grant a (normalised) path? */
export function globMatches(glob: string, path: string): boolean {
  const { root, tree } = globRoot(glob);
  if (!tree) return path === root;
  if (root === "/") return path.startsWith("/");
  // on a `/` boundary: /data/* grants /data and /data/x, never /data-x
  return path === root || (path.startsWith(root) && path.charCodeAt(root.length) === 47); /* / */
}

/** is every path the child glob grants also granted by the parent glob? */
export function globCovers(parent: string, child: string): boolean {
  const p = globRoot(parent);
  const c = globRoot(child);
  if (!p.tree) return !c.tree && p.root === c.root;
  return globMatches(parent, c.root);
}

// ---- URLs ----------------------------------------------------------------

const DEFAULT_PORT = { http: 80, https: 443 } as const;

export type UrlParts = {
  scheme: "http" | "https";
  host: string;
  port: number;
  path: string;
  encodedPathTricks: boolean;
};

export function parseResourceUrl(url: string): { ok: true; url: UrlParts } | { ok: false; reason: string } {
  if (typeof url !== "string" || url === "") return { ok: false, reason: "the URL is empty" };
  if (url.includes("\0")) return { ok: false, reason: "the URL contains a NUL byte" };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, reason: `"${url}" is not an absolute URL` };
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme !== "http" && scheme !== "https")
    return { ok: false, reason: `scheme "${scheme}" is not allowed (only http and https)` };
  let host = u.hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === "") return { ok: false, reason: `"${url}" has no host` };
  const port = u.port === "" ? DEFAULT_PORT[scheme] : Number(u.port);
  return {
    ok: true,
    url: { scheme, host, port, path: u.pathname || "/", encodedPathTricks: /%(2e|2f|5c)/i.test(u.pathname) },
  };
}

function schemes(p: UrlPattern): ("http" | "https")[] {
  return p.scheme ? [p.scheme] : ["http", "https"];
}

function hostMatches(p: UrlPattern, host: string): boolean {
  if (!p.wildcard) return host === p.host;
  return host.length > p.host.length + 1 && host.endsWith("." + p.host);
}

/** does a pattern grant a URL? Returns a reason when it nearly did (path tricks) */
export function urlMatches(p: UrlPattern, u: UrlParts): boolean {
  if (p.scheme && p.scheme !== u.scheme) return false;
  if ((p.port ?? DEFAULT_PORT[u.scheme]) !== u.port) return false;
  if (!hostMatches(p, u.host)) return false;
  if (p.path === undefined || p.path === "/*") return true;
  // under a path-prefix grant an encoded '/', '\' or '.' could be decoded by
  // the server into a different path than the one we checked: refuse it
  if (u.encodedPathTricks) return false;
  return globMatches(p.path, u.path);
}

export function urlPatternCovers(parent: UrlPattern, child: UrlPattern): boolean {
  for (const s of schemes(child)) {
    if (!schemes(parent).includes(s)) return false;
    if ((parent.port ?? DEFAULT_PORT[s]) !== (child.port ?? DEFAULT_PORT[s])) return false;
  }
  if (parent.wildcard) {
    // *.a.com covers x.a.com and *.x.a.com and *.a.com, never a.com
    if (child.host !== parent.host && !child.host.endsWith("." + parent.host)) return false;
    if (!child.wildcard && child.host === parent.host) return false;
  } else if (child.wildcard || child.host !== parent.host) {
    return false;
  }
  const pp = parent.path ?? "/*";
  const cp = child.path ?? "/*";
  return globCovers(pp, cp);
}

/** is everything the child capability grants also granted by the parent? (limits are checked by the table) */
export function coversCapability(parent: Capability, child: Capability): boolean {
  if (child.kind === "tool") return impliesTool(parent, child.tool);
  if (parent.kind !== child.kind) return false;
  if (child.kind === "call") {
    // call: b.* covers b.* and b.m; call: b.m covers only itself
    return child.method === "*"
      ? (parent as CallCapability).agent === child.agent && (parent as CallCapability).method === "*"
      : callMatches(parent as CallCapability, child.agent, child.method);
  }
  if (child.kind === "memory_read" || child.kind === "memory_write") {
    // memory_read: * covers * and every name; memory_read: team covers only itself
    const grant = (parent as MemoryCapability).namespace;
    return grant === "*" || grant === child.namespace;
  }
  if (child.kind === "web_fetch") return urlPatternCovers((parent as WebCapability).pattern, child.pattern);
  return globCovers((parent as PathCapability).glob, (child as PathCapability).glob);
}
