// A fake-but-real AgentServices for the loop tests: tools are functions,
// capabilities a set of tool names, approvals a queue the test answers.
import pino from "pino";
import { capabilityDenied, ErrorCode, KernelError, noSuchAgent } from "../../../kernel/errors.ts";
import {
  createInference,
  InferenceConfigSchema,
  type AgentRuntime,
  type Inference,
} from "../../../kernel/llm/index.ts";
import type { AgentServices, AuditEventInput, InvokeOptions, ToolDescription } from "../../../kernel/services.ts";

export interface FakeTool {
  description?: string;
  input_schema?: Record<string, unknown>;
  run(input: any, opts: InvokeOptions): Promise<unknown> | unknown;
}

export interface PendingApproval {
  id: string;
  agentId: string;
  tool: string;
  input: unknown;
  respond(decision: "approve" | "deny"): void;
}

export class FakeServices implements AgentServices {
  readonly allowed = new Set<string>();
  readonly approvalRequired = new Set<string>();
  readonly approvals: PendingApproval[] = [];
  readonly invocations: Array<{ agentId: string; tool: string; input: unknown; via: string }> = [];
  private nextApproval = 1;
  private approvalWaiters: Array<(a: PendingApproval) => void> = [];

  constructor(readonly tools: Record<string, FakeTool>) {}

  /** resolves with the next approval request */
  nextApprovalRequest(): Promise<PendingApproval> {
    const open = this.approvals.find((a) => !(a as any).answered);
    if (open) return Promise.resolve(open);
    return new Promise((r) => this.approvalWaiters.push(r));
  }

  listTools(agentId?: string): ToolDescription[] {
    return Object.entries(this.tools)
      .filter(([name]) => agentId === undefined || this.allowed.has(name))
      .map(([name, t]) => ({
        name,
        description: t.description ?? `the ${name} tool`,
        effect: "none" as const,
        input_schema: t.input_schema ?? { type: "object", properties: {}, additionalProperties: true },
      }));
  }

  async invokeTool(agentId: string, tool: string, input: unknown, opts: InvokeOptions): Promise<unknown> {
    this.invocations.push({ agentId, tool, input, via: opts.via });
    const t = this.tools[tool];
    if (!t || !this.allowed.has(tool))
      throw capabilityDenied(tool, `tool: ${tool}`, `agent ${agentId} holds no capability for ${tool}`);
    if (this.approvalRequired.has(tool)) {
      const id = `appr-${this.nextApproval++}`;
      const decision = await new Promise<"approve" | "deny">((resolve, reject) => {
        const a: PendingApproval = {
          id,
          agentId,
          tool,
          input,
          respond: (d) => {
            (a as any).answered = true;
            resolve(d);
          },
        };
        this.approvals.push(a);
        opts.onApprovalPending?.(id);
        opts.signal?.addEventListener(
          "abort",
          () => reject(new KernelError(ErrorCode.AgentNotRunnable, "agent stopped")),
          { once: true },
        );
        const w = this.approvalWaiters.shift();
        if (w) w(a);
      });
      if (decision === "deny") throw new KernelError(ErrorCode.ApprovalDenied, `approval denied for ${tool}`, { tool });
    }
    opts.beforeRun?.();
    return t.run(input, opts);
  }

