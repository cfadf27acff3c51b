// Exit codes are part of aaosctl's interface: scripts branch on them.
// Every failure becomes a CliError carrying its code; kernel errors map by
// their JSON-RPC code (see docs/aaosctl.md, "Exit codes").
import { RpcError } from "./client.ts";

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

export const CAPABILITY_DENIED = -32001;
export const APPROVAL_DENIED = -32003;

export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof RpcError) {
    if (err.code === CAPABILITY_DENIED || err.code === APPROVAL_DENIED) return ExitCode.denied;
    return ExitCode.failed;
  }
  // The client rejects pending calls with plain errors when the line drops.
  if (err instanceof Error && /^connection (closed|lost)/.test(err.message)) return ExitCode.unreachable;
  return ExitCode.failed;
}

/** Names for the kernel's error codes (docs/api.md), for messages a person reads. */
export const RPC_ERROR_NAMES: Record<number, string> = {
  [-32700]: "parse error",
  [-32600]: "invalid request",
  [-32601]: "method not found",
  [-32602]: "invalid params",
  [-32603]: "internal error",
  [-32001]: "capability denied",
  [-32002]: "no such agent",
  [-32003]: "approval denied",
  [-32004]: "budget exhausted",
  [-32005]: "invalid manifest",
  [-32006]: "inference failed",
  [-32007]: "no such approval",
  [-32008]: "agent not runnable",
};
