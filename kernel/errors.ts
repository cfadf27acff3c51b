// Errors are values with a JSON-RPC code and a message a person can act on.
// Every subsystem throws KernelError; the RPC layer turns it into an error
// object unchanged, so the code a subsystem picks is the code the wire shows.

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
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export class KernelError extends Error {
  constructor(
    readonly code: number,
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

export function invalidParams(message: string, data?: Record<string, unknown>): KernelError {
  return new KernelError(ErrorCode.InvalidParams, message, data);
}