  async spawn(): Promise<never> {
    throw new Error("not in these tests");
  }
  async stop(): Promise<never> {
    throw new Error("not in these tests");
  }
  list() {
    return [];
  }
  status(id: string): never {
    throw noSuchAgent(id);
  }
  async run(): Promise<never> {
    throw new Error("not in these tests");
  }
  async sendMessage(): Promise<never> {
    throw new Error("not in these tests");
  }
  readMessages() {
    return [];
  }
  async send(): Promise<never> {
    throw new Error("not in these tests");
  }
  result(): never {
    throw new Error("not in these tests");
  }
  async call(): Promise<never> {
    throw new Error("not in these tests");
  }
  async notify(): Promise<never> {
    throw new Error("not in these tests");
  }
  async restart(): Promise<never> {
    throw new Error("not in these tests");
  }
  async filesList(): Promise<never> {
    throw new Error("not in these tests");
  }
  async filesRead(): Promise<never> {
    throw new Error("not in these tests");
  }
  async memoryStore(): Promise<never> {
    throw new Error("not in these tests");
  }
  async memorySearch(): Promise<never> {
    throw new Error("not in these tests");
  }
  memoryRecord(): never {
    throw new Error("not in these tests");
  }
  async memoryDelete(): Promise<never> {
    throw new Error("not in these tests");
  }
  async memoryBlockUpdate(): Promise<never> {
    throw new Error("not in these tests");
  }
  memoryList(): never {
    throw new Error("not in these tests");
  }
  memoryExport(): never {
    throw new Error("not in these tests");
  }
  memoryNamespaces(): never {
    throw new Error("not in these tests");
  }
  listApprovals() {
    return [];
  }
  async respondApproval(): Promise<never> {
    throw new Error("not in these tests");
  }
  async audit(): Promise<{ seq: number }> {
    return { seq: 0 };
  }
  listManifests() {
    return [];
  }
  async putManifest(): Promise<never> {
    throw new Error("not in these tests");
  }
  async deleteManifest(): Promise<never> {
    throw new Error("not in these tests");
  }
  getConfig(): never {
    throw new Error("not in these tests");
  }
  async applyConfig(): Promise<never> {
    throw new Error("not in these tests");
  }
  async setSecret(): Promise<never> {
    throw new Error("not in these tests");
  }
  async queryAudit() {
    return { events: [], next_seq: 1 };
  }
  async verifyAudit(): Promise<never> {
    throw new Error("not in these tests");
  }
  auditHead() {
    return { seq: 0, hash: "" };
  }
  auditDegraded() {
    return null;
  }
  schedulerStatus() {
    return {};
  }
  systemCounts() {
    return { agents: 0, pending_approvals: 0, tools: Object.keys(this.tools) };
  }
  reachable() {
    return { methods: [], spawn_child: [] };
  }
  subscribe() {
    return () => {};
  }
  watch() {
    return () => {};
  }
  async rewind(): Promise<never> {
    throw new Error("not in these tests");
  }
}

export interface Harness {
  inference: Inference;
  services: FakeServices;
  audit: Array<AuditEventInput & { seq: number }>;
  logLines: string[];
  secrets: string[];
  agent(
    over?: Partial<AgentRuntime> & { controller?: AbortController },
  ): AgentRuntime & { controller: AbortController };
}

let agentSeq = 0;

export function makeHarness(opts: {
  config?: unknown;
  env?: Record<string, string | undefined>;
  tools?: Record<string, FakeTool>;
  configDir?: string;
}): Harness {
  const audit: Array<AuditEventInput & { seq: number }> = [];
  const logLines: string[] = [];
  const secrets: string[] = [];
  const log = pino({ level: "trace" }, { write: (s: string) => void logLines.push(s) });
  const services = new FakeServices(opts.tools ?? {});
  const cfg = InferenceConfigSchema.parse(opts.config ?? {});
  const inference = createInference(cfg, {
    services,
    audit: async (e) => {
      const rec = { ...JSON.parse(JSON.stringify(e)), seq: audit.length + 1 };
      audit.push(rec);
      return { seq: rec.seq };
    },
    registerSecret: (s) => void secrets.push(s),
    log,
    env: opts.env ?? {},
    configDir: opts.configDir ?? "/nonexistent",
  });
  return {
    inference,
    services,
    audit,
    logLines,
    secrets,
    agent(over = {}) {
      const controller = over.controller ?? new AbortController();
      const a: AgentRuntime & { controller: AbortController } = {
        id: over.id ?? `agent-${++agentSeq}`,
        name: over.name ?? "tester",
        model: over.model ?? "claude-haiku-4-5-20251001",
        systemPrompt: over.systemPrompt ?? "You are a test agent.",
        parentId: over.parentId ?? null,
        budget: over.budget,
        priority: over.priority ?? 50,
        weight: over.weight ?? 1,
        maxTurns: over.maxTurns ?? 10,
        signal: controller.signal,
        controller,
      };
      inference.onSpawn(a);
      return a;
    },
  };
}

/** a fast retry policy for tests */
export const FAST = { retry: { base_delay_ms: 5, max_delay_ms: 50, max_retries: 4, max_elapsed_ms: 20_000 } };
