// Capabilities: the grammar of manifest capability strings, kernel-held
// tokens, narrowing for child agents, and path, URL, call-target and memory
// namespace matching.
// Implementation beside this file: grammar.ts (pure rules), table.ts (tokens),
// manifest.ts (a manifest's grant as token specs), private.ts (kernel-private
// paths carved out of every grant). Opening a path beneath its grant is the
// file tools' step: kernel/tools/beneath.ts.
export {
  CapabilityParseError,
  parseCapability,
  formatCapability,
  formatUrlPattern,
  coversCapability,
  impliesTool,
  normalizePath,
  globRoot,
  globMatches,
  globCovers,
  parseResourceUrl,
  urlMatches,
  urlPatternCovers,
  parseCallResource,
  callMatches,
  CALL_AGENT,
  CALL_METHOD,
  namespaceMatches,
  NAMESPACE_NAME,
  NAMESPACE_RULE,
  IMPLIED_TOOLS,
  mcpToolName,
  MCP_SERVER_NAME,
  MCP_TOOL_NAME,
  MAX_PATH_BYTES,
  type Capability,
  type ToolCapability,
  type PathCapability,
  type WebCapability,
  type CallCapability,
  type MemoryCapability,
  type UrlPattern,
  type ResourceKind,
  type Normalised,
} from "./grammar.ts";
export { CapabilityTable, type TokenSpec, type Token, type CheckResult, type CoverResult } from "./table.ts";
export { grantFromManifest } from "./manifest.ts";
export { PrivateAreas, type PrivateAreasOptions } from "./private.ts";
