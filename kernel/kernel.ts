// Kernel: the one implementation of AgentServices. It owns the process
// table, the capability table, the tool registry, the approval queue and the
// audit log, and is the only code that changes them: they are private, and
// every front end holds the kernel as AgentServices only. Every action is
// audited durably before its result is returned.
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify as yamlStringify } from "yaml";
import type { Logger } from "pino";
import { ApprovalQueue, type ApprovalQueueOptions } from "./approval/index.ts";
import type { AuditLog, AuditQuery } from "./audit/index.ts";
import {
  CapabilityTable,
  grantFromManifest,
  mcpToolName,
  normalizePath,
  parseCapability,
  type ResourceKind,
  type Token,
  type TokenSpec,
} from "./caps/index.ts";
import { PrivateAreas } from "./caps/private.ts";
import { KernelConfigSchema, parseKernelConfig, type KernelConfig } from "./config.ts";
import { ManifestLayers } from "./manifest/store.ts";
import { writeFileAtomic } from "./sys/files.ts";
import { describe as describeYaml, PositionedYaml } from "./manifest/yaml.ts";
import { cut } from "./cut.ts";
import { fsList, fsRead, type FsListResult, type FsReadResult } from "./fs.ts";
import { capabilityDenied, ErrorCode, invalidParams, KernelError, noSuchAgent } from "./errors.ts";
import { describeZodIssues } from "./zod.ts";
import { deadlockRefused, route, waitCycle } from "./ipc/index.ts";
import { repairConversation, type AgentRuntime, type Inference, type RunInput, type RunJournal } from "./llm/index.ts";
import type { ConversationMessage } from "./llm/providers/types.ts";
import { AgentStore, type InboxBody, type InboxOutcome, type Sender, type StoredItem } from "./proc/store.ts";
import { Supervisor, type ItemRun } from "./proc/supervisor.ts";
import {
  hasOneSource,
  loadManifest,
  ManifestCache,
  MANIFEST_NAME,
  ONE_SOURCE_MESSAGE,
  parseDuration,
  servedMethods,
  type Manifest,
} from "./manifest/index.ts";
import { AgentRecord, newAgentId, ProcessTable, RESULTS_LIMIT, type Agent, type InboxItem } from "./proc/index.ts";
import type {
  AgentInfo,
  AgentServices,
  AgentStatus,
  AgentOutputEvent,
  ApprovalInfo,
  AuditEventInput,
  CallRequest,
  ConfigApplyResult,
  InboxResult,
  InvokeOptions,
  ReachableMethod,
  KernelEvent,
  ManifestDeleteResult,
  ManifestInfo,
  ManifestPutResult,
  MemoryRecordInfo,
  MemoryScope,
  MemorySearchRequest,
  RunOptions,
  RunResult,
  SpawnRequest,
  SpawnResult,
  SystemCounts,
  ToolDescription,
  WatchEvent,
  WatchTopic,
} from "./services.ts";
import { ToolRegistry, type ToolLimits } from "./tools/index.ts";
import {
  contextWindowFor,
  embeddingsClient,
  isOwnNamespace,
  memorySystemPrompt,
  MemoryService,
  ownNamespace,
  wire,
} from "./memory/index.ts";
import type { RunMemory } from "./llm/loop.ts";
import { Journal, shown as shownState, type PathChange } from "./journal/index.ts";
import { runRewind, settleByLooking, type RewindResult } from "./journal/rewind.ts";
import { McpServers } from "./mcp/client.ts";

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
  /** init mode refuses stdio MCP servers (no programs to run); default host */
  mode?: "host" | "init";
  version?: string;
  /** reconnect backoff of external MCP servers (tests shorten it) */
  mcpBackoffMs?: { base: number; max: number };
}

/** UTF-8 bytes of one string of a tool's input or output in its audit record */
const AUDIT_STRING_LIMIT = 4096;

/** approval_required names the tool, its effect class, or (an MCP tool) its server's mcp.SERVER.* */
function needsApproval(required: ReadonlySet<string>, tool: string, effect: string): boolean {
  if (required.has(tool) || required.has(effect)) return true;
  const m = mcpToolName(tool);
  return m !== null && required.has(`mcp.${m.server}.*`);
}

/** tools whose call after a crash is made again instead of reported as interrupted: they attach by their call key */
const REATTACH: ReadonlySet<string> = new Set(["agent_call"]);

export class Kernel implements AgentServices {
  private readonly procs: ProcessTable;
  private readonly caps = new CapabilityTable();
  private readonly privateAreas: PrivateAreas;
  private readonly tools = new ToolRegistry();
  private readonly approvals: ApprovalQueue;
  private readonly inference: Inference | null;
  private readonly limits: ToolLimits;
  private readonly listeners = new Set<(event: KernelEvent) => void>();
  /** persistent agents' state (<data>/state/agents.db), opened at recover() or the first persistent spawn */
  private storeHandle: AgentStore | null = null;
  private readonly supervisor: Supervisor;
  /** agent memory: the episodic store, pinned blocks, summaries (<data>/state/memory.db) */
  private readonly memory: MemoryService;
  /** the pre-images of reversible effects (<data>/state/journal) */
  private readonly journal: Journal;
  /** external MCP servers: their tools are registered as mcp.SERVER.TOOL (kernel/mcp/client.ts) */
  readonly mcp: McpServers;

  constructor(private readonly opts: KernelOptions) {
    // every per-agent structure is bounded by the process table's bound
    // a stopped agent the table forgets takes its own memory with it
    this.procs = new ProcessTable(1000, (id) => {
      this.caps.forget(id);
      this.memory.forget(id, "the stopped agent was forgotten");
    });
    this.privateAreas = new PrivateAreas({
      dataDir: opts.dataDir,
      configDir: opts.configDir,
      keyFiles: opts.keyFiles,
      logFiles: opts.logFiles,
    });
    this.approvalOptions = {
      dataDir: opts.dataDir,
      timeoutMs: parseDuration(opts.config.approval.timeout)!,
      audit: (e) => this.audit(e),
      onRequested: (info) => this.publish({ method: "approval.requested", params: info }),
      onPersistError: (err) =>
        opts.log.error({ err }, "could not write approvals/pending.json (retried at the next change)"),
    };
    this.approvals = new ApprovalQueue(this.approvalOptions);
    const t = opts.config.tools;
    this.limits = {
      fileReadMaxBytes: t.file_read_max_bytes,
      webFetchMaxBytes: t.web_fetch_max_bytes,
      webFetchTimeoutMs: parseDuration(t.web_fetch_timeout)!,
      webFetchMaxRedirects: t.web_fetch_max_redirects,
    };
    const sv = opts.config.supervision;
    this.supervisor = new Supervisor(
      {
        runItem: (a, item) => this.runItem(a, item),
        finish: (a, item, state, outcome) => this.finishItem(a, item, state, outcome),
        persistState: (a) => {
          if (a.manifest.lifecycle === "persistent")
            this.store().setState(a.id, a.state === "failed" ? "failed" : "ready", a.failure);
        },
        audit: (e) => this.audit(e),
        stopAgent: (id) => this.stop(id),
        log: opts.log,
        now: () => Date.now(),
      },
      {
        backoffBaseMs: parseDuration(sv.backoff_base)!,
        backoffMaxMs: parseDuration(sv.backoff_max)!,
        crashLoopFailures: sv.crash_loop_failures,
        crashLoopWindowMs: parseDuration(sv.crash_loop_window)!,
      },
    );
    this.journal = new Journal({
      dir: join(opts.dataDir, "state", "journal"),
      maxBytes: opts.config.journal.max_bytes,
      maxPreImageBytes: opts.config.journal.max_pre_image_bytes,
    });
    const mc = opts.config.memory;
    this.memory = new MemoryService({
      file: join(opts.dataDir, "state", "memory.db"),
      config: mc,
      audit: (e) => this.audit(e),
      log: opts.log,
      embed: mc.embeddings
        ? embeddingsClient({
            spec: mc.embeddings,
            endpoints: opts.config.inference?.providers.openai_compatible ?? [],
            configDir: opts.configDir,
            registerSecret: (s) => opts.audit.registerSecret(s),
            log: opts.log,
          })
        : undefined,
    });
    this.mcp = new McpServers({
      config: opts.config.mcp,
      configDir: opts.configDir,
      mode: opts.mode ?? "host",
      version: opts.version ?? "0",
      tools: this.tools,
      audit: (e) => this.audit(e),
      registerSecret: (s) => opts.audit.registerSecret(s),
      log: opts.log,
      ...(opts.mcpBackoffMs ? { backoffMs: opts.mcpBackoffMs } : {}),
    });
    // last: everything the inference may call is in place
    this.inference = opts.inference?.(this) ?? null;
  }

