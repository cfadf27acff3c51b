// Inference through the real JSON-RPC socket of a host-mode kernel, with the
// model served by the local Messages API fixture through the unmodified SDK.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

const KEY = "sk-ant-api03-HOSTTEST-must-never-appear-9f8e7d6c5b4a";
const MODEL = "claude-haiku-4-5-20251001";
const KERNEL_YAML = `inference:
  max_concurrency: 4
  request_timeout_ms: 5000
  retry:
    base_delay_ms: 5
    max_delay_ms: 50
    max_retries: 4
`;

let srv: MessagesServer;
let k: RunningKernel;

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({ kernelYaml: KERNEL_YAML, env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url } });
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
  await srv.stop();
});
beforeEach(() => srv.reset());

const call = (m: string, p: object = {}) => k.client.call(m, p);

function manifest(name: string, extra = "") {
  return `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You write files."\n${extra}`;
}

async function spawn(name: string, extra = "") {
  return (await call("agent.spawn", { manifest: manifest(name, extra) })).agent_id as string;
}

async function auditOf(agent_id: string) {
  return (await call("audit.query", { agent_id, limit: 1000 })).events as any[];
}

function collectOutput(agent_id: string) {
  const events: any[] = [];
  const off = k.client.onNotification((n: any) => {
    if (n.method === "agent.output" && n.params.agent_id === agent_id) events.push(n.params);
  });
  return { events, off };
}

