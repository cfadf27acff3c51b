// Kernel: the one implementation of AgentServices. It owns the process
// table, the capability table, the tool registry, the approval queue and the
// audit log, and is the only code that changes them: they are private, and
// every front end holds the kernel as AgentServices only. Every action is
// audited durably before its result is returned.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { ApprovalQueue } from "./approval/index.ts";
import type { AuditLog, AuditQuery } from "./audit/index.ts";
import { CapabilityTable, grantFromManifest, normalizePath, type ResourceKind, type TokenSpec } from "./caps/index.ts";
import { PrivateAreas } from "./caps/private.ts";
import type { KernelConfig } from "./config.ts";
import { cut } from "./cut.ts";
import { capabilityDenied, ErrorCode, invalidParams, KernelError, noSuchAgent } from "./errors.ts";
import { describeZodIssues } from "./zod.ts";
import { route } from "./ipc/index.ts";
import type { AgentRuntime, Inference } from "./llm/index.ts";
import {
  hasOneSource,
  loadManifest,
  ManifestCache,
  MANIFEST_NAME,
  manifestNames,
  ONE_SOURCE_MESSAGE,
  parseDuration,
  type Manifest,
} from "./manifest/index.ts";
import { AgentRecord, newAgentId, ProcessTable, type Agent } from "./proc/index.ts";
import type {
  AgentInfo,
  AgentServices,
  AgentStatus,
  ApprovalInfo,
  AuditEventInput,
  InvokeOptions,
  KernelEvent,
  ManifestInfo,
  RunOptions,
  RunResult,
  SpawnRequest,
  SpawnResult,
  SystemCounts,
  ToolDescription,
} from "./services.ts";
import { ToolRegistry, type ToolLimits } from "./tools/index.ts";

export interface KernelOptions {
  config: KernelConfig;
  configDir: string;
  dataDir: string;
  audit: AuditLog;
  log: Logger;
  /**
   * builds the inference the kernel runs agents with, given the kernel's own
   * services (the agent loop calls tools through them); none: agent.run
   * answers -32006
   */
  inference?: (services: AgentServices) => Inference;
  /** files kernel.yaml names as key files and the kernel's log files: kernel-private, like <data> */
  keyFiles?: string[];
  logFiles?: string[];
}

/** UTF-8 bytes of one string of a tool's input or output in its audit record */
const AUDIT_STRING_LIMIT = 4096;

export class Kernel implements AgentServices {
  private readonly procs: ProcessTable;
  private readonly caps = new CapabilityTable();
  private readonly privateAreas: PrivateAreas;
  private readonly tools = new ToolRegistry();
  private readonly approvals: ApprovalQueue;
  private readonly inference: Inference | null;
  private readonly limits: ToolLimits;
  private readonly listeners = new Set<(event: KernelEvent) => void>();

  constructor(private readonly opts: KernelOptions) {
    // every per-agent structure is bounded by the process table's bound
    this.procs = new ProcessTable(1000, (id) => this.caps.forget(id));
    this.privateAreas = new PrivateAreas({
      dataDir: opts.dataDir,
      configDir: opts.configDir,
      keyFiles: opts.keyFiles,
      logFiles: opts.logFiles,
    });
    this.approvals = new ApprovalQueue({
      dataDir: opts.dataDir,
      timeoutMs: parseDuration(opts.config.approval.timeout)!,
      audit: (e) => this.audit(e),
      onRequested: (info) => this.publish({ method: "approval.requested", params: info }),
      onPersistError: (err) =>
        opts.log.error({ err }, "could not write approvals/pending.json (retried at the next change)"),
    });
    const t = opts.config.tools;
    this.limits = {
      fileReadMaxBytes: t.file_read_max_bytes,
      webFetchMaxBytes: t.web_fetch_max_bytes,
      webFetchTimeoutMs: parseDuration(t.web_fetch_timeout)!,
      webFetchMaxRedirects: t.web_fetch_max_redirects,
    };
    // last: everything the inference may call is in place
    this.inference = opts.inference?.(this) ?? null;
  }

  /**
   * Once at boot, before serving: audit what a previous run left pending as
   * cancelled. Rejects when the log cannot be written (a full data disk);
   * the leftovers are then kept for the next boot and the kernel serves
   * degraded.
   */
  recover(): Promise<number> {
    return this.approvals.recover();
  }