  /**
   * Once at boot, before serving: audit what a previous run left pending as
   * cancelled. Rejects when the log cannot be written (a full data disk);
   * the leftovers are then kept for the next boot and the kernel serves
   * degraded.
   */
  async recover(): Promise<number> {
    const file = this.storeFile();
    const stored = existsSync(file) ? this.store().agents() : [];
    const resumed = new Set(stored.map((a) => a.id));
    const cancelled = await this.approvals.recover((info) => resumed.has(info.agent_id));
    try {
      await this.recoverJournal();
    } catch (err) {
      this.opts.log.error(
        { err },
        "could not recover the journal (rewinds cut by a crash are finished at the next boot)",
      );
    }
    for (const a of stored) await this.resumeAgent(a);
    // the own memory of an agent of an earlier boot that is not resumed (a session agent) goes
    try {
      this.memory.sweep(new Set(stored.map((a) => a.id)));
    } catch (err) {
      this.opts.log.error({ err }, "could not sweep the memory of agents that were not resumed");
    }
    await this.autostart();
    for (const a of this.procs.all()) if (a.state === "ready") this.supervisor.pump(a);
    return cancelled;
  }

  private storeFile(): string {
    return join(this.opts.dataDir, "state", "agents.db");
  }

  private store(): AgentStore {
    return (this.storeHandle ??= new AgentStore(this.storeFile()));
  }

  /** a persistent agent from the store: same id, its inbox, its usage; its tokens minted again from its manifest */
  private async resumeAgent(a: ReturnType<AgentStore["agents"]>[number]): Promise<void> {
    let manifest: Manifest;
    try {
      manifest = this.manifests.load(a.manifest, this.loadOptions(a.source)).manifest;
    } catch (e) {
      this.opts.log.error({ err: e, agent_id: a.id }, "a persistent agent's manifest no longer loads: not resumed");
      await this.auditDenial({
        kind: "agent.resume",
        agent_id: a.id,
        name: a.name,
        ok: false,
        reason: (e as Error).message,
      });
      return;
    }
    const parent = a.parent_id ? (this.procs.find(a.parent_id) ?? null) : null;
    const id = a.id;
    const tokens = this.caps.mint(id, grantFromManifest(manifest, Date.now()));
    const agent = this.newRecord(id, manifest, parent, a.state === "failed" ? "failed" : "ready");
    agent.failure = a.failure;
    const items = this.store().pending(id);
    const interrupted = items.find((i) => i.state === "running")?.id ?? null;
    try {
      this.inference?.onSpawn({ ...this.runtime(agent), used: a.usage });
    } catch (e) {
      this.opts.log.error({ err: e, agent_id: id }, "could not register a resumed agent with the scheduler");
    }
    try {
      await Promise.all([
        this.audit({
          kind: "agent.resume",
          agent_id: id,
          name: manifest.name,
          ok: true,
          state: agent.state,
          queued: items.length,
          interrupted,
        }),
        this.audit(grantRecord(id, tokens)),
      ]);
    } catch (e) {
      this.inference?.onStop(id);
      this.opts.log.error({ err: e, agent_id: id }, "agent.resume was not recorded: not resumed this boot");
      return;
    }
    for (const it of items) agent.inbox.push(this.itemFrom(it));
    this.initBlocks(agent);
    this.caps.install(id, tokens);
    this.procs.add(agent);
    parent?.children.add(id);
  }

