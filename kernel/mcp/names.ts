// What kernel/mcp/server.ts needs of a surface before the SDK is loaded
// (kernel/mcp/surface.ts re-exports it for cli/mcp.ts).

/** a tool that runs an agent: agent_run, or a served method AGENT.METHOD (one dot; mcp.S.T has two) */
export function runsAnAgent(tool: string): boolean {
  return (
    tool === "agent_run" || (/^[a-z0-9][a-z0-9_-]{0,62}\.[a-z][a-z0-9_]{0,62}$/.test(tool) && !tool.startsWith("mcp."))
  );
}