  /** for bound tests: entries in the process table and agents in the token table, stopped ones included */
  tableSizes(): { agents: number; tokenAgents: number } {
    return { agents: this.procs.size(), tokenAgents: this.caps.size() };
  }

  // ---- events ------------------------------------------------------------

  subscribe(listener: (event: KernelEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** a listener's error is its own: logged, never thrown into the kernel's path */
  private publish(event: KernelEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.opts.log.error({ err, event: event.method }, "an event listener failed");
      }
    }
  }

  // ---- audit -------------------------------------------------------------

  audit(event: AuditEventInput): Promise<{ seq: number }> {
    return this.opts.audit.append(event);
  }

  queryAudit(q: AuditQuery) {
    return this.opts.audit.query(q);
  }

  verifyAudit() {
    return this.opts.audit.verify();
  }

  auditHead(): { seq: number; hash: string } {
    return this.opts.audit.head();
  }

  auditDegraded(): { reason: string; since: string } | null {
    return this.opts.audit.degraded();
  }

  // ---- system ------------------------------------------------------------

  schedulerStatus(): unknown {
    return this.inference?.status() ?? { configured: false, queue: [], agents: [] };
  }

  systemCounts(): SystemCounts {
    return {
      agents: this.procs.liveCount(),
      pending_approvals: this.approvals.list().length,
      tools: [...this.tools.names()],
    };
  }

  // ---- spawn -------------------------------------------------------------

  /**
   * Invariants: the limits are checked and a slot reserved in one
   * synchronous step (no await between check and reservation, so concurrent
   * spawns cannot overshoot max_agents or max_children); the agent and its
   * tokens become visible only after agent.spawn and capability.grant are
   * durable; if they cannot be written, nothing of the spawn remains.
   */
  async spawn(req: SpawnRequest, parentId?: string): Promise<SpawnResult> {
    const { text, source } = this.manifestText(req);
    // agents spawned from one text share its parse (checked against the same tool and agent names)
    const { manifest, sha256 } = this.manifests.load(text, {
      knownTools: this.tools.names(),
      knownAgents: manifestNames(join(this.opts.configDir, "manifests")),
      source,
    });
    const parent = parentId === undefined ? null : this.procs.get(parentId);
    const specs = grantFromManifest(manifest, Date.now());
    const max = this.opts.config.limits;

    // ---- check and reserve: synchronous from here to the reservation ----
    if (this.procs.liveCount() + this.reservedAgents >= max.max_agents) {
      await this.auditDenial({
        kind: "spawn.denied",
        agent_id: parentId ?? null,
        name: manifest.name,
        reason: "max_agents reached",
      });
      throw new KernelError(
        ErrorCode.AgentNotRunnable,
        `agent limit reached: ${max.max_agents} agents are running (limits.max_agents)`,
        {
          limit: max.max_agents,
        },
      );
    }
    if (parent) {
      const refusal = this.childRefusal(parent, manifest, specs);
      if (refusal) {
        await this.auditDenial({
          kind: "spawn.denied",
          agent_id: parent.id,
          name: manifest.name,
          capability: refusal.capability,
          reason: refusal.reason,
        });
        throw capabilityDenied("spawn_agent", refusal.capability, refusal.reason);
      }
    }
    const id = newAgentId();
    const tokens = this.caps.mint(id, specs);
    const agent: Agent = new AgentRecord({
      id,
      name: manifest.name,
      manifest,
      approvalRequired: this.approvalSet(manifest, parent),
      parentId: parent?.id ?? null,
      depth: parent ? parent.depth + 1 : 0,
    });
    if (this.inference) {
      try {
        this.inference.onSpawn(this.runtime(agent));
      } catch (e) {
        await this.auditDenial({
          kind: "spawn.denied",
          agent_id: parent?.id ?? null,
          name: manifest.name,
          reason: (e as Error).message,
        });
        throw e;
      }
    }
    this.reserve(parent, +1);
    // ---- reserved: record durably, then make it visible ----
    try {
      await Promise.all([
        this.audit({
          kind: "agent.spawn",
          agent_id: id,
          name: manifest.name,
          parent_id: agent.parentId,
          model: manifest.model,
          source,
          manifest_sha256: sha256,
        }),
        this.audit({
          kind: "capability.grant",
          agent_id: id,
          tokens: tokens.map((t) => ({
            id: t.id,
            capability: t.text,
            max_invocations: t.maxInvocations,
            expires_at: t.expiresAt,
          })),
        }),
      ]);
    } catch (e) {
      this.inference?.onStop(id);
      throw notRecorded("agent.spawn", "no agent was started", e);
    } finally {
      this.reserve(parent, -1);
    }
    this.caps.install(id, tokens);
    this.procs.add(agent);
    parent?.children.add(id);
    return { agent_id: id, name: manifest.name, capabilities: this.caps.capabilityStrings(id) };
  }

