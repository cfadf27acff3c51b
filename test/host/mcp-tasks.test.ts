// A call that waits for a human's approval never holds an MCP client
// hostage. A 2026-07-28 client that declares the tasks extension
// (io.modelcontextprotocol/tasks, SEP-2663) gets a task back at once and
// polls tasks/get; the operator decides over the RPC socket. Spoken as raw
// Streamable HTTP, the wire the extension defines (the official v2 client
// has no task runtime): the per-request _meta envelope and the Mcp-Method /
// Mcp-Name headers. A client without the extension waits, also past Bun's
// 10 s idle cut. Through `aaosctl mcp`, the official v2 client's cancel
// (an aborted callTool) reaches the kernel and withdraws the approval.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioV2 } from "@modelcontextprotocol/client/stdio";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as HttpV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(40_000);

const ROOT = resolve(import.meta.dir, "../..");
const TOKEN = "tasks-token-5c1e9a7b3d2f4e6a8b0c1d2e3f4a5b6c";
const OTHER = "other-token-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const TASKS = "io.modelcontextprotocol/tasks";

let k: RunningKernel;
let url: URL;
let llm: MessagesServer;
const KEY = "sk-ant-api03-MCPTASKS-0a1b2c3d4e5f6071";

beforeAll(async () => {
  llm = await startMessagesServer({ apiKey: KEY, defaultText: "the helper's answer 8812" });
  k = await startKernel({
    extraListen: ["http:127.0.0.1:0"],
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    manifests: {
      desk: 'name: desk\nmodel: claude-haiku-4-5-20251001\ncapabilities:\n  - echo\n  - "file_read: /data/files/*"\napproval_required: [echo]\nspawn_child: [helper]\n',
      helper: "name: helper\nmodel: claude-haiku-4-5-20251001\n",
      other: "name: other\nmodel: claude-haiku-4-5-20251001\ncapabilities: [echo]\n",
    },
    kernelYaml: `approval:
  timeout: 60s
mcp:
  clients:
    desk: {manifest: desk, token_file: secrets/desk.token}
    other: {manifest: other, token_file: secrets/other.token}
`,
  });
  mkdirSync(join(k.configDir, "secrets"), { recursive: true });
  writeFileSync(join(k.configDir, "secrets", "desk.token"), TOKEN);
  writeFileSync(join(k.configDir, "secrets", "other.token"), OTHER);
  const web = await k.client.call<{ urls: string[] }>("web.tokens", {});
  url = new URL("mcp", web.urls[0]);
});

afterAll(async () => {
  if (k) cleanup(k);
  await llm?.stop();
});

