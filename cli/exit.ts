// Exit codes are part of aaosctl's interface: scripts branch on them.
// Every failure becomes a CliError carrying its code; kernel errors map by
// their JSON-RPC code (see docs/aaosctl.md, "Exit codes"), and the codes
// are the kernel's own (kernel/errors.ts), never restated here.
import { ErrorCode } from "../kernel/errors.ts";
import { ConnectionLost, RpcError } from "./client.ts";

export const ExitCode = {
  ok: 0,
  /** anything else that went wrong: the kernel said no for a reason other than a denial */
  failed: 1,
  /** the command line was wrong */
  usage: 2,
  /** nothing answered: no socket, no kernel behind it, connection lost */
  unreachable: 3,
  /** a capability check (-32001) or a human (-32003) said no */
  denied: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
    /** a line telling the person what to do next */
    readonly hint?: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export function usageError(message: string, hint?: string): CliError {
  return new CliError(ExitCode.usage, message, hint);
}

export function unreachable(message: string, hint?: string): CliError {
  return new CliError(ExitCode.unreachable, message, hint);
}

export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof RpcError) {
    if (err.code === ErrorCode.CapabilityDenied || err.code === ErrorCode.ApprovalDenied) return ExitCode.denied;
    return ExitCode.failed;
  }
  // the line or socket closed with the call unanswered (cli/client.ts)
  if (err instanceof ConnectionLost) return ExitCode.unreachable;
  return ExitCode.failed;
}

/** Names for the kernel's error codes (docs/api.md), for messages a person reads; a new code must be named here. */
export const RPC_ERROR_NAMES: Readonly<Record<number, string>> = {
  [ErrorCode.ParseError]: "parse error",
  [ErrorCode.InvalidRequest]: "invalid request",
  [ErrorCode.MethodNotFound]: "method not found",
  [ErrorCode.InvalidParams]: "invalid params",
  [ErrorCode.InternalError]: "internal error",
  [ErrorCode.CapabilityDenied]: "capability denied",
  [ErrorCode.NoSuchAgent]: "no such agent",
  [ErrorCode.ApprovalDenied]: "approval denied",
  [ErrorCode.BudgetExhausted]: "budget exhausted",
  [ErrorCode.InvalidManifest]: "invalid manifest",
  [ErrorCode.InferenceFailed]: "inference failed",
  [ErrorCode.NoSuchApproval]: "no such approval",
  [ErrorCode.AgentNotRunnable]: "agent not runnable",
  [ErrorCode.TimedOut]: "timed out",
  [ErrorCode.QuotaExceeded]: "quota exceeded",
} satisfies Record<ErrorCode, string>;

/**
 * A failure for programs (--json, -o json|yaml), always one shape:
 * {error: {code, message, data, exit}}. code is the kernel's JSON-RPC error
 * code (-32001 capability denied, ...) when the kernel refused, null when the
 * failure is aaosctl's own (a usage error, nothing answered); data is the
 * kernel's error data (null when it gave none), or {hint} for aaosctl's own;
 * exit is the exit code the process ends with.
 */
export function errorJson(err: unknown): {
  error: { code: number | null; message: string; data: unknown; exit: ExitCodeValue };
} {
  const exit = exitCodeFor(err);
  if (err instanceof RpcError) return { error: { code: err.code, message: err.message, data: err.data ?? null, exit } };
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof CliError ? err.hint : undefined;
  return { error: { code: null, message, data: hint ? { hint } : null, exit } };
}