  private readonly manifests = new ManifestCache();
  /** a root agent's approval set, one per manifest (never changed, so shared) */
  private readonly rootApprovals = new WeakMap<Manifest, ReadonlySet<string>>();

  /** the manifest's approval_required plus every approval the parent needs */
  private approvalSet(m: Manifest, parent: Agent | null): ReadonlySet<string> {
    if (!parent) {
      let set = this.rootApprovals.get(m);
      if (!set) this.rootApprovals.set(m, (set = new Set(m.approval_required)));
      return set;
    }
    if (m.approval_required.every((t) => parent.approvalRequired.has(t))) return parent.approvalRequired;
    return new Set([...m.approval_required, ...parent.approvalRequired]);
  }

  /** slots taken by spawns whose records are being written */
  private reservedAgents = 0;
  private readonly reservedChildren = new Map<string, number>();

  private reserve(parent: Agent | null, delta: 1 | -1): void {
    this.reservedAgents += delta;
    if (!parent) return;
    const n = (this.reservedChildren.get(parent.id) ?? 0) + delta;
    if (n > 0) this.reservedChildren.set(parent.id, n);
    else this.reservedChildren.delete(parent.id);
  }

  /** a denial is reported to the caller even when its record cannot be written (the log says why) */
  private async auditDenial(e: AuditEventInput): Promise<void> {
    await this.audit(e).catch((err) => this.opts.log.error({ err, kind: e.kind }, "could not record a denial"));
  }

  private manifestText(req: SpawnRequest): { text: string; source: string } {
    if (!hasOneSource(req)) throw invalidParams(ONE_SOURCE_MESSAGE);
    if (req.manifest !== undefined) return { text: req.manifest, source: "manifest" };
    const name = req.name!;
    if (!MANIFEST_NAME.test(name))
      throw invalidParams(`name: "${name}" is not a manifest name (lower-case letters, digits, '-', '_')`);
    for (const ext of [".yaml", ".yml"]) {
      const file = join(this.opts.configDir, "manifests", name + ext);
      if (existsSync(file)) return { text: readFileSync(file, "utf8"), source: `manifests/${name}${ext}` };
    }
    throw new KernelError(
      ErrorCode.InvalidManifest,
      `no manifest named "${name}" in ${join(this.opts.configDir, "manifests")}`,
      {
        path: "name",
        line: 0,
        column: 0,
      },
    );
  }

  /** a child may never hold more than its parent: synchronous, so the caller can reserve in the same step */
  private childRefusal(parent: Agent, m: Manifest, specs: TokenSpec[]): { capability: string; reason: string } | null {
    if (parent.state === "stopped")
      throw new KernelError(ErrorCode.AgentNotRunnable, `agent ${parent.id} is stopped`, { agent_id: parent.id });
    if (!parent.manifest.spawn_child.includes(m.name))
      return { capability: `spawn_child: ${m.name}`, reason: `"${m.name}" is not in the parent's spawn_child list` };
    const max = this.opts.config.limits;
    if (parent.depth + 1 > max.max_spawn_depth)
      return { capability: "limits.max_spawn_depth", reason: `spawn depth would exceed ${max.max_spawn_depth}` };
    const liveChildren =
      [...parent.children].filter((c) => this.procs.find(c)?.state !== "stopped").length +
      (this.reservedChildren.get(parent.id) ?? 0);
    if (liveChildren >= max.max_children)
      return {
        capability: "limits.max_children",
        reason: `parent already has ${liveChildren} children (limits.max_children)`,
      };
    for (const n of m.spawn_child)
      if (!parent.manifest.spawn_child.includes(n))
        return { capability: `spawn_child: ${n}`, reason: `the parent may not spawn "${n}" itself` };
    for (const n of m.message_send)
      if (!parent.manifest.message_send.includes(n))
        return { capability: `message_send: ${n}`, reason: `the parent may not message "${n}" itself` };
    const covered = this.caps.covers(parent.id, specs);
    if (!covered.ok) return { capability: covered.capability, reason: covered.reason };
    return null;
  }

