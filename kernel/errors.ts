// Errors are values with a JSON-RPC code and a message a person can act on.
// Every subsystem throws KernelError, and so does the RPC layer for the
// protocol's own errors; toWire() is the one place an error gets its wire
// form (RPC now, MCP and the dashboard later), so the code a subsystem
// picks is the code the wire shows. The CLI imports ErrorCode from here.

export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  CapabilityDenied: -32001,
  NoSuchAgent: -32002,
  ApprovalDenied: -32003,
  BudgetExhausted: -32004,
  InvalidManifest: -32005,
  InferenceFailed: -32006,
  NoSuchApproval: -32007,
  AgentNotRunnable: -32008,
  TimedOut: -32009,
  QuotaExceeded: -32010,
} as const;

/** a code the contract defines (docs/api.md); nothing else can be thrown */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class KernelError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "KernelError";
  }
}

export function capabilityDenied(tool: string, capability: string, reason: string): KernelError {
  return new KernelError(ErrorCode.CapabilityDenied, `capability denied: ${reason}`, {
    tool,
    capability,
    reason,
  });
}

export function noSuchAgent(agentId: string): KernelError {
  return new KernelError(ErrorCode.NoSuchAgent, `no such agent: ${agentId}`, { agent_id: agentId });
}

/** the caller's params are wrong; the message says which field and why (the "Invalid params: " prefix is added here) */
export function invalidParams(message: string, data?: Record<string, unknown>): KernelError {
  return new KernelError(ErrorCode.InvalidParams, `Invalid params: ${message}`, data);
}

// ---- the protocol's own errors (JSON-RPC 2.0 §5.1) -------------------------

export function parseError(): KernelError {
  return new KernelError(ErrorCode.ParseError, "Parse error: the line is not valid JSON");
}

export function invalidRequest(why: string): KernelError {
  return new KernelError(ErrorCode.InvalidRequest, `Invalid Request: ${why}`);
}

/** a line over rpc.max_line_bytes: discarded unread, so there is no id to answer */
export function lineTooLong(bytes: number, limit: number): KernelError {
  return new KernelError(
    ErrorCode.InvalidRequest,
    `line of ${bytes} bytes exceeds the limit of ${limit} bytes; discarded`,
    { limit },
  );
}

export function methodNotFound(name: string): KernelError {
  return new KernelError(ErrorCode.MethodNotFound, `Method not found: ${name}`);
}

/** anything thrown that is not a KernelError: a bug, said as one */
export function internalError(e: unknown): KernelError {
  return new KernelError(ErrorCode.InternalError, `Internal error: ${(e as Error)?.message ?? String(e)}`);
}

/** an error object on the wire (JSON-RPC 2.0 §5.1) */
export interface WireError {
  code: ErrorCode;
  message: string;
  data?: Record<string, unknown>;
}

/** The wire form of anything thrown: a KernelError as it is, anything else as an internal error. */
export function toWire(e: unknown): WireError {
  const err = e instanceof KernelError ? e : internalError(e);
  return err.data === undefined
    ? { code: err.code, message: err.message }
    : { code: err.code, message: err.message, data: err.data };
}
