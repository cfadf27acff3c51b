// Every kind of record the kernel writes to the audit log, in one list. A
// writer names a kind from here (AgentServices.audit takes AuditEventKind),
// so a new kind is added here, and in the table of docs/api.md's audit
// section (kind, when it is written, its main fields), which a test holds
// to this list. Readers keep kinds as strings: audit.query filters by
// prefix ("tool.*"), and a log may hold kinds of another kernel version.
export const AUDIT_KINDS = [
  // the kernel itself
  "system.boot",
  "system.shutdown",
  "system.stop",
  "kernel.error",
  "clock.step",
  // A/B upgrade and rollback (docs/operations.md)
  "upgrade.install",
  "upgrade.refused",
  "upgrade.confirm",
  "upgrade.fallback",
  "upgrade.rollback",
  // agents
  "agent.spawn",
  "capability.grant",
  "spawn.denied",
  "agent.stop",
  // persistent agents and supervision
  "agent.resume",
  "agent.restart",
  "agent.failed",
  // inboxes: agent.send, typed calls and notifications
  "agent.send",
  "agent.request",
  "agent.response",
  "agent.notify",
  // tools
  "capability.denied",
  "tool.call",
  "tool.result",
  // approvals
  "approval.requested",
  "approval.decided",
  "approval.timeout",
  "approval.cancelled",
  "approval.restored",
  // messages between agents
  "message.send",
  "message.denied",
  // memory: the episodic store, pinned blocks, context compaction
  "memory.store",
  "memory.delete",
  "memory.block",
  "memory.compact",
  "memory.prune",
  "memory.forget",
  // reversible effects: rewinds and the journal's retention
  "agent.rewind",
  "agent.rewound",
  "journal.prune",
  // live configuration (manifest.put, manifest.delete, config.apply, secret.set)
  "manifest.put",
  "manifest.delete",
  "config.apply",
  "secret.set",
  // the dashboard's HTTP listener
  "web.login",
  "web.tokens",
  // MCP (docs/mcp.md): an external server's state and tool list; an MCP client refused at /mcp
  "mcp.server",
  "mcp.tools",
  "mcp.refused",
  // the operator's read-only view of the agents' files (fs.list, fs.read)
  "fs.list",
  "fs.read",
  // runs and model calls
  "run.start",
  "inference.request",
  "inference.usage",
  "inference.retry",
  "inference.error",
  "run.end",
  // the log's own reports, written by AuditLog at open; append() refuses them
  "audit.recovered",
  "audit.tampered",
  "audit.unanchored",
] as const;

export type AuditKind = (typeof AUDIT_KINDS)[number];

/** the kinds only the audit log itself writes */
export type AuditLogKind = Extract<AuditKind, `audit.${string}`>;

/** the kinds the rest of the kernel writes through AgentServices.audit */
export type AuditEventKind = Exclude<AuditKind, AuditLogKind>;