  /** the manifests on the config partition, each checked as spawn would check it */
  listManifests(): ManifestInfo[] {
    const dir = join(this.opts.configDir, "manifests");
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((file) => {
        const name = file.replace(/\.ya?ml$/, "");
        try {
          const m = loadManifest(readFileSync(join(dir, file), "utf8"), {
            knownTools: this.tools.names(),
            knownAgents: manifestNames(dir),
            source: `manifests/${file}`,
          });
          if (m.name !== name)
            return { name, file, valid: false, error: `name "${m.name}" differs from the file name` };
          return { name, file, valid: true };
        } catch (e) {
          return { name, file, valid: false, error: (e as Error).message };
        }
      });
  }

  // ---- stop --------------------------------------------------------------

  /**
   * Children first, each its own audited stop. agent.stop is durable before
   * the stop takes effect; if it cannot be written the agent runs on and the
   * caller gets the error. Then, in one synchronous step: tokens revoked
   * (nothing in flight may use one after that), state stopped, everything
   * in flight aborted. Concurrent stops of one agent share one stop.
   */
  stop(agentId: string): Promise<{ agent_id: string; state: "stopped" }> {
    const agent = this.procs.find(agentId);
    if (!agent) return Promise.reject(noSuchAgent(agentId));
    if (agent.state === "stopped") return Promise.resolve({ agent_id: agentId, state: "stopped" });
    let p = this.stopping.get(agentId);
    if (!p) {
      p = this.stopNow(agent).finally(() => this.stopping.delete(agentId));
      this.stopping.set(agentId, p);
    }
    return p;
  }

  private readonly stopping = new Map<string, Promise<{ agent_id: string; state: "stopped" }>>();

  private async stopNow(agent: Agent): Promise<{ agent_id: string; state: "stopped" }> {
    for (const child of [...agent.children]) {
      if (this.procs.find(child)?.state !== "stopped") await this.stop(child);
    }
    try {
      await this.audit({
        kind: "agent.stop",
        agent_id: agent.id,
        name: agent.name,
        revoked_tokens: this.caps.unrevokedCount(agent.id),
      });
    } catch (e) {
      throw notRecorded("agent.stop", `agent ${agent.id} is still running`, e);
    }
    // revoke first: nothing still in flight may use a token after this line
    this.caps.revokeAll(agent.id);
    this.procs.markStopped(agent);
    // the abort reaches everything in flight: inference, tools, and pending approvals (their wait listens on it)
    agent.abort.abort(new KernelError(ErrorCode.AgentNotRunnable, `agent ${agent.id} was stopped`));
    this.inference?.onStop(agent.id);
    return { agent_id: agent.id, state: "stopped" };
  }

  // ---- queries -----------------------------------------------------------

  list(): AgentInfo[] {
    return this.procs.all().map((a) => this.procs.info(a));
  }

  status(agentId: string): AgentStatus {
    const a = this.procs.get(agentId);
    return {
      ...this.procs.info(a),
      capabilities: this.caps.capabilityStrings(a.id),
      // the scheduler meters every model call; no inference configured: nothing used
      usage: this.inference?.usage(a.id) ?? { input_tokens: 0, output_tokens: 0 },
      children: [...a.children],
    };
  }

  listTools(agentId?: string): ToolDescription[] {
    if (agentId === undefined) return this.tools.describeAll();
    const a = this.procs.get(agentId);
    if (a.state === "stopped") return [];
    return this.tools.describeAll().filter((t) => this.caps.mayCallTool(a.id, t.name));
  }

  // ---- run ---------------------------------------------------------------

  async run(agentId: string, message: string, opts: RunOptions = {}): Promise<RunResult> {
    const agent = this.procs.get(agentId);
    if (agent.state === "stopped") throw notRunnable(agent, "is stopped");
    if (agent.state === "running") throw notRunnable(agent, "is busy with another run");
    if (!this.inference) {
      await this.audit({ kind: "inference.error", agent_id: agentId, reason: "no inference provider configured" });
      throw new KernelError(ErrorCode.InferenceFailed, "no inference provider configured", { agent_id: agentId });
    }
    agent.state = "running";
    try {
      return await this.inference.run(this.runtime(agent), message, opts);
    } finally {
      if (agent.state === "running") agent.state = "ready";
      if (agent.manifest.lifecycle === "ephemeral") await this.stop(agentId); // idempotent
    }
  }

