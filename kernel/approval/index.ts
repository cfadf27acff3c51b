// The human approval queue. A tool listed in a manifest's approval_required
// blocks here until an operator answers approval.respond, the timeout
// passes (deny), or the agent stops (cancel). Pending requests are mirrored
// to <data>/approvals/pending.json so that, after a crash, the next boot can
// audit what was waiting as cancelled (the calls that waited on them are
// gone with the old process).
//
// Invariants:
//  - Acknowledged means durable: approval.respond answers only after its
//    approval.decided record is durable; if that record cannot be written
//    the approval stays pending and the operator gets the error.
//  - An approval leaves pending.json only after its outcome record is
//    durable, so a crash at any point leaves either the outcome in the audit
//    log or the request in pending.json (which the next boot audits).
//  - Every waiter settles exactly once, on every path (decision, timeout,
//    stop), whether or not the disk can be written: a failed write of
//    pending.json is logged and retried at the next write, never thrown into
//    a waiter.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, KernelError } from "../errors.ts";
import type { ApprovalInfo, AuditEventInput } from "../services.ts";

export type Decision = "approve" | "deny";
type By = "operator" | "timeout" | "stop";

interface Outcome {
  decision: Decision;
  reason: string;
  by: By;
}

interface Pending {
  info: ApprovalInfo;
  /** an outcome is being recorded: no other path may settle it */
  deciding: boolean;
  finish(outcome: Outcome): void;
}

export interface ApprovalQueueOptions {
  dataDir: string;
  timeoutMs: number;
  audit: (e: AuditEventInput) => Promise<{ seq: number }>;
  onRequested?: (info: ApprovalInfo) => void;
  /** a mirror write failed (logged by the kernel; retried at the next write) */
  onPersistError?: (err: unknown) => void;
}

export class ApprovalQueue {
  private pending = new Map<string, Pending>();
  /** settled, but the outcome record could not be written: kept in pending.json for the next boot */
  private unrecorded = new Map<string, ApprovalInfo>();
  private readonly file: string;

  constructor(private readonly opts: ApprovalQueueOptions) {
    const dir = join(opts.dataDir, "approvals");
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      opts.onPersistError?.(e); // a full or read-only disk: the kernel boots degraded
    }
    this.file = join(dir, "pending.json");
  }

  /**
   * Audit what a previous run left pending as cancelled. The file is
   * rewritten only once every record is durable: if the log cannot be
   * written (a full disk), the leftovers stay for the next boot.
   */
  async recover(): Promise<number> {
    if (!existsSync(this.file)) return 0;
    let stale: ApprovalInfo[] = [];
    try {
      stale = JSON.parse(readFileSync(this.file, "utf8"));
      if (!Array.isArray(stale)) stale = [];
    } catch {
      stale = [];
    }
    await Promise.all(
      stale.map((info) =>
        this.opts.audit({
          kind: "approval.cancelled",
          agent_id: info.agent_id,
          approval_id: info.id,
          tool: info.tool,
          reason: "kernel restarted",
        }),
      ),
    );
    this.persist();
    return stale.length;
  }

  list(): ApprovalInfo[] {
    return [...this.pending.values()].map((p) => p.info);
  }

  /**
   * Resolves when approved; throws -32003 when denied, timed out or cancelled.
   * The request is audited (durably) and mirrored before anyone can see it.
   */
  async request(
    agentId: string,
    tool: string,
    input: unknown,
    signal?: AbortSignal,
    onPending?: (id: string) => void,
  ): Promise<void> {
    if (signal?.aborted)
      throw signal.reason ?? new KernelError(ErrorCode.AgentNotRunnable, `agent ${agentId} was stopped`);
    const id = "apr-" + randomBytes(8).toString("hex");
    const info: ApprovalInfo = { id, agent_id: agentId, tool, input, requested_at: new Date().toISOString() };
    await this.opts.audit({ kind: "approval.requested", agent_id: agentId, approval_id: id, tool, input });

    const outcome = await new Promise<Outcome>((resolve) => {
      const timer = setTimeout(
        () =>
          void this.conclude(id, {
            decision: "deny",
            reason: `no decision within ${Math.round(this.opts.timeoutMs / 1000)} s`,
            by: "timeout",
          }),
        this.opts.timeoutMs,
      );
      const onAbort = () => void this.conclude(id, { decision: "deny", reason: "the agent was stopped", by: "stop" });
      const entry: Pending = {
        info,
        deciding: false,
        finish: (o) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(o);
        },
      };
      this.pending.set(id, entry);
      this.persist();
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      onPending?.(id);
      this.opts.onRequested?.(info);
    });
    if (outcome.decision !== "approve") {
      throw new KernelError(ErrorCode.ApprovalDenied, `approval denied for ${tool}: ${outcome.reason}`, {
        approval_id: id,
        tool,
        reason: outcome.reason,
      });
    }
  }

  /** The operator's answer: returns once approval.decided is durable. */
  async respond(id: string, decision: Decision, reason?: string): Promise<{ id: string; decision: Decision }> {
    const p = this.pending.get(id);
    if (!p || p.deciding)
      throw new KernelError(ErrorCode.NoSuchApproval, `no pending approval ${id} (unknown, or already decided)`, {
        id,
      });
    const why = reason ?? (decision === "approve" ? "approved by operator" : "denied by operator");
    await this.conclude(id, { decision, reason: why, by: "operator" }, true);
    return { id, decision };
  }

  /**
   * Record the outcome durably, then settle the waiter (exactly once).
   * strict (the operator's answer): when the record cannot be written the
   * approval stays pending and the error goes to the caller. Otherwise
   * (timeout, stop) the waiter is denied anyway and the request stays in
   * pending.json, so the next boot records it as cancelled.
   */
  private async conclude(id: string, outcome: Outcome, strict = false): Promise<void> {
    const p = this.pending.get(id);
    if (!p || p.deciding) return;
    p.deciding = true;
    const kind =
      outcome.by === "operator"
        ? "approval.decided"
        : outcome.by === "timeout"
          ? "approval.timeout"
          : "approval.cancelled";
    try {
      await this.opts.audit({
        kind,
        agent_id: p.info.agent_id,
        approval_id: id,
        tool: p.info.tool,
        decision: outcome.decision,
        reason: outcome.reason,
      });
    } catch (e) {
      if (strict) {
        p.deciding = false;
        throw new KernelError(
          ErrorCode.InternalError,
          `the decision on ${id} was not recorded, so it was not applied (the approval is still pending): ${(e as Error)?.message ?? e}`,
          {
            id,
          },
        );
      }
      this.unrecorded.set(id, p.info);
    }
    this.pending.delete(id);
    this.persist();
    p.finish(outcome);
  }

  /** mirror pending (and unrecorded) requests; never throws */
  private persist(): void {
    try {
      const tmp = this.file + ".tmp";
      writeFileSync(tmp, JSON.stringify([...this.list(), ...this.unrecorded.values()]));
      renameSync(tmp, this.file);
    } catch (e) {
      this.opts.onPersistError?.(e);
    }
  }
}