describe("agent.run through the socket", () => {
  test("a two-turn tool run writes a file, streams agent.output, and audits usage", async () => {
    const out = join(k.dataDir, "files", "out");
    const id = await spawn("writer", `capabilities:\n  - "file_write: ${out}/*"\n`);
    srv.script([
      {
        content: [
          { type: "text", text: "Writing it." },
          {
            type: "tool_use",
            name: "file_write",
            input: { path: `${out}/hello.txt`, content: "hello from the model" },
          },
        ],
        usage: { input_tokens: 300, output_tokens: 60 },
      },
      {
        text: "The file is written.",
        usage: { input_tokens: 420, output_tokens: 8 },
        match: { contains: "tool_result" },
      },
    ]);
    const o = collectOutput(id);
    const r = await call("agent.run", { agent_id: id, message: "write hello.txt" });
    o.off();
    expect(r).toMatchObject({
      agent_id: id,
      response: "The file is written.",
      stop_reason: "end_turn",
      usage: { input_tokens: 720, output_tokens: 68 },
    });
    expect(r.tool_calls.length).toBe(1);
    expect(r.tool_calls[0]).toMatchObject({ tool: "file_write", ok: true });
    expect(readFileSync(join(out, "hello.txt"), "utf8")).toBe("hello from the model");
    expect(
      o.events
        .filter((e) => e.type === "text")
        .map((e) => e.text)
        .join(""),
    ).toBe("Writing it.The file is written.");
    expect(o.events.map((e) => e.type).filter((t) => t !== "text")).toEqual([
      "turn",
      "tool_use",
      "tool_result",
      "turn",
    ]);
    const kinds = (await auditOf(id)).map((e) => e.kind);
    for (const kind of ["run.start", "inference.request", "inference.usage", "run.end"]) expect(kinds).toContain(kind);
    expect(kinds.filter((x) => x === "inference.usage").length).toBe(2);
    const st = await call("agent.status", { agent_id: id });
    expect(st.usage).toEqual({ input_tokens: 720, output_tokens: 68 });
    const sched = await call("sched.status");
    const me = sched.agents.find((a: any) => a.agent_id === id);
    expect(me.usage.input_tokens).toBe(720);
    expect(sched.limits.max_concurrency).toBe(4);
  });

  test("a denied tool goes back to the model as an error and the run goes on", async () => {
    const id = await spawn("no-writes", `capabilities:\n  - echo\n`);
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path: `${k.dataDir}/x.txt`, content: "nope" } }] },
      { text: "I may not write files.", match: { contains: "is_error" } },
    ]);
    const r = await call("agent.run", { agent_id: id, message: "write x.txt" });
    expect(r.stop_reason).toBe("end_turn");
    expect(r.response).toBe("I may not write files.");
    expect(r.tool_calls[0]).toMatchObject({ tool: "file_write", ok: false, error: { code: -32001 } });
    expect(existsSync(join(k.dataDir, "x.txt"))).toBe(false);
  });

  test("approval in the middle of a run", async () => {
    const out = join(k.dataDir, "files", "approved");
    const id = await spawn(
      "careful-writer",
      `capabilities:\n  - "file_write: ${out}/*"\napproval_required:\n  - file_write\n`,
    );
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path: `${out}/ok.txt`, content: "approved" } }] },
      { text: "Written after approval.", match: { contains: "tool_result" } },
    ]);
    const pending = k.client.waitFor("agent.output", 10_000, (p) => p.agent_id === id && p.type === "approval_pending");
    const run = call("agent.run", { agent_id: id, message: "write ok.txt" });
    const n = await pending;
    expect(existsSync(join(out, "ok.txt"))).toBe(false);
    const list = await call("approval.list");
    expect(list.approvals.map((a: any) => a.id)).toContain(n.approval_id);
    await call("approval.respond", { id: n.approval_id, decision: "approve" });
    const r = await run;
    expect(r.response).toBe("Written after approval.");
    expect(readFileSync(join(out, "ok.txt"), "utf8")).toBe("approved");
  });

  test("a 429 storm is retried with backoff and retry-after, then succeeds", async () => {
    const id = await spawn("stormy");
    srv.script([
      { error: { status: 429, retry_after: 0 } },
      { error: { status: 429, retry_after: 1 } },
      { error: { status: 529 } },
      { text: "through the storm" },
    ]);
    const r = await call("agent.run", { agent_id: id, message: "hi" });
    expect(r.response).toBe("through the storm");
    const ev = await auditOf(id);
    expect(ev.filter((e) => e.kind === "inference.retry").map((e) => e.status)).toEqual([429, 429, 529]);
    expect(ev.filter((e) => e.kind === "inference.request").length).toBe(4);
  });

  test("a budget that runs out mid-run ends it with budget_exhausted; the next run is -32004", async () => {
    const id = await spawn("frugal", `capabilities:\n  - echo\nbudget:\n  max_tokens: 3000\n  period: lifetime\n`);
    srv.script([
      {
        content: [{ type: "tool_use", name: "echo", input: { message: "x" } }],
        usage: { input_tokens: 1500, output_tokens: 1400 },
      },
      { text: "never" },
    ]);
    const r = await call("agent.run", { agent_id: id, message: "spend" });
    expect(r.stop_reason).toBe("budget_exhausted");
    expect(r.usage).toEqual({ input_tokens: 1500, output_tokens: 1400 });
    expect(srv.requests.length).toBe(1);
    await rpcError(call("agent.run", { agent_id: id, message: "more" }), -32004);
    const st = await call("sched.status");
    const me = st.agents.find((a: any) => a.agent_id === id);
    expect(me.budget).toMatchObject({ max_tokens: 3000, used: 2900 });
  });

  test("stop during a call ends the run with stop_reason stopped", async () => {
    const id = await spawn("hanger");
    srv.script([{ hang: true }]);
    const run = call("agent.run", { agent_id: id, message: "hi" });
    const deadline = Date.now() + 10_000;
    while (srv.requests.length === 0 && Date.now() < deadline) await Bun.sleep(10);
    const other = await k.connect();
    await other.client.call("agent.stop", { agent_id: id });
    other.client.close();
    const r = await run;
    expect(r.stop_reason).toBe("stopped");
    expect((await auditOf(id)).some((e) => e.kind === "run.end" && e.stop_reason === "stopped")).toBe(true);
  });

  test("agent.spawn_and_run", async () => {
    srv.script([{ text: "spawned and ran" }]);
    const r = await call("agent.spawn_and_run", { manifest: manifest("oneshot"), message: "go" });
    expect(r.response).toBe("spawned and ran");
    expect(r.agent_id).toMatch(/^ag-/);
  });

  test("a rejected key is -32006 'API key rejected'", async () => {
    const id = await spawn("rejected");
    srv.setApiKey("another-key");
    try {
      const e = await rpcError(call("agent.run", { agent_id: id, message: "hi" }), -32006);
      expect(e.message).toBe("API key rejected");
    } finally {
      srv.setApiKey(KEY);
    }
  });

  test("the key is in no log line, audit record or file under the data directory", async () => {
    const all: any[] = [];
    for (let since = 0; ;) {
      const page = await call("audit.query", { since_seq: since, limit: 1000 });
      all.push(...page.events);
      if (!page.events.length || page.next_seq === since) break;
      since = page.next_seq;
    }
    expect(all.length).toBeGreaterThan(10);
    expect(all.some((e) => e.kind === "inference.usage")).toBe(true);
    expect(JSON.stringify(all)).not.toContain(KEY);
    expect(JSON.stringify(await call("sched.status"))).not.toContain(KEY);
    const log = k.logText();
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(KEY);
    const walk = (d: string): string[] =>
      readdirSync(d).flatMap((f) => {
        const p = join(d, f);
        return statSync(p).isDirectory() ? walk(p) : [p];
      });
    for (const f of walk(k.dataDir)) expect(readFileSync(f, "latin1").includes(KEY)).toBe(false);
  });
});

describe("without a key", () => {
  test("agent.run is a clear -32006 and an audit record, never a hang", async () => {
    const k2 = await startKernel({ kernelYaml: KERNEL_YAML, env: { ANTHROPIC_BASE_URL: srv.url } });
    try {
      const id = (await k2.client.call("agent.spawn", { manifest: manifest("keyless") })).agent_id;
      const e = await rpcError(k2.client.call("agent.run", { agent_id: id, message: "hi" }), -32006);
      expect(e.message).toBe(
        "no inference provider configured: set ANTHROPIC_API_KEY or inference.providers.anthropic.api_key_file",
      );
      const ev = (await k2.client.call("audit.query", { agent_id: id })).events;
      expect(ev.some((x: any) => x.kind === "inference.error")).toBe(true);
      expect(srv.requests.length).toBe(0);
    } finally {
      await k2.stop();
      cleanup(k2);
    }
  });
});
