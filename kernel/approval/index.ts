// The human approval queue. A tool listed in a manifest's approval_required
// blocks here until an operator answers approval.respond, the timeout
// passes (deny), or the agent stops (cancel). Pending requests are mirrored
// to <data>/approvals/pending.json so that, after a crash, the next boot can
// audit what was waiting as cancelled (the calls that waited on them are
// gone with the old process), or restore it, with the same id, for an agent
// that will be resumed: recover(keep). A restored approval waits for its
// agent to ask again with request(..., {id}); the operator may answer it
// before that, and the answer is kept for the agent.
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
//  - A restored approval is listed only once its approval.restored record
//    is durable; it times out like any other, counted from the recover.
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
  /** restored by recover(): a resumed request may attach to it */
  restored: boolean;
  timer: ReturnType<typeof setTimeout>;
  /** the waiter (absent on a restored approval nobody has attached to yet) */
  settle?: (outcome: Outcome) => void;
}

/** an entry of pending.json: settled marks one whose outcome could not be recorded */
type Mirrored = ApprovalInfo & { settled?: true };

export interface RequestOptions {
  /** attach to the restored approval of this id (same agent and tool) instead of asking anew */
  id?: string;
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
  /** restored approvals the operator answered before anyone attached: the attaching request gets the answer */
  private decidedUnattached = new Map<string, { info: ApprovalInfo; outcome: Outcome }>();
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
   * Audit what a previous run left pending: the entries keep(info) accepts
   * (an agent that will be resumed) are restored with the same id, audited
   * as approval.restored, listed and kept in pending.json, and time out from
   * now; the others are audited as cancelled. Nothing changes, in memory or
   * on disk, until every record is durable: if the log cannot be written (a
   * full disk), this rejects and the leftovers stay for the next boot.
   * Returns how many were cancelled.
   */
  async recover(keep?: (info: ApprovalInfo) => boolean): Promise<number> {
    if (!existsSync(this.file)) return 0;
    let stale: Mirrored[] = [];
    try {
      stale = JSON.parse(readFileSync(this.file, "utf8"));
      if (!Array.isArray(stale)) stale = [];
    } catch {
      stale = [];
    }
    const restore: ApprovalInfo[] = [];
    const cancel: Mirrored[] = [];
    for (const entry of stale) {
      const info = wellFormed(entry);
      // an entry whose waiter was already settled (its outcome unrecorded) has nobody to resume
      if (info && !entry.settled && !this.pending.has(info.id) && keep?.(info)) restore.push(info);
      else cancel.push(entry);
    }
    await Promise.all([
      ...cancel.map((info) =>
        this.opts.audit({
          kind: "approval.cancelled",
          agent_id: info?.agent_id,
          approval_id: info?.id,
          tool: info?.tool,
          reason: "kernel restarted",
        }),
      ),
      ...restore.map((info) =>
        this.opts.audit({ kind: "approval.restored", agent_id: info.agent_id, approval_id: info.id, tool: info.tool }),
      ),
    ]);
    for (const info of restore) {
      this.pending.set(info.id, {
        info,
        deciding: false,
        restored: true,
        timer: this.startTimer(info.id),
      });
    }
    this.persist();
    return cancel.length;
  }

  list(): ApprovalInfo[] {
    return [...this.pending.values()].map((p) => p.info);
  }