let nextId = 1;
/** one 2026-07-28 request: the envelope in _meta, the headers the revision requires */
async function modern(
  method: string,
  params: Record<string, unknown>,
  opts: { tasks?: boolean; token?: string } = {},
): Promise<any> {
  const name = (params.name ?? params.taskId) as string | undefined;
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "raw-tasks-client", version: "1.0.0" },
    "io.modelcontextprotocol/clientCapabilities": opts.tasks === false ? {} : { extensions: { [TASKS]: {} } },
  };
  const r = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${opts.token ?? TOKEN}`,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": method,
      ...(name ? { "mcp-name": name } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params: { ...params, _meta: meta } }),
  });
  const text = await r.text();
  // an error may come with an HTTP status of its own (the SDK maps some codes); the body says which
  if (r.status !== 200 && !text.trimStart().startsWith("{")) throw new Error(`${method}: HTTP ${r.status} ${text}`);
  // auto response mode: a JSON body, or an SSE stream whose last data line is the response
  const body = text.trimStart().startsWith("{")
    ? JSON.parse(text)
    : JSON.parse(
        text
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .pop()!
          .slice(5),
      );
  return body;
}

async function pendingApproval(): Promise<{ id: string; tool: string; agent_id: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { approvals } = await k.client.call<{ approvals: any[] }>("approval.list", {});
    if (approvals.length > 0) return approvals[0];
    if (Date.now() > deadline) throw new Error("no approval was requested");
    await Bun.sleep(50);
  }
}

async function until(taskId: string, status: string): Promise<any> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await modern("tasks/get", { taskId });
    if (r.result?.status === status) return r.result;
    if (Date.now() > deadline) throw new Error(`task ${taskId} is ${JSON.stringify(r)}, not ${status}`);
    await Bun.sleep(50);
  }
}

describe("the tasks extension: an approval-waiting call is a task", () => {
  test("a call needing no approval answers at once, as a plain result", async () => {
    const r = await modern("tools/call", { name: "file_read", arguments: { path: "/data/files/none.txt" } });
    expect(r.result.resultType).toBe("complete");
    expect(r.result.taskId).toBeUndefined();
    expect(Array.isArray(r.result.content)).toBe(true);
  });

  test("the server advertises the extension in server/discover", async () => {
    const r = await modern("server/discover", {});
    expect(r.result.capabilities.extensions[TASKS]).toBeDefined();
    expect(r.result.capabilities.tasks).toBeUndefined();
  });

  test("approved: working with the approval named, then completed with the tool's result inlined", async () => {
    const created = (await modern("tools/call", { name: "echo", arguments: { message: "task-approved-31" } })).result;
    expect(created.resultType).toBe("task");
    expect(created.taskId).toMatch(/^task-/);
    expect(created.status).toBe("working");
    expect(typeof created.createdAt).toBe("string");
    expect(created.ttlMs).toBeGreaterThan(0);
    expect(created.result).toBeUndefined();
    const ap = await pendingApproval();
    expect(ap.tool).toBe("echo");
    const working = (await modern("tasks/get", { taskId: created.taskId })).result;
    expect(working.status).toBe("working");
    expect(working.statusMessage).toContain(ap.id);
    expect(working.result).toBeUndefined();
    await k.client.call("approval.respond", { id: ap.id, decision: "approve" });
    const done = await until(created.taskId, "completed");
    expect(done.result.isError).toBeUndefined();
    expect(done.result.content[0].text).toContain("task-approved-31");
  });

  test("denied: completed with result.isError naming the denial (a tool error, not a failed task)", async () => {
    const created = (await modern("tools/call", { name: "echo", arguments: { message: "task-denied" } })).result;
    expect(created.resultType).toBe("task");
    const ap = await pendingApproval();
    await k.client.call("approval.respond", { id: ap.id, decision: "deny", reason: "not today" });
    const done = await until(created.taskId, "completed");
    expect(done.result.isError).toBe(true);
    expect(done.result.content[0].text).toContain("not today");
  });

  test("tasks/cancel: an empty ack, the approval withdrawn and audited, the task cancelled", async () => {
    const created = (await modern("tools/call", { name: "echo", arguments: { message: "task-cancelled" } })).result;
    const ap = await pendingApproval();
    const ack = (await modern("tasks/cancel", { taskId: created.taskId })).result;
    expect(ack.resultType).toBe("complete");
    expect(ack.taskId).toBeUndefined();
    expect(ack.status).toBeUndefined();
    const t = (await modern("tasks/get", { taskId: created.taskId })).result;
    expect(t.status).toBe("cancelled");
    const deadline = Date.now() + 5000;
    let decided: any;
    while (!decided && Date.now() < deadline) {
      const { events } = await k.client.call<{ events: any[] }>("audit.query", { kind: "approval.cancelled" });
      decided = events.find((e) => e.approval_id === ap.id);
      if (!decided) await Bun.sleep(50);
    }
    expect(decided).toBeDefined();
    expect(JSON.stringify(decided)).toContain("the MCP client cancelled the task");
    const { approvals } = await k.client.call<{ approvals: any[] }>("approval.list", {});
    expect(approvals.find((a) => a.id === ap.id)).toBeUndefined();
    // idempotent on a finished task
    expect((await modern("tasks/cancel", { taskId: created.taskId })).result.resultType).toBe("complete");
  });

  test("tasks/get: unknown ids, another principal's task, and a client without the extension are refused", async () => {
    expect((await modern("tasks/get", { taskId: "task-nope" })).error.code).toBe(-32602);
    const created = (await modern("tools/call", { name: "echo", arguments: { message: "mine" } })).result;
    const ap = await pendingApproval();
    try {
      // the other principal cannot see desk's task
      expect((await modern("tasks/get", { taskId: created.taskId }, { token: OTHER })).error.code).toBe(-32602);
      // without the extension declared: MissingRequiredClientCapability
      const gated = await modern("tasks/get", { taskId: created.taskId }, { tasks: false });
      expect(gated.error.code).toBe(-32021);
      expect(JSON.stringify(gated.error.data)).toContain(TASKS);
    } finally {
      await k.client.call("approval.respond", { id: ap.id, decision: "approve" });
    }
    await until(created.taskId, "completed");
  });
});

describe("a call that runs an agent is a task at once", () => {
  test("agent_run: answered with a task, the run's reply inlined once it ends", async () => {
    const created = (await modern("tools/call", { name: "agent_run", arguments: { agent: "helper", message: "hi" } }))
      .result;
    expect(created.resultType).toBe("task");
    expect(created.status).toBe("working");
    const done = await until(created.taskId, "completed");
    expect(done.result.content[0].text).toContain("the helper's answer 8812");
    expect(done.result.structuredContent.stop_reason).toBe("end_turn");
  });
});

describe("a client without tasks waits, alone", () => {
  test("a 2025-11-25 call waits 11 s for its approval (past Bun's 10 s idle cut) and completes", async () => {
    // the stateless 2025 POST, as a client sends it: the answer comes on this one exchange
    const call = fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${TOKEN}`,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "echo", arguments: { message: "waited-long" } },
      }),
    }).then(async (r) => ({ status: r.status, text: await r.text() }));
    const ap = await pendingApproval();
    await Bun.sleep(11_000);
    // the connection is not held: another client of this principal is answered meanwhile
    const c = new ClientV1({ name: "v1-meanwhile", version: "1.0.0" });
    await c.connect(new HttpV1(url, { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
    expect((await c.listTools()).tools.map((t) => t.name)).toContain("echo");
    await c.close();
    await k.client.call("approval.respond", { id: ap.id, decision: "approve" });
    const r = await call;
    expect(r.status).toBe(200);
    // the waiting was told on the stream (a log message naming the approval), then the result
    expect(r.text).toContain(ap.id);
    expect(r.text).toContain("waited-long");
  });

  test("through aaosctl mcp, the v2 client's cancel reaches the kernel and withdraws the approval", async () => {
    const c = new ClientV2({ name: "v2-cancel", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
    await c.connect(
      new StdioV2({
        command: process.execPath,
        args: [join(ROOT, "cli/main.ts"), "mcp", "--as", "desk", "--socket", k.socket],
        stderr: "pipe",
      }),
    );
    const abort = new AbortController();
    const call = c.callTool({ name: "echo", arguments: { message: "to-cancel" } }, { signal: abort.signal });
    const ap = await pendingApproval();
    abort.abort();
    await expect(call).rejects.toThrow();
    const deadline = Date.now() + 5000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      const { approvals } = await k.client.call<{ approvals: any[] }>("approval.list", {});
      gone = !approvals.some((a) => a.id === ap.id);
      if (!gone) await Bun.sleep(50);
    }
    expect(gone).toBe(true);
    await c.close();
  });
});
