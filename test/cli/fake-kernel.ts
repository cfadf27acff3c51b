// A stand-in kernel for aaosctl's tests: the §5 JSON-RPC contract over a
// unix socket, in memory, with a scripted "model" whose runs stream
// agent.output events and whose tool calls may wait for approval. It lets the
// CLI be tested for what only it does (streaming display, a serial line that
// never says system.ready and carries console noise) independently of the
// real kernel, which test/cli/host.test.ts drives.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { AuditEventKind } from "../../kernel/audit/index.ts";

type Conn = { write(text: string): void; close(): void };

interface Agent {
  agent_id: string;
  name: string;
  state: "ready" | "running" | "stopped";
  parent_id: string | null;
  model: string;
  capabilities: string[];
  approval_required: string[];
  usage: { input_tokens: number; output_tokens: number };
}

interface Approval {
  id: string;
  agent_id: string;
  tool: string;
  input: unknown;
  requested_at: string;
  decide: (d: { decision: "approve" | "deny"; reason?: string }) => void;
}

class RpcFail extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

export interface FakeKernelOptions {
  socket: string;
  manifests?: Record<string, string>;
  /** behave like a serial line: no system.ready on connect, console noise */
  serial?: boolean;
  /** answer nothing at all (a VM that never boots) */
  silent?: boolean;
}

const TOOLS = [
  { name: "echo", description: "Returns its input unchanged.", input_schema: { type: "object", properties: { message: { type: "string" } } } },
  { name: "file_write", description: "Write a file beneath a granted path.\nSecond line.", input_schema: { type: "object", properties: { path: { type: "string" }, content: { type: "string" } } } },
];

export class FakeKernel {
  readonly bootId = randomBytes(8).toString("hex");
  private agents = new Map<string, Agent>();
  private approvals = new Map<string, Approval>();
  private audit: Record<string, unknown>[] = [];
  private conns = new Set<Conn>();
  private server: ReturnType<typeof Bun.listen> | null = null;
  private started = Date.now();
  shutdownAction: string | null = null;

  constructor(readonly opts: FakeKernelOptions) {}

  start(): this {
    rmSync(this.opts.socket, { force: true });
    this.server = Bun.listen<{ buf: string; conn: Conn }>({
      unix: this.opts.socket,
      socket: {
        open: (s) => {
          const conn: Conn = { write: (t) => void s.write(t), close: () => s.end() };
          s.data = { buf: "", conn };
          this.conns.add(conn);
          if (this.opts.silent) return;
          if (this.opts.serial) conn.write("[    8.123] random: crng init done\r\n");
          else conn.write(JSON.stringify({ jsonrpc: "2.0", method: "system.ready", params: { version: "0.1.0-fake", boot_id: this.bootId } }) + "\n");
        },
        data: (s, d) => {
          if (this.opts.silent) return;
          s.data.buf += d.toString();
          let nl: number;
          while ((nl = s.data.buf.indexOf("\n")) >= 0) {
            const line = s.data.buf.slice(0, nl);
            s.data.buf = s.data.buf.slice(nl + 1);
            if (line.trim()) void this.onLine(s.data.conn, line);
          }
        },
        close: (s) => void this.conns.delete(s.data.conn),
      },
    });
    return this;
  }

  stop(): void {
    for (const c of this.conns) c.close();
    this.server?.stop(true);
    rmSync(this.opts.socket, { force: true });
  }

  private send(conn: Conn, msg: unknown) {
    conn.write(JSON.stringify(msg) + "\n");
  }

  private broadcast(method: string, params: unknown) {
    for (const c of this.conns) this.send(c, { jsonrpc: "2.0", method, params });
  }

