// The human approval queue. A tool listed in a manifest's approval_required
// blocks here until an operator answers approval.respond, the timeout
// passes (deny), or the agent stops (cancel). Pending requests are mirrored
// to <data>/approvals/pending.json so an operator can see, after a crash,
// what was waiting; on start that file's leftovers are audited as cancelled
// (the calls that waited on them are gone with the old process).
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, KernelError } from "../errors.ts";
import type { ApprovalInfo, AuditEventInput } from "../services.ts";

export type Decision = "approve" | "deny";

interface Pending {
  info: ApprovalInfo;
  settle(decision: Decision, reason: string, by: "operator" | "timeout" | "stop"): void;
}

export interface ApprovalQueueOptions {
  dataDir: string;
  timeoutMs: number;
  audit: (e: AuditEventInput) => Promise<{ seq: number }>;
  onRequested?: (info: ApprovalInfo) => void;
}

export class ApprovalQueue {
  private pending = new Map<string, Pending>();
  private readonly file: string;

  constructor(private readonly opts: ApprovalQueueOptions) {
    const dir = join(opts.dataDir, "approvals");
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "pending.json");
  }

  /** audit what a previous run left pending, then start empty */
  async recover(): Promise<number> {
    if (!existsSync(this.file)) return 0;
    let stale: ApprovalInfo[] = [];
    try {
      stale = JSON.parse(readFileSync(this.file, "utf8"));
    } catch {
      stale = [];
    }
    for (const info of stale) {
      await this.opts.audit({ kind: "approval.cancelled", agent_id: info.agent_id, approval_id: info.id, tool: info.tool, reason: "kernel restarted" });
    }
    this.persist();
    return stale.length;
  }

  list(): ApprovalInfo[] {
    return [...this.pending.values()].map((p) => p.info);
  }

  /**
   * Resolves when approved; throws -32003 when denied, timed out or cancelled.
   * The request is audited (durably) before anyone can see it.
   */
  async request(agentId: string, tool: string, input: unknown, signal?: AbortSignal, onPending?: (id: string) => void): Promise<void> {
    const id = "apr-" + randomBytes(8).toString("hex");
    const info: ApprovalInfo = { id, agent_id: agentId, tool, input, requested_at: new Date().toISOString() };
    await this.opts.audit({ kind: "approval.requested", agent_id: agentId, approval_id: id, tool, input });
    const outcome = await new Promise<{ decision: Decision; reason: string; by: string }>((resolve) => {
      const timer = setTimeout(() => settle("deny", `no decision within ${Math.round(this.opts.timeoutMs / 1000)} s`, "timeout"), this.opts.timeoutMs);
      const onAbort = () => settle("deny", "the agent was stopped", "stop");
      const settle = (decision: Decision, reason: string, by: string) => {
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.persist();
        resolve({ decision, reason, by });
      };
      this.pending.set(id, { info, settle });
      this.persist();
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      onPending?.(id);
      this.opts.onRequested?.(info);
    });
    const kind = outcome.by === "operator" ? "approval.decided" : outcome.by === "timeout" ? "approval.timeout" : "approval.cancelled";
    await this.opts.audit({ kind, agent_id: agentId, approval_id: id, tool, decision: outcome.decision, reason: outcome.reason });
    if (outcome.decision !== "approve") {
      throw new KernelError(ErrorCode.ApprovalDenied, `approval denied for ${tool}: ${outcome.reason}`, {
        approval_id: id,
        tool,
        reason: outcome.reason,
      });
    }
  }

  respond(id: string, decision: Decision, reason?: string): { id: string; decision: Decision } {
    const p = this.pending.get(id);
    if (!p) throw new KernelError(ErrorCode.NoSuchApproval, `no pending approval ${id} (unknown, or already decided)`, { id });
    p.settle(decision, reason ?? (decision === "approve" ? "approved by operator" : "denied by operator"), "operator");
    return { id, decision };
  }

  private persist(): void {
    const tmp = this.file + ".tmp";
    writeFileSync(tmp, JSON.stringify(this.list()));
    renameSync(tmp, this.file);
  }
}