  /**
   * Resolves when approved; throws -32003 when denied, timed out or cancelled.
   * The request is audited (durably) and mirrored before anyone can see it.
   * With opts.id naming a restored approval of this agent and tool, the call
   * attaches to it instead (no second approval.requested; onPending gets that
   * id), or settles at once with the operator's answer if it came first. An
   * unknown id, or one of another agent or tool, makes a new request.
   */
  async request(
    agentId: string,
    tool: string,
    input: unknown,
    signal?: AbortSignal,
    onPending?: (id: string) => void,
    opts?: RequestOptions,
  ): Promise<void> {
    if (signal?.aborted)
      throw signal.reason ?? new KernelError(ErrorCode.AgentNotRunnable, `agent ${agentId} was stopped`);
    const wanted = opts?.id;
    const decided = wanted === undefined ? undefined : this.decidedUnattached.get(wanted);
    if (decided && decided.info.agent_id === agentId && decided.info.tool === tool) {
      this.decidedUnattached.delete(wanted!);
      return settled(decided.info.id, tool, decided.outcome);
    }
    const restored = wanted === undefined ? undefined : this.pending.get(wanted);
    let entry: Pending;
    if (
      restored &&
      restored.restored &&
      !restored.settle &&
      restored.info.agent_id === agentId &&
      restored.info.tool === tool
    ) {
      entry = restored;
    } else {
      const id = "apr-" + randomBytes(8).toString("hex");
      const info: ApprovalInfo = { id, agent_id: agentId, tool, input, requested_at: new Date().toISOString() };
      await this.opts.audit({ kind: "approval.requested", agent_id: agentId, approval_id: id, tool, input });
      entry = { info, deciding: false, restored: false, timer: this.startTimer(id) };
      this.pending.set(id, entry);
      this.persist();
    }
    const id = entry.info.id;
    const outcome = await new Promise<Outcome>((resolve) => {
      const onAbort = () => {
        if (this.suspending?.(agentId)) {
          // a shutdown: the approval stays pending (and in pending.json) for the resumed agent at the next boot
          clearTimeout(entry.timer);
          entry.settle?.({ decision: "deny", reason: "the kernel is shutting down", by: "stop" });
          return;
        }
        // a caller that gave up says why (an MCP client's cancel); otherwise the agent stopped
        const why = signal?.reason instanceof KernelError ? signal.reason.message : "the agent was stopped";
        void this.conclude(id, { decision: "deny", reason: why, by: "stop" });
      };
      entry.settle = (o) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(o);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      onPending?.(id);
      if (entry !== restored) this.opts.onRequested?.(entry.info);
    });
    return settled(id, tool, outcome);
  }

  private suspending: ((agentId: string) => boolean) | null = null;

  /**
   * The kernel is shutting down: the approvals of agents that keep(agentId)
   * accepts (persistent ones, resumed at the next boot) are not cancelled
   * when their agent stops; their waiters are released without an outcome
   * and the requests stay in pending.json, restored with the same ids by the
   * next boot's recover().
   */
  suspend(keep: (agentId: string) => boolean): void {
    this.suspending = keep;
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
    clearTimeout(p.timer);
    this.pending.delete(id);
    this.persist();
    if (p.settle) p.settle(outcome);
    else if (outcome.by === "operator") this.decidedUnattached.set(id, { info: p.info, outcome });
  }

  /** the approval timeout of id, from now */
  private startTimer(id: string): ReturnType<typeof setTimeout> {
    return setTimeout(
      () =>
        void this.conclude(id, {
          decision: "deny",
          reason: `no decision within ${Math.round(this.opts.timeoutMs / 1000)} s`,
          by: "timeout",
        }),
      this.opts.timeoutMs,
    );
  }

  /** mirror pending (and unrecorded) requests; never throws */
  private persist(): void {
    try {
      const tmp = this.file + ".tmp";
      const settledUnrecorded: Mirrored[] = [...this.unrecorded.values()].map((info) => ({ ...info, settled: true }));
      writeFileSync(tmp, JSON.stringify([...this.list(), ...settledUnrecorded]));
      renameSync(tmp, this.file);
    } catch (e) {
      this.opts.onPersistError?.(e);
    }
  }
}

/** the waiter's answer: resolves on approve, throws -32003 otherwise */
function settled(id: string, tool: string, outcome: Outcome): void {
  if (outcome.decision !== "approve") {
    throw new KernelError(ErrorCode.ApprovalDenied, `approval denied for ${tool}: ${outcome.reason}`, {
      approval_id: id,
      tool,
      reason: outcome.reason,
    });
  }
}

/** an entry of pending.json that can be restored, without the file's own marks */
function wellFormed(e: unknown): ApprovalInfo | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const m = e as Record<string, unknown>;
  if (typeof m.id !== "string" || typeof m.agent_id !== "string" || typeof m.tool !== "string") return undefined;
  return {
    id: m.id,
    agent_id: m.agent_id,
    tool: m.tool,
    input: m.input,
    requested_at: typeof m.requested_at === "string" ? m.requested_at : new Date().toISOString(),
  };
}
