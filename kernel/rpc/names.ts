// The names of the contract's methods, in a module of their own that imports
// nothing: the CLI (completion, `aaosctl call`) reads them without loading
// the kernel.

/**
 * Every method of the contract (docs/api.md), in the order `aaosctl call`
 * lists them. methodTable() (methods.ts) must define exactly these (checked at
 * compile time), so the CLI's list, which is this one, cannot drift from the kernel's.
 */
export const METHOD_NAMES = [
  "agent.spawn",
  "agent.stop",
  "agent.list",
  "agent.status",
  "agent.run",
  "agent.spawn_and_run",
  "agent.send",
  "agent.result",
  "agent.call",
  "agent.restart",
  "agent.rewind",
  "manifest.list",
  "manifest.put",
  "manifest.delete",
  "config.get",
  "config.apply",
  "secret.set",
  "tool.list",
  "tool.invoke",
  "approval.list",
  "approval.respond",
  "system.ping",
  "system.info",
  "system.stats",
  "system.logs",
  "system.shutdown",
  "system.upgrade",
  "system.rollback",
  "audit.query",
  "audit.verify",
  "sched.status",
  "memory.search",
  "memory.list",
  "memory.export",
  "memory.delete",
  "memory.namespaces",
  "events.subscribe",
  "web.tokens",
  "fs.list",
  "fs.read",
  "mcp.clients",
  "mcp.servers",
  "mcp.surface",
  "mcp.call",
  "mcp.cancel",
  "mcp.read",
  "mcp.prompt",
  "mcp.complete",
] as const;

export type MethodName = (typeof METHOD_NAMES)[number];

/**
 * The methods that change nothing: all a dashboard viewer session may call
 * (kernel/web); every other method answers it -32001.
 */
export const READ_ONLY_METHODS: ReadonlySet<MethodName> = new Set<MethodName>([
  "agent.list",
  "agent.status",
  "agent.result",
  "manifest.list",
  "config.get",
  "tool.list",
  "approval.list",
  "system.ping",
  "system.info",
  "system.stats",
  "system.logs",
  "fs.list",
  "fs.read",
  "audit.query",
  "audit.verify",
  "sched.status",
  "memory.search",
  "memory.list",
  "memory.export",
  "memory.namespaces",
  "events.subscribe",
  "mcp.clients",
  "mcp.servers",
  "mcp.surface",
]);