  /** the manifests marked autostart: true and those kernel.yaml lists, each spawned once (a persistent one resumed after) */
  private async autostart(): Promise<void> {
    const names = new Set(this.opts.config.autostart);
    for (const m of this.listManifests()) {
      if (!m.valid) continue;
      try {
        // the parsed field, not the text: "autostart: true" inside a system prompt starts nothing
        const found = this.layers.find(m.name);
        if (!found) continue;
        const parsed = loadManifest(this.layers.read(found), this.loadOptions(found.label));
        if (parsed.autostart) names.add(m.name);
      } catch {
        // listed a moment ago; gone or changed now: nothing to start
      }
    }
    for (const name of names) {
      const key = `autostart:${name}`;
      if (this.storeHandle && this.storeHandle.autostarted(key)) continue;
      try {
        await this.spawn({ name }, undefined, { autostart: key });
      } catch (e) {
        this.opts.log.error({ err: e, name }, "could not autostart an agent");
        await this.auditDenial({
          kind: "spawn.denied",
          agent_id: null,
          name,
          reason: `autostart: ${(e as Error).message}`,
        });
      }
    }
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

  private readonly outputWatchers = new Set<(event: WatchEvent) => void>();

  watch(topics: readonly WatchTopic[], listener: (event: WatchEvent) => void): () => void {
    const offs: (() => void)[] = [];
    if (topics.includes("audit")) {
      offs.push(
        this.opts.audit.watch((line) => {
          try {
            listener({ method: "audit.record", params: JSON.parse(line) });
          } catch (err) {
            this.opts.log.warn({ err }, "an audit watcher failed");
          }
        }),
      );
    }
    if (topics.includes("agent.output")) {
      this.outputWatchers.add(listener);
      offs.push(() => this.outputWatchers.delete(listener));
    }
    return () => {
      for (const off of offs.splice(0)) off();
    };
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
  async spawn(req: SpawnRequest, parentId?: string, internal: { autostart?: string } = {}): Promise<SpawnResult> {
    const { text, source } = this.manifestText(req);
    // agents spawned from one text share its parse (checked against the same tool and agent names)
    const { manifest, sha256 } = this.loadForSpawn(text, source);
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
    const agent: Agent = this.newRecord(id, manifest, parent);
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
    const persistent = manifest.lifecycle === "persistent";
    if (persistent) {
      try {
        this.store().addAgent({
          id,
          name: manifest.name,
          manifest: text,
          source,
          parent_id: agent.parentId,
          created_at: new Date().toISOString(),
          autostart: internal.autostart ?? null,
        });
      } catch (e) {
        this.reserve(parent, -1);
        this.inference?.onStop(id);
        throw notRecorded("the persistent agent's state", "no agent was started", e);
      }
    }
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
        this.audit(grantRecord(id, tokens)),
      ]);
    } catch (e) {
      this.inference?.onStop(id);
      if (persistent) this.forgetStored(id);
      throw notRecorded("agent.spawn", "no agent was started", e);
    } finally {
      this.reserve(parent, -1);
    }
    this.initBlocks(agent);
    this.caps.install(id, tokens);
    this.procs.add(agent);
    parent?.children.add(id);
    return { agent_id: id, name: manifest.name, capabilities: this.caps.capabilityStrings(id) };
  }

  /** the manifest's pinned blocks (a value already there is kept: a resumed agent's edits survive) */
  private initBlocks(a: Agent): void {
    const blocks = a.manifest.memory?.blocks ?? [];
    if (blocks.length === 0) return;
    try {
      this.memory.initBlocks(
        a.id,
        blocks.map((b) => ({ label: b.label, limit: b.limit, value: b.value ?? "" })),
      );
    } catch (err) {
      this.opts.log.error({ err, agent_id: a.id }, "could not set up an agent's pinned blocks");
    }
  }

  /**
   * A spawn's load of its manifest text. loadManifest is a function of the
   * text and of whether each tool and agent name it names is known; so a
   * text loaded before that names no agent (no spawn_child, message_send or
   * call: capability) and whose tools are all still known loads to the same
   * manifest now, and is taken from here without listing the manifest
   * directories (two readdirs) and building the name sets: most of a
   * spawn's own work before its audit record. Anything else goes through
   * the ManifestCache as before.
   */
  private loadForSpawn(text: string, source: string): { manifest: Manifest; sha256: string } {
    const hit = this.spawnLoads.get(text);
    if (hit && hit.tools.every((t) => this.toolKnown(t))) return hit;
    const known = this.loadOptions(source);
    const loaded = this.manifests.load(text, known);
    const m = loaded.manifest;
    const tools = new Set<string>();
    let namesAgents = m.spawn_child.length > 0 || m.message_send.length > 0;
    for (const entry of m.capabilities) {
      const cap = parseCapability(typeof entry === "string" ? entry : entry.capability);
      if (cap.kind === "tool") tools.add(cap.tool);
      else if (cap.kind === "call") namesAgents = true;
    }
    // an approval_required entry the tools did not know was an effect class: valid whatever tools there are
    for (const t of m.approval_required) if (known.knownTools.has(t)) tools.add(t);
    if (!namesAgents) {
      if (this.spawnLoads.size >= 64) this.spawnLoads.delete(this.spawnLoads.keys().next().value!);
      this.spawnLoads.set(text, { ...loaded, tools: [...tools] });
    }
    return loaded;
  }

  /** texts loadForSpawn may take without a fresh check, with the tool names each load checked */
  private readonly spawnLoads = new Map<string, { manifest: Manifest; sha256: string; tools: string[] }>();

  /** a kernel tool, or mcp.S.* / mcp.S.<any> of a configured MCP server (knownTools().has) */
  private toolKnown(name: string): boolean {
    if (this.tools.get(name) !== undefined) return true;
    const m = mcpToolName(name);
    return m !== null && this.mcp.names().includes(m.server);
  }

  /** what a manifest is checked against, as a spawn checks it: the kernel's tools and the known agent names */
  private loadOptions(source: string, knownAgents: ReadonlySet<string> = this.layers.names()) {
    return { knownTools: this.knownTools(), knownAgents, source };
  }

  /** the kernel's tools, and mcp.S.* / mcp.S.<any> of every configured MCP server (its list is dynamic) */
  private knownTools(): ReadonlySet<string> {
    const known = this.tools.names();
    for (const s of this.mcp.names()) known.add(`mcp.${s}.*`);
    const toolKnown = (name: string) => this.toolKnown(name);
    return new (class extends Set<string> {
      override has(name: string): boolean {
        return toolKnown(name);
      }
    })(known);
  }

  /** an agent's table entry: its approvals (the parent's too) and its depth under the parent */
  private newRecord(id: string, manifest: Manifest, parent: Agent | null, state?: "ready" | "failed"): Agent {
    return new AgentRecord({
      id,
      name: manifest.name,
      manifest,
      approvalRequired: this.approvalSet(manifest, parent),
      parentId: parent?.id ?? null,
      depth: parent ? parent.depth + 1 : 0,
      ...(state ? { state } : {}),
    });
  }

  private forgetStored(id: string): void {
    try {
      this.storeHandle?.removeAgent(id);
    } catch (err) {
      this.opts.log.error({ err, agent_id: id }, "could not remove a persistent agent's state");
    }
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
    const found = this.layers.find(name);
    if (found) return { text: this.layers.read(found), source: found.label };
    throw new KernelError(
      ErrorCode.InvalidManifest,
      `no manifest named "${name}" in ${this.layers.configDir} or ${this.layers.dataDir}`,
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

  /** the manifests of both layers (the data disk's over the config partition's), each checked as spawn would check it */
  listManifests(): ManifestInfo[] {
    const known = this.layers.names();
    return this.layers.list().map((l) => {
      const where: Omit<ManifestInfo, "valid"> = { name: l.name, file: l.file, source: l.source };
      if (l.overrides) where.overrides = true;
      try {
        const m = loadManifest(this.layers.read(l), this.loadOptions(l.label, known));
        if (m.name !== l.name) return { ...where, valid: false, error: `name "${m.name}" differs from the file name` };
        return { ...where, valid: true };
      } catch (e) {
        return { ...where, valid: false, error: (e as Error).message };
      }
    });
  }

  // ---- live configuration: manifests, kernel.yaml, secrets ---------------

  private layersHandle: ManifestLayers | null = null;
  /** the manifests by name: <data>/state/manifests over <config>/manifests */
  private get layers(): ManifestLayers {
    return (this.layersHandle ??= new ManifestLayers(this.opts.configDir, this.opts.dataDir));
  }
  /** the approval queue's options, kept to change approval.timeout live (read when an approval is created) */
  private approvalOptions!: ApprovalQueueOptions;

  async putManifest(name: string, text: string): Promise<ManifestPutResult> {
    if (!MANIFEST_NAME.test(name))
      throw invalidParams(`name: "${name}" is not a manifest name (lower-case letters, digits, '-', '_')`);
    const source = `state/manifests/${name}.yaml`;
    // exactly as a spawn by name will check it, this name counted among the known agents
    const m = loadManifest(text, this.loadOptions(source, new Set([...this.layers.names(), name])));
    if (m.name !== name) {
      const parsed = PositionedYaml.parse(text);
      const at =
        "error" in parsed
          ? { message: "", path: "name", line: 1, column: 1 }
          : parsed.yaml.at(["name"], `name "${m.name}" differs from the name it is put as ("${name}")`);
      throw new KernelError(ErrorCode.InvalidManifest, `invalid manifest: ${describeYaml(source, at)}`, {
        source,
        path: at.path,
        line: at.line,
        column: at.column,
      });
    }
    const overrides = this.layers.inConfig(name);
    const sha256 = createHash("sha256").update(text).digest("hex");
    await this.audit({
      kind: "manifest.put",
      agent_id: null,
      name,
      bytes: Buffer.byteLength(text),
      sha256,
      overrides,
    });
    this.layers.put(name, text);
    return { name, source: "data", overrides, file: source, sha256 };
  }

  async deleteManifest(name: string): Promise<ManifestDeleteResult> {
    if (!MANIFEST_NAME.test(name))
      throw invalidParams(`name: "${name}" is not a manifest name (lower-case letters, digits, '-', '_')`);
    const file = this.layers.dataFile(name);
    const inConfig = this.layers.inConfig(name);
    if (file === null) {
      if (inConfig)
        throw invalidParams(
          `"${name}" is only in the config partition (${join(this.layers.configDir, name)}.yaml), which is the operator's: ` +
            "manifest.delete removes only what manifest.put wrote; edit the config partition to remove it",
          { name, source: "config" },
        );
      throw invalidParams(`no manifest named "${name}" was put (manifest.put)`, { name });
    }
    let sha256: string | null = null;
    try {
      sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
    } catch {
      // unreadable: removed all the same
    }
    await this.audit({ kind: "manifest.delete", agent_id: null, name, sha256, config_remains: inConfig });
    this.layers.remove(name);
    return { name, deleted: true, source: inConfig ? "config" : null };
  }

  private kernelYamlPath(): string {
    return join(this.opts.configDir, "kernel.yaml");
  }

  getConfig(): { yaml: string; source: "kernel.yaml" | "defaults"; path: string } {
    const path = this.kernelYamlPath();
    if (existsSync(path)) return { yaml: readFileSync(path, "utf8"), source: "kernel.yaml", path };
    return { yaml: yamlStringify(KernelConfigSchema.parse({})), source: "defaults", path };
  }

  async applyConfig(text: string): Promise<ConfigApplyResult> {
    const path = this.kernelYamlPath();
    const next = parseKernelConfig(text, "kernel.yaml");
    const cur = this.opts.config as Record<string, unknown>;
    const nxt = next as Record<string, unknown>;
    const applied: string[] = [];
    const atReboot: string[] = [];
    const sections = [...new Set([...Object.keys(cur), ...Object.keys(nxt)])].sort();
    for (const s of sections) {
      if (JSON.stringify(cur[s]) === JSON.stringify(nxt[s])) continue;
      (liveSection(s, this.opts.config, next) ? applied : atReboot).push(s);
    }
    const sha256 = createHash("sha256").update(text).digest("hex");
    await this.withConfigWritable(async () => {
      await this.audit({
        kind: "config.apply",
        agent_id: null,
        path,
        bytes: Buffer.byteLength(text),
        sha256,
        applied,
        at_reboot: atReboot,
      });
      writeFileAtomic(path, text);
    });
    for (const s of applied) {
      if (s === "approval") this.approvalOptions.timeoutMs = parseDuration(next.approval.timeout)!;
      if (s === "log") this.opts.log.level = next.log.level;
      cur[s] = nxt[s];
    }
    return { applied, at_reboot: atReboot, path, sha256 };
  }

  /**
   * Runs f (which writes under the config directory) with it writable. The
   * appliance mounts AAOS-CFG read-only: it is remounted read-write for the
   * write and read-only again after, so the partition is writable only
   * while the kernel writes it. Nothing is audited when it cannot be made
   * writable (-32603, the reason).
   */
  private async withConfigWritable(f: () => Promise<void>): Promise<void> {
    const dir = this.opts.configDir;
    let remounted = false;
    try {
      accessSync(dir, fsConstants.W_OK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EROFS")
        throw new KernelError(ErrorCode.InternalError, `${dir} is not writable: ${(e as Error).message}`);
      try {
        const { mount, MS_REMOUNT, MS_NOSUID, MS_NODEV, MS_NOEXEC } = await import("./sys/mount.ts");
        mount("none", dir, "vfat", MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC);
        remounted = true;
      } catch (err) {
        throw new KernelError(
          ErrorCode.InternalError,
          `${dir} is mounted read-only and could not be remounted read-write: ${(err as Error).message}`,
        );
      }
    }
    try {
      await f();
    } finally {
      if (remounted) {
        try {
          const { mount, MS_REMOUNT, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC } = await import("./sys/mount.ts");
          mount("none", dir, "vfat", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
        } catch (err) {
          this.opts.log.error({ err, dir }, "could not remount the config partition read-only");
        }
      }
    }
  }

  async setSecret(name: string, value: string): Promise<{ name: string; bytes: number; file: string }> {
    if (!SECRET_NAME.test(name) || /^\.+$/.test(name))
      throw invalidParams(`name: "${name}" is not a secret name (1 to 64 of a-z, 0-9, '_', '.', '-'; not only dots)`);
    // redacted from every audit record from now on, before anything could carry it
    this.opts.audit.registerSecret(value);
    this.opts.audit.registerSecret(value.trim());
    const bytes = Buffer.byteLength(value);
    await this.withConfigWritable(async () => {
      await this.audit({ kind: "secret.set", agent_id: null, name, bytes });
      const dir = join(this.opts.configDir, "secrets");
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(join(dir, name), value, 0o600);
    });
    return { name, bytes, file: `secrets/${name}` };
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

  /** set by shutdown(): a persistent agent stopped from now on is suspended, its state kept for the next boot */
  private shuttingDown = false;

  /**
   * The kernel is going down (SIGTERM, system.shutdown, poweroff): every
   * live agent is stopped as stop() does (agent.stop audited, tokens
   * revoked, what is in flight aborted), but a persistent agent's state on
   * disk is kept as the last durable step left it (identity, conversation,
   * inbox, the run in progress), so the next boot resumes it with the same
   * id; a session or ephemeral agent is gone. Then the store is closed.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.approvals.suspend((id) => this.procs.find(id)?.manifest.lifecycle === "persistent");
    for (const a of this.procs.all()) {
      if (a.state === "stopped") continue;
      await this.stop(a.id).catch((err) => this.opts.log.error({ err, agent_id: a.id }, "could not stop an agent"));
    }
    try {
      this.storeHandle?.close();
    } catch (err) {
      this.opts.log.error({ err }, "could not close the persistent agents' store");
    }
    this.storeHandle = null;
    this.memory.close();
    await this.mcp.close().catch((err) => this.opts.log.error({ err }, "could not close the MCP servers"));
    // every database on /data closed: the unmount that follows finds no open file
    try {
      this.journal.close();
    } catch (err) {
      this.opts.log.error({ err }, "could not close the journal");
    }
  }

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
        ...(this.shuttingDown && agent.manifest.lifecycle === "persistent" ? { suspended: true } : {}),
      });
    } catch (e) {
      throw notRecorded("agent.stop", `agent ${agent.id} is still running`, e);
    }
    // revoke first: nothing still in flight may use a token after this line
    this.caps.revokeAll(agent.id);
    this.procs.markStopped(agent);
    // the abort reaches everything in flight: inference, tools, and pending approvals (their wait listens on it)
    // (an idle agent never built its controller: nothing waits, and no Error is built for it)
    agent.abortWith(() => new KernelError(ErrorCode.AgentNotRunnable, `agent ${agent.id} was stopped`));
    this.inference?.onStop(agent.id);
    // what waited in its inbox is answered: the agent is gone
    const gone = {
      error: { code: ErrorCode.AgentNotRunnable, message: `agent ${agent.id} (${agent.name}) was stopped` },
    };
    for (const item of [...agent.inbox]) {
      // a shutdown leaves the inbox as it is on disk: the next boot takes it up again
      if (this.shuttingDown) break;
      // the run in progress ends itself (stop_reason "stopped") and its worker settles it
      if (item === agent.current || item.state === "running") continue;
      item.abort.abort();
      // finished like any item: a queued request gets its agent.response record
      void this.finishItem(agent, item, "cancelled", gone);
    }
    // a shutdown suspends a persistent agent: resumed at the next boot; an explicit stop forgets it
    if (agent.manifest.lifecycle === "persistent" && !this.shuttingDown) this.forgetStored(agent.id);
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
      lifecycle: a.manifest.lifecycle,
      restart: a.manifest.restart,
      inbox: { depth: a.inbox.filter((i) => i.state === "queued").length, current: a.current?.id ?? null },
      failure: a.failure,
      restarts: a.restarts,
      serves: [...servedMethods(a.manifest).keys()],
    };
  }

  listTools(agentId?: string): ToolDescription[] {
    if (agentId === undefined) return this.tools.describeAll();
    const a = this.procs.get(agentId);
    if (a.state === "stopped") return [];
    return this.tools.describeAll().filter((t) => this.caps.mayCallTool(a.id, t.name));
  }

  // ---- run ---------------------------------------------------------------

  /**
   * The synchronous form of send: the run is an inbox item like any other
   * (so a persistent agent's run is resumed after a crash), refused when the
   * agent is busy; the caller waits for its end.
   */
  async run(agentId: string, message: string, opts: RunOptions = {}): Promise<RunResult> {
    const agent = this.procs.get(agentId);
    if (agent.state === "stopped") throw notRunnable(agent, "is stopped");
    if (agent.state === "failed")
      throw notRunnable(agent, `failed: ${agent.failure?.reason ?? "unknown"} (agent.restart brings it back)`);
    if (agent.state !== "ready" || agent.inbox.length > 0) throw notRunnable(agent, "is busy with another run");
    await this.needInference(agentId);
    let result: RunResult | null = null;
    const done = new Promise<InboxResult>((resolve) => {
      const item = this.newItem({ kind: "message", text: message, from: OPERATOR }, "msg", true);
      item.watchers.push({
        ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
        onDone: resolve,
      });
      (item as { run?: (r: RunResult) => void }).run = (r) => (result = r);
      void this.enqueue(agent, item, null).catch((e) =>
        resolve({ agent_id: agentId, message_id: item.id, state: "failed", error: wireError(e) }),
      );
    });
    const r = await done;
    if (r.state !== "done" || !result) throw errorFrom(r.error, agent);
    return result;
  }

  private async needInference(agentId: string): Promise<void> {
    if (this.inference) return;
    await this.auditDenial({ kind: "inference.error", agent_id: agentId, reason: "no inference provider configured" });
    throw new KernelError(ErrorCode.InferenceFailed, "no inference provider configured", { agent_id: agentId });
  }

  // ---- inbox: send, typed calls, notifications ---------------------------

  async send(
    agentId: string,
    message: string,
    opts: { onOutput?: (e: AgentOutputEvent) => void; onDone?: (r: InboxResult) => void } = {},
  ): Promise<{ agent_id: string; message_id: string }> {
    const agent = this.procs.get(agentId);
    if (agent.state === "stopped") throw notRunnable(agent, "is stopped");
    await this.needInference(agentId);
    const item = this.newItem({ kind: "message", text: message, from: OPERATOR }, "msg");
    item.watchers.push(opts);
    await this.enqueue(agent, item, {
      kind: "agent.send",
      agent_id: null,
      to: agent.id,
      message_id: item.id,
      bytes: Buffer.byteLength(message),
    });
    return { agent_id: agent.id, message_id: item.id };
  }

  result(agentId: string, messageId: string): InboxResult {
    const agent = this.procs.get(agentId);
    const live = agent.inbox.find((i) => i.id === messageId);
    if (live) return toResult(agent.id, live);
    const kept = agent.results.get(messageId);
    if (kept) return kept;
    if (agent.manifest.lifecycle === "persistent") {
      const row = this.store().item(messageId);
      if (row && row.agent_id === agent.id)
        return { agent_id: agent.id, message_id: row.id, state: row.state, ...(row.outcome ?? {}) };
    }
    throw invalidParams(
      `message_id: ${agent.name} (${agent.id}) has no message ${messageId} (the last ${RESULTS_LIMIT} are kept, 1,000 for a persistent agent)`,
    );
  }

  async call(from: string | null, req: CallRequest): Promise<unknown> {
    const { caller, target, params } = this.checkCall(from, req);
    // nobody would answer before the deadline: said at once instead of after it
    if (target.state === "failed")
      throw notRunnable(target, `failed: ${target.failure?.reason ?? "unknown"} (agent.restart brings it back)`);
    const chain = chainOf(caller);
    // the caller's own deadline bounds this call
    const now = Date.now();
    const own = caller?.current?.body.kind === "request" ? caller.current.body.deadline : Infinity;
    const limit = parseDuration(this.opts.config.ipc.call_timeout)!;
    const deadline = Math.min(now + Math.min(req.timeoutMs ?? limit, limit), own);
    const id = req.key
      ? "call-" +
        createHash("sha256")
          .update(`${from ?? "operator"}:${req.key}`)
          .digest("hex")
          .slice(0, 24)
      : newId("call");
    // the same key again (a caller resumed after a crash): attach to the first call instead of asking twice
    const earlier = target.inbox.find((i) => i.id === id) ?? null;
    if (!earlier) {
      const stored = req.key && target.manifest.lifecycle === "persistent" ? this.store().item(id) : null;
      if (stored && stored.outcome)
        return this.callOutcome(target, req.method, toResult(target.id, this.itemFrom(stored)));
    }
    if (caller) {
      const cycle = waitCycle(this.procs, caller.id, target.id);
      if (cycle) {
        const err = deadlockRefused(this.procs, cycle);
        await this.auditDenial({
          kind: "message.denied",
          agent_id: caller.id,
          to: target.id,
          method: req.method,
          reason: err.message,
        });
        throw err;
      }
      // waiting from here, in the same synchronous step as the check: a call the other way
      // made while this one is being recorded sees the edge and is refused
      caller.waitingOn = target.id;
    }
    try {
      let item: InboxItem;
      if (earlier) item = earlier;
      else {
        const body: InboxBody = {
          kind: "request",
          method: req.method,
          params,
          from: sender(caller),
          chain,
          deadline,
        };
        item = this.newItem(body, "call", false, id);
        await this.enqueue(target, item, {
          kind: "agent.request",
          agent_id: caller?.id ?? null,
          to: target.id,
          method: req.method,
          call_id: id,
          ...digest(params),
          chain,
          deadline: new Date(deadline).toISOString(),
        });
      }
      const r = await this.awaitItem(target, item, deadline, req.signal);
      return this.callOutcome(target, req.method, r);
    } finally {
      if (caller && caller.waitingOn === target.id) caller.waitingOn = null;
    }
  }

  async notify(from: string | null, req: CallRequest): Promise<{ delivered: true; message_id: string }> {
    const { caller, target, params } = this.checkCall(from, req);
    const chain = chainOf(caller);
    const item = this.newItem({ kind: "notify", method: req.method, params, from: sender(caller), chain }, "ntf");
    await this.enqueue(target, item, {
      kind: "agent.notify",
      agent_id: caller?.id ?? null,
      to: target.id,
      method: req.method,
      message_id: item.id,
      ...digest(params),
      chain,
    });
    return { delivered: true, message_id: item.id };
  }

  async restart(agentId: string): Promise<{ agent_id: string; state: AgentInfo["state"] }> {
    const agent = this.procs.get(agentId);
    if (agent.state !== "failed") throw notRunnable(agent, `is ${agent.state}, not failed`);
    try {
      await this.audit({
        kind: "agent.restart",
        agent_id: agent.id,
        by: "operator",
        reason: agent.failure?.reason ?? null,
      });
    } catch (e) {
      throw notRecorded("agent.restart", `agent ${agent.id} is still failed`, e);
    }
    agent.state = "ready";
    agent.failures = [];
    if (agent.manifest.lifecycle === "persistent") this.store().setState(agent.id, "ready", agent.failure);
    this.supervisor.pump(agent);
    return { agent_id: agent.id, state: agent.state };
  }

  reachable(agentId: string): { methods: ReachableMethod[]; spawn_child: string[] } {
    const a = this.procs.get(agentId);
    const methods: ReachableMethod[] = [];
    const seen = new Set<string>();
    if (a.state !== "stopped") {
      for (const t of this.procs.all()) {
        if (t.state === "stopped" || t.id === a.id || seen.has(t.name)) continue;
        const served = servedMethods(t.manifest);
        if (served.size === 0) continue;
        seen.add(t.name);
        for (const [method, m] of served) {
          if (!this.caps.mayCall(a.id, t.name, method)) continue;
          methods.push({
            agent_id: t.id,
            agent: t.name,
            method,
            description: m.description,
            params: m.paramsSchema,
            result: m.resultSchema,
          });
        }
      }
    }
    return { methods, spawn_child: a.state === "stopped" ? [] : [...a.manifest.spawn_child] };
  }

  /** who may call what: the recipient live and serving the method, the params valid (never delivered otherwise) */
  private checkCall(from: string | null, req: CallRequest) {
    const caller = from === null ? null : this.procs.get(from);
    const target = this.procs.find(req.to) ?? this.procs.byName(req.to)[0];
    if (!target || target.state === "stopped")
      throw new KernelError(ErrorCode.NoSuchAgent, `no running agent "${req.to}"`, { to: req.to });
    const methods = servedMethods(target.manifest);
    const served = methods.get(req.method);
    if (!served)
      throw new KernelError(
        ErrorCode.MethodNotFound,
        `${target.name} does not serve ${req.method} (it serves: ${[...methods.keys()].join(", ") || "nothing"})`,
        { to: target.id, method: req.method },
      );
    const parsed = served.params.safeParse(req.params ?? {});
    if (!parsed.success)
      throw invalidParams(describeZodIssues(parsed.error, "params"), { to: target.id, method: req.method });
    if (!this.inference)
      throw new KernelError(ErrorCode.InferenceFailed, "no inference provider configured", { agent_id: target.id });
    return { caller, target, served, params: parsed.data };
  }

  private callOutcome(target: Agent, method: string, r: InboxResult): unknown {
    if (r.state === "done" && r.error === undefined) return r.result;
    // the recipient was stopped while it ran the request: its run ended unanswered because of the stop
    if (target.state === "stopped" && r.error?.code !== ErrorCode.TimedOut)
      throw notRunnable(target, `was stopped before it answered ${method}`);
    throw errorFrom(r.error, target, `${target.name}.${method}`);
  }

  /** the item's end, or the deadline (cancelled, -32009), or the caller going away (cancelled) */
  private awaitItem(agent: Agent, item: InboxItem, deadline: number, signal?: AbortSignal): Promise<InboxResult> {
    return new Promise<InboxResult>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | null = null;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const cancel = (error: { code: number; message: string }) => {
        cleanup();
        // a shutdown suspends the call: the request stays in the recipient's durable inbox and the
        // caller, resumed at the next boot, attaches to it again by its key
        if (!this.shuttingDown && (item.state === "queued" || item.state === "running")) {
          item.abort.abort();
          void this.finishItem(agent, item, "cancelled", { error });
        }
        resolve({ agent_id: agent.id, message_id: item.id, state: "cancelled", error });
      };
      const onAbort = () =>
        cancel({ code: ErrorCode.AgentNotRunnable, message: "the caller stopped; the call was cancelled" });
      item.watchers.push({
        onDone: (r) => {
          cleanup();
          resolve(r);
        },
      });
      if (item.state !== "queued" && item.state !== "running") {
        cleanup();
        return resolve(toResult(agent.id, item));
      }
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const ms = deadline - Date.now();
      timer = setTimeout(
        () =>
          cancel({
            code: ErrorCode.TimedOut,
            message: `${agent.name} did not answer within ${Math.max(0, Math.round(ms))} ms; the call was cancelled`,
          }),
        Math.max(0, ms),
      );
    });
  }

  private newItem(body: InboxBody, prefix: string, sync = false, id = newId(prefix)): InboxItem {
    return {
      id,
      body,
      created_at: new Date().toISOString(),
      state: "queued",
      outcome: null,
      abort: new AbortController(),
      watchers: [],
      ...(sync ? { sync } : {}),
    };
  }

  private itemFrom(it: StoredItem): InboxItem {
    return {
      id: it.id,
      body: it.body,
      created_at: it.created_at,
      state: it.state === "running" ? "queued" : it.state,
      outcome: it.outcome,
      abort: new AbortController(),
      watchers: [],
    };
  }

  /**
   * Room checked and taken in one synchronous step; the record durable
   * (the audit record, and the store for a persistent agent) before the
   * item is visible to the agent's worker and before the caller's answer.
   */
  private async enqueue(agent: Agent, item: InboxItem, record: AuditEventInput | null): Promise<void> {
    const max = this.opts.config.limits.max_inbox;
    const waiting = agent.inbox.length + (this.held.get(agent) ?? 0);
    if (waiting >= max) {
      const err = new KernelError(
        ErrorCode.AgentNotRunnable,
        `inbox of ${agent.name} (${agent.id}) is full (${max} messages)`,
        {
          agent_id: agent.id,
          state: agent.state,
          limit: max,
        },
      );
      await this.auditDenial({
        kind: "message.denied",
        agent_id: item.body.from.agent_id,
        to: agent.id,
        ...(item.body.kind === "message" ? {} : { method: item.body.method }),
        reason: err.message,
      });
      throw err;
    }
    this.held.set(agent, (this.held.get(agent) ?? 0) + 1);
    try {
      if (record) {
        try {
          await this.audit(record);
        } catch (e) {
          throw notRecorded(record.kind, "the message was not queued", e);
        }
      }
      if (agent.state === "stopped") throw notRunnable(agent, "was stopped");
      if (agent.manifest.lifecycle === "persistent") {
        try {
          this.store().enqueue({ id: item.id, agent_id: agent.id, body: item.body, created_at: item.created_at });
        } catch (e) {
          throw notRecorded("the inbox item", "the message was not queued", e);
        }
      }
    } finally {
      const n = (this.held.get(agent) ?? 1) - 1;
      if (n > 0) this.held.set(agent, n);
      else this.held.delete(agent);
    }
    agent.inbox.push(item);
    if (agent.state === "ready") this.supervisor.pump(agent);
  }

  private readonly held = new WeakMap<Agent, number>();

  /** one item run: the conversation, the resume record, the reply tool of a request; never throws */
  private async runItem(agent: Agent, item: InboxItem): Promise<ItemRun> {
    if (!this.inference)
      return {
        ok: false,
        reason: "no inference provider configured",
        outcome: { error: { code: ErrorCode.InferenceFailed, message: "no inference provider configured" } },
      };
    const persistent = agent.manifest.lifecycle === "persistent";
    let history: ConversationMessage[] = [];
    const resumed: ConversationMessage[] = [];
    let journal: RunJournal;
    if (persistent) {
      const store = this.store();
      for (const t of store.turns(agent.id)) {
        if (t.item_id === item.id) resumed.push(t.message);
        else history.push(t.message);
      }
      journal = {
        append: (m) => store.addTurn(agent.id, item.id, m),
        step: (u) => store.step(item.id, u),
        setStep: (u, st) => store.setStep(item.id, u, st),
      };
      // durable before the run starts (the worker marked it running in memory): the next boot knows it was interrupted
      store.setItem(item.id, "running");
    } else {
      const mem = (item.memory ??= { turns: [] as ConversationMessage[], steps: new Map() });
      resumed.push(...mem.turns);
      journal = {
        append: (m) => void mem.turns.push(m),
        step: (u) => mem.steps.get(u),
        setStep: (u, st) => void mem.steps.set(u, st),
      };
    }
    const body = item.body;
    const input: RunInput = {
      message: messageText(body),
      history,
      resumed,
      journal,
      itemId: item.id,
      reattach: REATTACH,
      signal: item.abort.signal,
      memory: this.runMemory(agent, item, persistent),
    };
    if (body.kind === "request") {
      const served = servedMethods(agent.manifest).get(body.method);
      if (served) {
        // a tool's input is an object: a result of another type is replied as {result: VALUE}
        const schema = served.resultSchema as Record<string, unknown>;
        const wrapped = schema.type !== "object";
        input.reply = {
          method: body.method,
          description: served.description || `the result of ${body.method}`,
          schema: wrapped ? { type: "object", properties: { result: schema }, required: ["result"] } : schema,
          unwrap: wrapped ? (v) => (v as { result?: unknown } | null)?.result : (v) => v,
          check: (v) => {
            const r = served.result.safeParse(wrapped ? (v as { result?: unknown } | null)?.result : v);
            return r.success ? null : describeZodIssues(r.error, "result");
          },
        };
      }
    }
    const onOutput = (e: AgentOutputEvent) => {
      for (const w of this.outputWatchers) {
        try {
          w({ method: "agent.output", params: e });
        } catch (err) {
          this.opts.log.warn({ err }, "an agent.output watcher failed");
        }
      }
      for (const w of item.watchers) {
        try {
          w.onOutput?.(e);
        } catch (err) {
          this.opts.log.warn({ err }, "an agent.output watcher failed");
        }
      }
      if (e.type === "turn" && persistent) {
        const u = this.inference?.usage(agent.id);
        if (u) {
          try {
            this.store().setUsage(agent.id, u);
          } catch (err) {
            this.opts.log.error({ err, agent_id: agent.id }, "could not record a persistent agent's usage");
          }
        }
      }
    };
    try {
      const r = await this.inference.run(this.runtime(agent), input, { onOutput });
      (item as { run?: (r: RunResult) => void }).run?.(r);
      if (body.kind === "request") {
        if (r.reply !== undefined) return { ok: true, outcome: { result: r.reply, stop_reason: r.stop_reason } };
        const error = r.reply_error
          ? {
              code: ErrorCode.InternalError,
              message: `${agent.name}.${body.method} answered a result that does not match its schema: ${r.reply_error}`,
            }
          : {
              code: ErrorCode.InternalError,
              message: `${agent.name} ended its run without replying to ${body.method} (stop reason: ${r.stop_reason})`,
            };
        return { ok: true, outcome: { error, stop_reason: r.stop_reason } };
      }
      return { ok: true, outcome: { response: r.response, stop_reason: r.stop_reason } };
    } catch (e) {
      const error = wireError(e);
      return { ok: false, reason: error.message, outcome: { error } };
    }
  }

  /**
   * What the loop needs of memory for one run: the context window, the
   * system prompt with the pinned blocks and the conversation's summary, and
   * compaction's persistence. A persistent agent's conversation is its
   * stored turns (agents.db), its summary in memory.db; any other agent's is
   * this run's messages, held in memory. Compaction archives first (memory.db,
   * keyed by the messages' ordinals: idempotent), then removes the messages
   * (agents.db, one transaction): a kill -9 between the two leaves them in
   * both, never in neither.
   */
  private runMemory(agent: Agent, item: InboxItem, persistent: boolean): RunMemory {
    const mm = agent.manifest.memory;
    const conv = persistent ? agent.id : item.id;
    const hasBlocks = (mm?.blocks?.length ?? 0) > 0;
    const mem: NonNullable<InboxItem["memory"]> | null = persistent
      ? null
      : (item.memory ??= { turns: [], steps: new Map() });
    let summary = persistent ? this.memory.summary(conv) : (mem!.summary ?? null);
    return {
      window: mm?.context_window ?? contextWindowFor(agent.manifest.model),
      threshold: mm?.compaction_threshold ?? 0.7,
      summarizationModel: mm?.summarization_model ?? agent.manifest.model,
      system: (base) =>
        memorySystemPrompt(base, hasBlocks ? this.memory.blocks(agent.id) : [], summary, {
          blockUpdate: this.caps.mayCallTool(agent.id, "memory_block_update"),
          search: this.caps.mayCallTool(agent.id, "memory_search"),
        }),
      summary: () => summary,
      compacted: async (n, archived, text, info) => {
        const first = persistent ? this.store().archived(agent.id) : (mem!.archived ?? 0);
        const items = persistent ? this.store().headItems(agent.id, n) : [];
        const arch = this.memory.archive(agent.id, conv, first, archived, (i) => items[i] ?? item.id, text);
        if (persistent) this.store().compactTurns(agent.id, n);
        else {
          mem!.turns.splice(0, n);
          mem!.archived = first + n;
          mem!.summary = text;
        }
        summary = text;
        await this.auditDenial({
          kind: "memory.compact",
          agent_id: agent.id,
          message_id: item.id,
          archived_messages: n,
          archived_total: first + n,
          archived_sha256: arch.sha256,
          summary_sha256: createHash("sha256").update(text).digest("hex"),
          summary_chars: text.length,
          summarized: info.summarized,
          ...(info.error ? { error: info.error } : {}),
          tokens_before: info.tokensBefore,
          tokens_after: info.tokensAfter,
          window: info.window,
        });
        await this.memory.pruneArchive(agent.id);
      },
    };
  }

  /** the item's end: audited (a request's response), durable, told to its watchers; idempotent */
  private async finishItem(
    agent: Agent,
    item: InboxItem,
    state: "done" | "failed" | "cancelled",
    outcome: InboxOutcome,
  ): Promise<void> {
    if (item.state === "done" || item.state === "failed" || item.state === "cancelled") return;
    // the run was cut by a shutdown: the item stays as the store has it (queued or running), resumed at the
    // next boot, and nobody is told an end that did not happen (a waiting caller is suspended too)
    if (this.shuttingDown && agent.state === "stopped") return;
    item.state = state;
    item.outcome = outcome;
    if (item.body.kind === "request") {
      await this.auditDenial({
        kind: "agent.response",
        agent_id: agent.id,
        to: item.body.from.agent_id,
        method: item.body.method,
        call_id: item.id,
        ok: state === "done" && outcome.error === undefined,
        ...(outcome.error ? { error: outcome.error } : digest(outcome.result)),
        chain: item.body.chain,
      });
    }
    if (agent.manifest.lifecycle === "persistent" && agent.state !== "stopped") {
      try {
        this.store().finishItem(agent.id, item.id, state, outcome);
      } catch (err) {
        this.opts.log.error({ err, agent_id: agent.id, message_id: item.id }, "could not record an inbox item's end");
      }
    }
    this.settleItem(agent, item, state, outcome);
  }

  /** out of the inbox, kept for agent.result, told to whoever waits */
  private settleItem(
    agent: Agent,
    item: InboxItem,
    state: "done" | "failed" | "cancelled",
    outcome: InboxOutcome,
  ): void {
    item.state = state;
    item.outcome = outcome;
    const i = agent.inbox.indexOf(item);
    if (i >= 0) agent.inbox.splice(i, 1);
    const r = toResult(agent.id, item);
    agent.results.set(item.id, r);
    while (agent.results.size > RESULTS_LIMIT) agent.results.delete(agent.results.keys().next().value!);
    for (const w of item.watchers.splice(0)) {
      try {
        w.onDone?.(r);
      } catch (err) {
        this.opts.log.warn({ err }, "an inbox watcher failed");
      }
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
        ...(opts.client === undefined ? {} : { client: opts.client }),
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
    // approval_required names a tool, or an effect class: every tool of that class
    if (tool.alwaysApprove || needsApproval(agent.approvalRequired, toolName, tool.effect)) {
      await this.approvals.request(
        agentId,
        toolName,
        clip(parsed.data),
        signal,
        opts.onApprovalPending,
        opts.approvalId === undefined ? {} : { id: opts.approvalId },
      );
      const still = this.caps.stillValid(check.token);
      if (!still.ok) return deny(check.token.text, `${still.reason} while the call waited for approval`);
      if (signal.aborted) throw notRunnable(agent, "was stopped");
    }

    const pending: Promise<unknown>[] = [];
    /** the tool.call record's seq, once durable (a tool with an effect runs after it) */
    let callSeq: number | null = null;
    const tickets: { seqs: number[]; settled: boolean }[] = [];
    /** what the tool adds to its tool.result record */
    const extra: Record<string, unknown> = {};
    const ctx = {
      agentId,
      record: (fields: Record<string, unknown>) => void Object.assign(extra, fields),
      ...(opts.forward ? { forward: opts.forward } : {}),
      journal: {
        begin: (changes: PathChange[]) => {
          const seqs = this.journal.record({ agentId, lineage: this.lineage(agent), tool: toolName, callSeq }, changes);
          this.maybePrune();
          const t = { seqs, settled: false };
          tickets.push(t);
          const settle = (happened: boolean) => {
            if (t.settled) return;
            t.settled = true;
            this.journal.settle(seqs, happened);
          };
          return {
            changes: changes.map((c) => ({ path: c.path, pre: shownState(c.pre), post: shownState(c.post) })),
            done: () => settle(true),
            failed: () => settle(false),
          };
        },
      },
      services: this as AgentServices,
      signal,
      limits: this.limits,
      privateAreas: this.privateAreas,
      ...(opts.callKey === undefined ? {} : { callKey: opts.callKey }),
      authorize: (kind: ResourceKind, resource: string) => {
        const denied = (capability: string, reason: string): never => {
          pending.push(recordDenial(capability, reason, resource));
          throw capabilityDenied(toolName, capability, reason);
        };
        if (kind === "file_read" || kind === "file_write") {
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
    if (tool.effect === "reversible" && this.rewinding.has(agentId))
      throw notRunnable(agent, "is being rewound: its files change when the rewind has finished");
    // a persistent agent records that the tool is starting: after a crash it is never run again unseen
    opts.beforeRun?.();
    // queued now, so its seq is below anything the run appends (a denial, tool.result)
    const call = this.audit({
      kind: "tool.call",
      agent_id: agentId,
      tool: toolName,
      input: clip(parsed.data),
      token: check.token.id,
      via: opts.via,
      ...(opts.client === undefined ? {} : { client: opts.client }),
      ...tool.auditFields,
    });
    if (tool.effect !== "none") callSeq = (await call).seq;
    const result = this.toolResult(callSeq, call, agentId, toolName);
    try {
      if (signal.aborted) throw notRunnable(agent, "was stopped");
      let output: unknown;
      try {
        output = await tool.run(ctx, parsed.data);
      } finally {
        // a change the tool began and neither settled: settled by looking at the path
        for (const t of tickets) if (!t.settled) this.settleUnknown(t.seqs);
      }
      await Promise.all(pending);
      await result({ ok: true, output: clip(output), ...extra });
      return output;
    } catch (e) {
      await Promise.allSettled(pending);
      const err =
        e instanceof KernelError
          ? e
          : new KernelError(ErrorCode.InternalError, `tool ${toolName} failed: ${(e as Error)?.message ?? String(e)}`);
      await result({ ok: false, error: { code: err.code, message: err.message }, ...extra });
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

  // ---- memory ------------------------------------------------------------

  /** the agent, live: the caller of a memory method */
  private memoryCaller(agentId: string): Agent {
    const a = this.procs.get(agentId);
    if (a.state === "stopped") throw notRunnable(a, "is stopped");
    return a;
  }

  async memoryStore(
    agentId: string,
    req: { text: string; tags: string[]; namespace?: string },
  ): Promise<{ id: string; namespace: string | null; bytes: number; sha256: string }> {
    const a = this.memoryCaller(agentId);
    return this.memory.add(a.id, req.namespace ?? ownNamespace(a.id), req.text, req.tags);
  }

  async memorySearch(agentId: string | null, req: MemorySearchRequest): Promise<{ results: MemoryRecordInfo[] }> {
    let namespaces: string[];
    if (agentId !== null) {
      const a = this.memoryCaller(agentId);
      namespaces = [req.namespace ?? ownNamespace(a.id)];
    } else {
      namespaces = this.operatorScope(req);
    }
    const hits = await this.memory.search({
      namespaces,
      query: req.query,
      k: req.k,
      tags: req.tags,
      since: req.since,
    });
    return { results: hits.map(wire) };
  }

  /** the operator's scope: an agent's own memory, a namespace, both, or (neither) every namespace */
  private operatorScope(req: MemoryScope): string[] {
    const out: string[] = [];
    if (req.agent_id !== undefined) {
      // a stopped agent's memory stays readable until the kernel forgets the agent
      if (!this.procs.find(req.agent_id) && !this.memory.namespaces().some((n) => n.owner === req.agent_id))
        throw noSuchAgent(req.agent_id);
      out.push(ownNamespace(req.agent_id));
    }
    if (req.namespace !== undefined) out.push(req.namespace);
    if (out.length > 0) return out;
    return this.memory.namespaces().map((n) => (n.namespace === null ? ownNamespace(n.owner!) : n.namespace));
  }

  memoryRecord(agentId: string | null, id: string): MemoryRecordInfo {
    if (agentId !== null) this.memoryCaller(agentId);
    const rec = this.memory.get(id);
    // another agent's own memory is out of reach, and not even said to exist
    const inReach =
      rec !== null && (agentId === null || rec.namespace === ownNamespace(agentId) || !isOwnNamespace(rec.namespace));
    if (!inReach)
      throw invalidParams(`no memory record "${id}"${agentId === null ? "" : " in this agent's reach"}`, { id });
    return wire(rec!);
  }

  async memoryDelete(agentId: string | null, id: string): Promise<{ id: string; deleted: true }> {
    this.memoryRecord(agentId, id);
    const rec = this.memory.get(id);
    if (!rec) throw invalidParams(`no memory record "${id}"`, { id });
    return this.memory.delete(agentId, rec);
  }

  async memoryBlockUpdate(
    agentId: string,
    label: string,
    value: string,
  ): Promise<{ label: string; chars: number; limit: number }> {
    const a = this.memoryCaller(agentId);
    return this.memory.setBlock(a.id, label, value);
  }

  memoryList(req: MemoryScope & { kind?: "note" | "archive"; after_seq?: number; limit: number }) {
    const scoped = req.agent_id !== undefined || req.namespace !== undefined;
    return this.memory.list({
      ...(scoped ? { namespaces: this.operatorScope(req) } : {}),
      ...(req.kind ? { kind: req.kind } : {}),
      ...(req.after_seq !== undefined ? { after_seq: req.after_seq } : {}),
      limit: req.limit,
    });
  }

  memoryExport(req: MemoryScope & { after_seq?: number }) {
    const scoped = req.agent_id !== undefined || req.namespace !== undefined;
    return this.memory.export({
      ...(scoped ? { namespaces: this.operatorScope(req) } : {}),
      ...(req.after_seq !== undefined ? { after_seq: req.after_seq } : {}),
    });
  }

  memoryNamespaces() {
    return { namespaces: this.memory.namespaces() };
  }

  // ---- the operator's view of files/ -----------------------------------------

  async filesList(path: string): Promise<FsListResult> {
    return this.filesAudited(
      "fs.list",
      path,
      () => fsList(this.privateAreas.filesDir, path, this.privateAreas),
      (r) => ({ entries: r.entries.length, truncated: r.truncated }),
    );
  }

  async filesRead(path: string, opts: { offset: number; length?: number }): Promise<FsReadResult> {
    const max = this.limits.fileReadMaxBytes;
    return this.filesAudited(
      "fs.read",
      path,
      () => fsRead(this.privateAreas.filesDir, path, { ...opts, max }, this.privateAreas),
      (r) => ({ offset: r.offset, bytes: r.bytes, size: r.size }),
    );
  }

  /** run an fs.* read and record it (durable before the answer); a refusal is recorded with its error */
  private async filesAudited<T extends { path: string }>(
    kind: "fs.list" | "fs.read",
    path: string,
    f: () => T,
    fields: (r: T) => Record<string, unknown>,
  ): Promise<T> {
    let r: T;
    try {
      r = f();
    } catch (e) {
      const err = e instanceof KernelError ? e : null;
      await this.audit({
        kind,
        agent_id: null,
        path: cut(path, AUDIT_STRING_LIMIT),
        ok: false,
        error: { code: err?.code ?? ErrorCode.InternalError, message: cut(String((e as Error)?.message ?? e), 512) },
      });
      throw e;
    }
    await this.audit({ kind, agent_id: null, path: r.path, ok: true, ...fields(r) });
    return r;
  }

  // ---- journal -----------------------------------------------------------

  async rewind(
    agentId: string,
    opts: { toSeq?: number; includeChildren?: boolean; dryRun?: boolean; force?: boolean } = {},
  ): Promise<RewindResult & { audit_seq: number | null }> {
    const agent = this.procs.find(agentId) ?? null;
    const children = opts.includeChildren ?? true;
    const force = opts.force ?? false;
    const rows = this.journal.changesSince(agentId, opts.toSeq ?? 0, children);
    if (!agent && rows.length === 0) throw noSuchAgent(agentId);
    const lineage = agent ? this.lineage(agent) : `,${agentId},`;
    const id = newId("rw");
    const who = { agentId, lineage, callSeq: null as number | null };
    if (opts.dryRun)
      return { ...(await runRewind(this.journal, rows, { id, force, dryRun: true, who })), audit_seq: null };
    // nothing it rewinds may be changing files meanwhile
    for (const a of new Set([agentId, ...rows.map((r) => r.agent_id)])) {
      const p = this.procs.find(a);
      if (p && p.state === "running")
        throw notRunnable(p, "is running: a rewind waits until it is idle (or stop it first)");
    }
    let rec: { seq: number };
    try {
      rec = await this.audit({
        kind: "agent.rewind",
        agent_id: agentId,
        rewind_id: id,
        to_seq: opts.toSeq ?? 0,
        include_children: children,
        force,
        steps: rows.length,
        changes: digest(rows.map((r) => r.seq)),
      });
    } catch (e) {
      throw notRecorded("agent.rewind", "nothing was rewound", e);
    }
    who.callSeq = rec.seq;
    this.journal.addRewind(id, agentId, rec.seq, { seqs: rows.map((r) => r.seq), force, lineage });
    // while it runs, none of the agents it rewinds may change a file (invokeTool refuses them)
    const held = [...new Set([agentId, ...rows.map((r) => r.agent_id)])].filter((a) => !this.rewinding.has(a));
    for (const a of held) this.rewinding.add(a);
    let result: RewindResult;
    try {
      result = await runRewind(this.journal, rows, {
        id,
        force,
        dryRun: false,
        who,
        onStep: (done) => this.journal.rewindProgress(id, done),
      });
    } finally {
      for (const a of held) this.rewinding.delete(a);
    }
    this.journal.endRewind(id, result);
    await this.auditRewound(agentId, result, false);
    return { ...result, audit_seq: rec.seq };
  }

  /** resumedAt: a rewind a crash cut, finished from that step (the counts are of the steps from there) */
  private async auditRewound(agentId: string, r: RewindResult, recovered: boolean, resumedAt = 0): Promise<void> {
    await this.auditDenial({
      kind: "agent.rewound",
      agent_id: agentId,
      rewind_id: r.rewind_id,
      restored: r.restored.length,
      conflicts: r.conflicts.length,
      unrestorable: r.unrestorable.length,
      paths: clip({ restored: r.restored.map((x) => x.path), conflicts: r.conflicts.map((x) => x.path) }),
      ...(recovered ? { recovered: true, resumed_at_step: resumedAt } : {}),
    });
  }

  /** agents being rewound: their reversible tools wait for the rewind's end (refused meanwhile) */
  private readonly rewinding = new Set<string>();

  /** at boot: rows a crash left intended settled by looking, rewinds a crash cut finished */
  private async recoverJournal(): Promise<void> {
    if (!this.journal.exists()) return;
    settleByLooking(this.journal, this.journal.intended());
    for (const rw of this.journal.runningRewinds()) {
      const plan = rw.plan as { seqs: number[]; force: boolean; lineage: string };
      const rows = this.journal.rows(plan.seqs);
      const result = await runRewind(this.journal, rows, {
        id: rw.id,
        force: plan.force,
        dryRun: false,
        from: Math.min(rw.done, rows.length),
        who: { agentId: rw.agent_id, lineage: plan.lineage, callSeq: rw.audit_seq },
        onStep: (done) => this.journal.rewindProgress(rw.id, done),
      });
      this.journal.endRewind(rw.id, result);
      await this.auditRewound(rw.agent_id, result, true, Math.min(rw.done, rows.length));
    }
  }

  /** past journal.max_bytes the oldest pre-images go, audited */
  private maybePrune(): void {
    if (this.journal.bytes() <= this.opts.config.journal.max_bytes) return;
    const p = this.journal.prune();
    if (p.blobs > 0)
      void this.auditDenial({
        kind: "journal.prune",
        agent_id: null,
        pre_images: p.blobs,
        bytes: p.bytes,
        limit: this.opts.config.journal.max_bytes,
      });
  }

  /** ",ID,PARENT,…," for the journal: a rewind with include_children finds descendants by it */
  private lineage(a: Agent): string {
    const ids = [a.id];
    let p = a.parentId ? this.procs.find(a.parentId) : undefined;
    for (let i = 0; p && i < 64; i++) {
      ids.push(p.id);
      p = p.parentId ? this.procs.find(p.parentId) : undefined;
    }
    return `,${ids.join(",")},`;
  }

  /** intended rows whose outcome is not known: what is at the path says whether they happened */
  private settleUnknown(seqs: number[]): void {
    try {
      const rows = this.journal.intended().filter((r) => seqs.includes(r.seq));
      settleByLooking(this.journal, rows);
    } catch (err) {
      this.opts.log.error({ err }, "could not settle journal rows of a failed call");
    }
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
  // null prototype: a key "__proto__" (JSON.parse makes it an own key) stays a key
  const out: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(v)) out[k] = clip((v as Record<string, unknown>)[k], depth + 1);
  return out;
}

const OPERATOR: Sender = { agent_id: null, name: "operator" };

function sender(a: Agent | null): Sender {
  return a ? { agent_id: a.id, name: a.name } : OPERATOR;
}

function newId(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString("hex")}`;
}

/** what the model reads for an inbox item */
function messageText(body: InboxBody): string {
  if (body.kind === "message") return body.text;
  const from = body.from.agent_id ? `agent ${body.from.name} (${body.from.agent_id})` : "the operator";
  const params = JSON.stringify(body.params ?? null, null, 2);
  if (body.kind === "notify") return `Notification ${body.method} from ${from} (no reply expected). Params:\n${params}`;
  return `Request ${body.method} from ${from}. Params:\n${params}\n\nWork out the answer, then call the reply tool with the result.`;
}

function toResult(agentId: string, item: InboxItem): InboxResult {
  return { agent_id: agentId, message_id: item.id, state: item.state, ...(item.outcome ?? {}) };
}

function wireError(e: unknown): { code: number; message: string; data?: unknown } {
  if (e instanceof KernelError) return { code: e.code, message: e.message, ...(e.data ? { data: e.data } : {}) };
  return { code: ErrorCode.InternalError, message: (e as Error)?.message ?? String(e) };
}

/** an item's error as the KernelError its waiting caller gets */
function errorFrom(error: InboxResult["error"], agent: Agent, what?: string): KernelError {
  if (!error) return new KernelError(ErrorCode.InternalError, `${what ?? agent.name}: no result`);
  const known = Object.values(ErrorCode) as number[];
  const code = (known.includes(error.code) ? error.code : ErrorCode.InternalError) as ErrorCode;
  return new KernelError(
    code,
    error.message,
    (error.data as Record<string, unknown> | undefined) ?? { agent_id: agent.id },
  );
}

/** capability.grant: the tokens an agent was given (at spawn, and again at resume) */
function grantRecord(agentId: string, tokens: readonly Token[]): AuditEventInput {
  return {
    kind: "capability.grant",
    agent_id: agentId,
    tokens: tokens.map((t) => ({
      id: t.id,
      capability: t.text,
      max_invocations: t.maxInvocations,
      expires_at: t.expiresAt,
    })),
  };
}

/** the call chain a call from this agent carries: the chain of the request it is answering, then itself */
function chainOf(caller: Agent | null): string[] {
  if (!caller) return [];
  const within = caller.current?.body.kind === "request" ? caller.current.body.chain : [];
  return [...within, caller.id];
}

/** a payload's size and hash in its audit record (the payload itself is not recorded) */
function digest(value: unknown): { bytes: number; sha256: string } {
  const text = JSON.stringify(value ?? null);
  return { bytes: Buffer.byteLength(text), sha256: createHash("sha256").update(text).digest("hex") };
}

/** a file name under <config>/secrets (secret.set) */
const SECRET_NAME = /^[a-z0-9_.-]{1,64}$/;

/**
 * Can config.apply put this changed kernel.yaml section in effect now? Only
 * where the kernel reads the value at use time: limits (each spawn and
 * queued message), approval (timeout of approvals asked from now on), ipc
 * (the deadline of calls made from now on), log (its level; a new file only
 * at reboot). Everything else is read once at boot.
 */
function liveSection(section: string, cur: KernelConfig, next: KernelConfig): boolean {
  if (section === "limits" || section === "approval" || section === "ipc") return true;
  if (section === "log") return cur.log.file === next.log.file;
  return false;
}