  private runtime(a: Agent): AgentRuntime {
    return {
      id: a.id,
      name: a.name,
      model: a.manifest.model,
      systemPrompt: a.manifest.system_prompt,
      parentId: a.parentId,
      budget: a.manifest.budget,
      priority: a.manifest.priority,
      weight: a.manifest.weight,
      maxTurns: a.manifest.max_turns,
      // read when a run needs it: spawn registers the agent without building its AbortController
      get signal() {
        return a.abort.signal;
      },
    };
  }

  // ---- tools -------------------------------------------------------------

  /**
   * Order (each step before the next): the tool token (peeked, not spent;
   * denial -32001 audited, unknown tools included), the input (-32602; a bad
   * input spends nothing), the token spent, the approval if required, the
   * token checked again after the wait (revoked or expired meanwhile: never
   * runs), the tool.call record, the tool, tool.result. A tool with an effect
   * (reversible, irreversible) runs only once tool.call is durable (the
   * write-ahead); an effect-none tool runs once tool.call is appended, and
   * tool.call and tool.result become durable together, in one group commit,
   * before the reply. Either way tool.call's seq is the lower, and tool.result
   * names it (call_seq); either record failing is the caller's error.
   */
  async invokeTool(agentId: string, toolName: string, input: unknown, opts: InvokeOptions): Promise<unknown> {
    const agent = this.procs.get(agentId);
    if (agent.state === "stopped") throw notRunnable(agent, "is stopped");
    const recordDenial = (capability: string, reason: string, resource?: string) =>
      this.auditDenial({
        kind: "capability.denied",
        agent_id: agentId,
        tool: toolName,
        capability,
        reason,
        ...(resource === undefined ? {} : { resource }),
        via: opts.via,
      });
    const deny = async (capability: string, reason: string): Promise<never> => {
      await recordDenial(capability, reason);
      throw capabilityDenied(toolName, capability, reason);
    };
    const tool = this.tools.get(toolName);
    if (!tool) return deny(`tool: ${toolName}`, `no tool named "${toolName}"`);
    const peek = this.caps.checkTool(agentId, toolName, { count: false });
    if (!peek.ok) return deny(peek.capability, peek.reason);
    const parsed = tool.input.safeParse(input ?? {});
    if (!parsed.success) throw invalidParams(describeZodIssues(parsed.error, "input"), { tool: toolName });
    // same synchronous step as the peek: the same token is chosen, now counted
    const check = this.caps.checkTool(agentId, toolName);
    if (!check.ok) return deny(check.capability, check.reason);

    // one signal for the whole call: the agent's stop, or the caller going away
    const signal = anySignal(agent.abort.signal, opts.signal);
    if (agent.approvalRequired.has(toolName)) {
      await this.approvals.request(agentId, toolName, clip(parsed.data), signal, opts.onApprovalPending);
      const still = this.caps.stillValid(check.token);
      if (!still.ok) return deny(check.token.text, `${still.reason} while the call waited for approval`);
      if (signal.aborted) throw notRunnable(agent, "was stopped");
    }

    const pending: Promise<unknown>[] = [];
    const ctx = {
      agentId,
      services: this as AgentServices,
      signal,
      limits: this.limits,
      privateAreas: this.privateAreas,
      authorize: (kind: ResourceKind, resource: string) => {
        const denied = (capability: string, reason: string): never => {
          pending.push(recordDenial(capability, reason, resource));
          throw capabilityDenied(toolName, capability, reason);
        };
        if (kind !== "web_fetch") {
          // kernel-private state is carved out of every grant, whatever it says
          const n = normalizePath(resource);
          const why = n.ok ? this.privateAreas.reason(n.path) : null;
          if (n.ok && why !== null) denied(`${kind}: ${n.path}`, why);
        }
        const r = this.caps.checkResource(agentId, kind, resource);
        if (r.ok) return r.token;
        return denied(r.capability, r.reason);
      },
    };
    // queued now, so its seq is below anything the run appends (a denial, tool.result)
    const call = this.audit({
      kind: "tool.call",
      agent_id: agentId,
      tool: toolName,
      input: clip(parsed.data),
      token: check.token.id,
      via: opts.via,
    });
    const result = this.toolResult(tool.effect === "none" ? null : (await call).seq, call, agentId, toolName);
    try {
      if (signal.aborted) throw notRunnable(agent, "was stopped");
      const output = await tool.run(ctx, parsed.data);
      await Promise.all(pending);
      await result({ ok: true, output: clip(output) });
      return output;
    } catch (e) {
      await Promise.allSettled(pending);
      const err =
        e instanceof KernelError
          ? e
          : new KernelError(ErrorCode.InternalError, `tool ${toolName} failed: ${(e as Error)?.message ?? String(e)}`);
      await result({ ok: false, error: { code: err.code, message: err.message } });
      throw err;
    }
  }