  private async onLine(conn: Conn, line: string) {
    let msg: any;
    try {
      msg = JSON.parse(line);
    } catch {
      return this.send(conn, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } });
    }
    if (this.opts.serial) conn.write("[   12.000] virtio_net: link up\n");
    try {
      const result = await this.handle(conn, msg.method, msg.params ?? {});
      this.send(conn, { jsonrpc: "2.0", id: msg.id, result });
    } catch (e) {
      const f = e instanceof RpcFail ? e : new RpcFail(-32603, String(e));
      this.send(conn, { jsonrpc: "2.0", id: msg.id, error: { code: f.code, message: f.message, ...(f.data ? { data: f.data } : {}) } });
    }
  }

  /** only kinds the real kernel writes: a kind it does not know fails to compile */
  private log(ev: { kind: AuditEventKind; agent_id?: string; [field: string]: unknown }) {
    this.audit.push({ seq: this.audit.length, ts: new Date().toISOString(), agent_id: null, ...ev });
  }

  private agent(id: string): Agent {
    const a = this.agents.get(id);
    if (!a) throw new RpcFail(-32002, `no such agent: ${id}`, { agent_id: id });
    return a;
  }

  private allowed(a: Agent, tool: string): boolean {
    return a.capabilities.some((c) => c === tool || c === `tool: ${tool}` || c.startsWith(`${tool}:`));
  }

  /** capability check, approval if required, then the tool */
  private async invoke(conn: Conn, a: Agent, tool: string, input: any, onPending?: (id: string) => void): Promise<unknown> {
    if (!TOOLS.some((t) => t.name === tool)) throw new RpcFail(-32601, `no such tool: ${tool}`);
    if (!this.allowed(a, tool)) {
      this.log({ kind: "capability.denied", agent_id: a.agent_id, tool });
      throw new RpcFail(-32001, `capability denied: ${a.name} holds no capability for ${tool}`, { tool, capability: `tool: ${tool}`, reason: "not granted" });
    }
    if (a.approval_required.includes(tool)) {
      const id = "ap-" + randomBytes(6).toString("hex");
      const decision = await new Promise<{ decision: string; reason?: string }>((decide) => {
        const info = { id, agent_id: a.agent_id, tool, input, requested_at: new Date().toISOString() };
        this.approvals.set(id, { ...info, decide });
        this.log({ kind: "approval.requested", agent_id: a.agent_id, approval_id: id, tool });
        onPending?.(id);
        this.broadcast("approval.requested", info);
      });
      if (decision.decision === "deny") throw new RpcFail(-32003, `approval denied${decision.reason ? `: ${decision.reason}` : ""}`, { approval_id: id });
    }
    this.log({ kind: "tool.call", agent_id: a.agent_id, tool, input });
    const output = tool === "echo" ? { message: input?.message ?? "" } : { written: input?.path };
    this.log({ kind: "tool.result", agent_id: a.agent_id, tool, ok: true, output });
    return output;
  }

  private async run(conn: Conn, a: Agent, message: string) {
    if (a.state !== "ready") throw new RpcFail(-32008, `agent ${a.agent_id} is ${a.state}`);
    a.state = "running";
    const out = (ev: object) => this.send(conn, { jsonrpc: "2.0", method: "agent.output", params: { agent_id: a.agent_id, ...ev } });
    const calls: unknown[] = [];
    try {
      out({ type: "text", text: "Let me " });
      out({ type: "text", text: "look at that." });
      const tool = /write/.test(message) ? "file_write" : "echo";
      const input = tool === "echo" ? { message } : { path: "/data/out/x.txt", content: message };
      const id = "tu-1";
      out({ type: "tool_use", tool, input, id });
      try {
        const output = await this.invoke(conn, a, tool, input, (approval_id) => out({ type: "approval_pending", approval_id, tool }));
        out({ type: "tool_result", tool, id, ok: true, output });
        calls.push({ tool, input, ok: true, output });
      } catch (e) {
        const f = e as RpcFail;
        out({ type: "tool_result", tool, id, ok: false, error: { code: f.code, message: f.message } });
        calls.push({ tool, input, ok: false, error: { code: f.code, message: f.message } });
      }
      out({ type: "turn", turn: 1, usage: { input_tokens: 10, output_tokens: 5 } });
      out({ type: "text", text: "\nDone." });
      a.usage.input_tokens += 20;
      a.usage.output_tokens += 8;
      return { agent_id: a.agent_id, response: "Let me look at that.\nDone.", stop_reason: "end_turn", usage: { input_tokens: 20, output_tokens: 8 }, tool_calls: calls };
    } finally {
      if (a.state === "running") a.state = "ready";
    }
  }

  private spawn(p: { manifest?: string; name?: string }) {
    let text = p.manifest;
    if (p.name !== undefined) {
      text = this.opts.manifests?.[p.name];
      if (text === undefined) throw new RpcFail(-32005, `no manifest named ${p.name}`, { path: p.name });
    }
    let m: any;
    try {
      m = parseYaml(text ?? "");
    } catch (e) {
      throw new RpcFail(-32005, `invalid manifest: ${(e as Error).message}`, { path: "", line: 1, column: 1 });
    }
    if (!m?.name || !m?.model) throw new RpcFail(-32005, "invalid manifest: name and model are required", { path: m?.name ? "model" : "name", line: 1, column: 1 });
    const a: Agent = {
      agent_id: "ag-" + randomBytes(8).toString("hex"),
      name: m.name,
      state: "ready",
      parent_id: null,
      model: m.model,
      capabilities: (m.capabilities ?? []).map((c: string) => (/:/.test(c) ? c : `tool: ${c}`)),
      approval_required: m.approval_required ?? [],
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    this.agents.set(a.agent_id, a);
    this.log({ kind: "agent.spawn", agent_id: a.agent_id, name: a.name });
    return a;
  }

  private async handle(conn: Conn, method: string, p: any): Promise<unknown> {
    const pub = (a: Agent) => ({ agent_id: a.agent_id, name: a.name, state: a.state, parent_id: a.parent_id, model: a.model });
    switch (method) {
      case "system.ping":
        return { pong: true, uptime_ms: Date.now() - this.started };
      case "system.info":
        return { version: "0.1.0-fake", boot_id: this.bootId, mode: "host", uptime_ms: Date.now() - this.started, agents: this.agents.size };
      case "agent.spawn": {
        const a = this.spawn(p);
        return { agent_id: a.agent_id, name: a.name, capabilities: a.capabilities };
      }
      case "agent.spawn_and_run":
        return this.run(conn, this.spawn(p), p.message);
      case "agent.list":
        return { agents: [...this.agents.values()].map(pub) };
      case "agent.status": {
        const a = this.agent(p.agent_id);
        return { ...pub(a), capabilities: a.capabilities, usage: a.usage, children: [] };
      }
      case "agent.stop": {
        const a = this.agent(p.agent_id);
        a.state = "stopped";
        this.log({ kind: "agent.stop", agent_id: a.agent_id });
        return { agent_id: a.agent_id, state: a.state };
      }
      case "agent.run":
        return this.run(conn, this.agent(p.agent_id), p.message);
      case "tool.list": {
        if (p.agent_id === undefined) return { tools: TOOLS };
        const a = this.agent(p.agent_id);
        return { tools: TOOLS.filter((t) => this.allowed(a, t.name)) };
      }
      case "tool.invoke": {
        const a = this.agent(p.agent_id);
        const output = await this.invoke(conn, a, p.tool, p.input ?? {}, (approval_id) =>
          this.send(conn, { jsonrpc: "2.0", method: "agent.output", params: { agent_id: a.agent_id, type: "approval_pending", approval_id, tool: p.tool } }),
        );
        return { output };
      }
      case "approval.list":
        return { approvals: [...this.approvals.values()].map(({ decide: _, ...info }) => info) };
      case "approval.respond": {
        const ap = this.approvals.get(p.id);
        if (!ap) throw new RpcFail(-32007, `no such approval or already decided: ${p.id}`);
        this.approvals.delete(p.id);
        this.log({ kind: "approval.decided", agent_id: ap.agent_id, approval_id: p.id, tool: ap.tool, decision: p.decision, reason: p.reason });
        ap.decide({ decision: p.decision, reason: p.reason });
        return { id: p.id, decision: p.decision };
      }
      case "audit.query": {
        let evs = this.audit.filter((e) => (e.seq as number) >= (p.since_seq ?? 0));
        if (p.agent_id) evs = evs.filter((e) => e.agent_id === p.agent_id);
        if (p.kind) evs = evs.filter((e) => e.kind === p.kind);
        if (p.limit) evs = evs.slice(0, p.limit);
        return { events: evs, next_seq: this.audit.length };
      }
      case "audit.verify":
        return { ok: true, events: this.audit.length, head: "f".repeat(64) };
      case "system.shutdown":
        this.shutdownAction = p.action ?? "poweroff";
        setTimeout(() => this.stop(), 20);
        return { ok: true };
      default:
        throw new RpcFail(-32601, `method not found: ${method}`);
    }
  }
}

// standalone, for trying aaosctl by hand: bun test/cli/fake-kernel.ts SOCKET [--serial]
if (import.meta.main) {
  const socket = process.argv[2] ?? "/tmp/aaos-fake.sock";
  const MODEL = "claude-haiku-4-5-20251001";
  new FakeKernel({
    socket,
    serial: process.argv.includes("--serial"),
    manifests: {
      echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n`,
      careful: `name: careful\nmodel: ${MODEL}\ncapabilities: [echo, file_write]\napproval_required: [file_write, echo]\n`,
    },
  }).start();
  console.error(`fake kernel on ${socket}`);
}