  /**
   * How invokeTool writes tool.result. `seq`: tool.call is durable (the
   * write-ahead), it is awaited alone. null: tool.call is only appended;
   * tool.result is linked to it (call_seq set to its seq when sealed, the
   * same group commit) and both are awaited: a failed tool.call rejects
   * tool.result with the same error.
   */
  private toolResult(
    seq: number | null,
    call: Promise<{ seq: number }>,
    agentId: string,
    toolName: string,
  ): (r: { ok: boolean; [field: string]: unknown }) => Promise<unknown> {
    if (seq === null) call.catch(() => {}); // handled: awaited with tool.result
    return (r) => {
      const event = { kind: "tool.result" as const, agent_id: agentId, tool: toolName, ...r };
      if (seq !== null) return this.audit({ ...event, call_seq: seq });
      const to = call as Promise<{ seq: number; hash: string }>;
      return Promise.all([call, this.opts.audit.append(event, { field: "call_seq", to })]);
    };
  }

  // ---- messages ----------------------------------------------------------

  async sendMessage(fromAgentId: string, to: string, message: string): Promise<{ delivered: boolean; to: string }> {
    const from = this.procs.get(fromAgentId);
    let r: ReturnType<typeof route>;
    try {
      r = route(this.procs, from, to);
    } catch (e) {
      await this.auditDenial({ kind: "message.denied", agent_id: fromAgentId, to, reason: (e as Error).message });
      throw e;
    }
    // recorded durably before the recipient can see it
    try {
      await this.audit({
        kind: "message.send",
        agent_id: fromAgentId,
        to: r.target.id,
        bytes: Buffer.byteLength(message),
      });
    } catch (e) {
      r.release();
      throw notRecorded("message.send", "the message was not delivered", e);
    }
    r.deliver(message);
    return { delivered: true, to: r.target.id };
  }

  readMessages(agentId: string, max: number) {
    return this.procs.get(agentId).mailbox.splice(0, max);
  }

  // ---- approvals ---------------------------------------------------------

  listApprovals(): ApprovalInfo[] {
    return this.approvals.list();
  }

  async respondApproval(id: string, decision: "approve" | "deny", reason?: string) {
    return this.approvals.respond(id, decision, reason);
  }
}

/** a change whose audit record could not be written was not made */
function notRecorded(what: string, consequence: string, cause: unknown): KernelError {
  const inner = cause instanceof KernelError ? cause : null;
  return new KernelError(
    ErrorCode.InternalError,
    `${what} was not recorded in the audit log, so ${consequence}: ${(cause as Error)?.message ?? cause}`,
    {
      ...(inner?.data ?? {}),
    },
  );
}

function notRunnable(a: Agent, why: string): KernelError {
  return new KernelError(ErrorCode.AgentNotRunnable, `agent ${a.id} (${a.name}) ${why}`, {
    agent_id: a.id,
    state: a.state,
  });
}

function anySignal(a: AbortSignal, b?: AbortSignal): AbortSignal {
  return b ? AbortSignal.any([a, b]) : a;
}

/** keep audit records bounded: long strings are cut (kernel/cut.ts), long arrays and deep nesting too */
function clip(v: unknown, depth = 0): unknown {
  if (typeof v === "string") return cut(v, AUDIT_STRING_LIMIT);
  if (v === null || typeof v !== "object" || depth > 8) return v;
  if (Array.isArray(v)) return v.slice(0, 256).map((x) => clip(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = clip(x, depth + 1);
  return out;
}
