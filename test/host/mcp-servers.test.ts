// External MCP servers' tools for agents, through the real JSON-RPC socket of
// host-mode kernels, against real MCP servers no one here wrote the protocol
// of: a server built with the official v2 server SDK
// (test/fixtures/mcp/v2-server.ts), one built with the v1 SDK
// (test/fixtures/mcp/v1-server.ts), and @modelcontextprotocol/server-everything
// run as its own process, all over Streamable HTTP on loopback; and both
// fixtures as stdio servers the kernel launches (`command:`).
//
// Two kernels: A (approve_destructive off) carries most scenarios; B
// (`mcp.approve_destructive: true`) the destructiveHint approvals and the
// stdio servers. The model is the fixture Messages API server.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { newV2State, startV2Server, type V2Server, type V2State } from "../fixtures/mcp/v2-server.ts";
import { startV1Server, type V1Server } from "../fixtures/mcp/v1-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const ROOT = resolve(import.meta.dir, "../..");
const BUN = process.execPath;
const V2_SERVER = join(ROOT, "test/fixtures/mcp/v2-server.ts");
const V1_SERVER = join(ROOT, "test/fixtures/mcp/v1-server.ts");
const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const KEY = "sk-ant-api03-HOSTTEST-mcp-servers-5e6f7a8b9c0d";
const MODEL = "claude-haiku-4-5-20251001";
/** the Messages API's rule for a tool name (a name outside it is a 400 from the real API) */
const API_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const INFERENCE = `inference:
  max_concurrency: 8
  request_timeout_ms: 60000
  retry:
    base_delay_ms: 5
    max_delay_ms: 50
    max_retries: 1
`;

const m = (name: string, caps: string[], extra = "") =>
  `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You are ${name.toUpperCase()}-AGENT."\nmax_turns: 4\ncapabilities:\n${caps
    .map((c) => `  - "${c}"`)
    .join("\n")}\n${extra}`;

const MANIFESTS_A = {
  mcpuser: m("mcpuser", ["tool: mcp.v2.*", "tool: mcp.v1.mul", "tool: mcp.everything.echo"]),
  addonly: m("addonly", ["tool: mcp.v2.add"]),
  gated: m("gated", ["tool: mcp.v2.*"], "approval_required: [mcp.v2.wipe]\n"),
  flakyuser: m("flakyuser", ["tool: mcp.flaky.*"]),
  capper: m("capper", ["tool: mcp.capped.*"]),
};
const MANIFESTS_B = {
  destr: m("destr", ["tool: mcp.v2.*", "tool: mcp.v1.*"]),
  stdiouser: m("stdiouser", ["tool: mcp.v2s.*", "tool: mcp.v1s.*"]),
};

let srv: MessagesServer;
let v2: V2Server;
let v1: V1Server;
let flaky: V2Server;
let flakyState: V2State;
let everything: ReturnType<typeof Bun.spawn>;
let everythingUrl: string;
let a: RunningKernel;
let b: RunningKernel;
let tmp: string;
let v2sCalls: string;
let v1sCalls: string;

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** poll until f answers a truthy value; past the deadline, fail naming what was awaited and the last value */
async function until<T>(what: string, f: () => Promise<T> | T, ms = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      last = await f();
      if (last) return last as NonNullable<T>;
    } catch (e: any) {
      last = `${e?.code ?? ""} ${e?.message ?? e}`;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
    await Bun.sleep(50);
  }
}

const callA = (method: string, p: object = {}) => a.client.call(method, p);
const callB = (method: string, p: object = {}) => b.client.call(method, p);

async function servers(k: RunningKernel): Promise<any[]> {
  return (await k.client.call("mcp.servers", {})).servers as any[];
}
const serverOf = async (k: RunningKernel, name: string) => (await servers(k)).find((s) => s.name === name);

async function allConnected(k: RunningKernel, names: string[]) {
  return until(`servers ${names.join(", ")} connected`, async () => {
    const list = await servers(k);
    return names.every((n) => list.find((s) => s.name === n)?.state === "connected") ? list : null;
  });
}

async function spawn(k: RunningKernel, name: string): Promise<string> {
  return (await k.client.call("agent.spawn", { name })).agent_id as string;
}

async function toolNames(k: RunningKernel, agent_id: string): Promise<string[]> {
  return ((await k.client.call("tool.list", { agent_id })).tools as any[]).map((t) => t.name);
}

async function audit(k: RunningKernel, q: Record<string, unknown>): Promise<any[]> {
  return (await k.client.call("audit.query", { limit: 1000, ...q })).events as any[];
}

const invoke = (k: RunningKernel, agent_id: string, tool: string, input: unknown) =>
  k.client.call("tool.invoke", { agent_id, tool, input });

/** the text of a tool's output, whatever shape the kernel gives an MCP result */
const textOf = (v: unknown) => JSON.stringify(v);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/** the server's own tools/list, asked with the official v2 client (what the kernel should pass on) */
async function serverTools(url: string): Promise<any[]> {
  const c = new Client({ name: "aaos-test", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    return (await c.listTools()).tools as any[];
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "aaos-mcp-servers-"));
  v2sCalls = join(tmp, "v2s.calls");
  v1sCalls = join(tmp, "v1s.calls");
  srv = await startMessagesServer({ apiKey: KEY });
  v2 = await startV2Server();
  v1 = await startV1Server();
  flakyState = newV2State();
  flaky = await startV2Server({ state: flakyState });

  const port = await freePort();
  everything = Bun.spawn([BUN, EVERYTHING, "streamableHttp"], {
    env: { ...process.env, PORT: String(port) },
    stdout: "ignore",
    stderr: "pipe",
  });
  everythingUrl = `http://127.0.0.1:${port}/mcp`;
  // it is up once /mcp answers at all (a GET without a session is its 400)
  await until("server-everything listening", async () => (await fetch(everythingUrl)).status > 0, 20_000);

  const mcpA = `mcp:
  servers:
    v2: {url: "${v2.url}"}
    v1: {url: "${v1.url}"}
    everything: {url: "${everythingUrl}"}
    flaky: {url: "${flaky.url}"}
    capped: {url: "${v2.url}", timeout: 1s, max_result_bytes: 4096}
`;
  const mcpB = `mcp:
  approve_destructive: true
  servers:
    v2: {url: "${v2.url}"}
    v1: {url: "${v1.url}"}
    v2s: {command: ${JSON.stringify([BUN, V2_SERVER, "--stdio", "--calls", v2sCalls])}}
    v1s: {command: ${JSON.stringify([BUN, V1_SERVER, "--stdio", "--calls", v1sCalls])}}
`;
  const env = { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url };
  [a, b] = await Promise.all([
    startKernel({ manifests: MANIFESTS_A, kernelYaml: INFERENCE + mcpA, env }),
    startKernel({ manifests: MANIFESTS_B, kernelYaml: INFERENCE + mcpB, env }),
  ]);
  // give the kernels the time to connect; the tests say what is missing if they never do
  await Promise.all([
    allConnected(a, ["v2", "v1", "everything", "flaky", "capped"]).catch(() => {}),
    allConnected(b, ["v2", "v1", "v2s", "v1s"]).catch(() => {}),
  ]);
}, 60_000);

afterAll(async () => {
  for (const k of [a, b]) {
    if (!k) continue;
    await k.stop();
    cleanup(k);
  }
  everything?.kill();
  await everything?.exited;
  await Promise.all([v2?.stop(), v1?.stop(), flaky?.stop(), srv?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

describe("external MCP servers over Streamable HTTP", () => {
  test("mcp.servers shows each server connected, with its tools and the protocol it speaks", async () => {
    const list = await allConnected(a, ["v2", "v1", "everything", "flaky", "capped"]);
    const v2s = list.find((s) => s.name === "v2");
    expect(v2s).toMatchObject({ transport: "http", target: v2.url, state: "connected", protocol: "2026-07-28" });
    expect([...v2s.tools].sort()).toEqual(["add", "big", "fail", "grow", "slow", "wipe"].map((t) => `mcp.v2.${t}`));
    expect(typeof v2s.since).toBe("string");
    const v1s = list.find((s) => s.name === "v1");
    // the v1 SDK speaks the 2025 line: the kernel fell back to initialize
    expect(v1s).toMatchObject({ transport: "http", target: v1.url, state: "connected", protocol: "2025-11-25" });
    expect([...v1s.tools].sort()).toEqual(["mcp.v1.mul", "mcp.v1.wipe"]);
    const ev = list.find((s) => s.name === "everything");
    expect(ev).toMatchObject({ transport: "http", target: everythingUrl, state: "connected" });
    expect(ev.tools).toEqual(expect.arrayContaining(["mcp.everything.echo", "mcp.everything.get-sum"]));
    // what the kernel lists is what the server itself answers to tools/list
    expect([...ev.tools].sort()).toEqual(
      (await serverTools(everythingUrl)).map((t) => `mcp.everything.${t.name}`).sort(),
    );
  });

  test("tool.list shows an agent exactly the mcp tools it holds, with the server's JSON Schema", async () => {
    const user = await spawn(a, "mcpuser");
    const tools = (await callA("tool.list", { agent_id: user })).tools as any[];
    const mcp = tools.filter((t) => t.name.startsWith("mcp.")).map((t) => t.name);
    expect(mcp.sort()).toEqual(
      [
        "mcp.everything.echo",
        "mcp.v1.mul",
        "mcp.v2.add",
        "mcp.v2.big",
        "mcp.v2.fail",
        "mcp.v2.grow",
        "mcp.v2.slow",
        "mcp.v2.wipe",
      ].sort(),
    );
    const own = await serverTools(v2.url);
    for (const name of ["add", "wipe", "big"]) {
      const kernelTool = tools.find((t) => t.name === `mcp.v2.${name}`);
      const serverTool = own.find((t) => t.name === name);
      expect(kernelTool.effect).toBe("irreversible");
      expect(kernelTool.description).toContain(serverTool.description);
      const { $schema: _, ...schema } = serverTool.inputSchema;
      expect(kernelTool.input_schema).toMatchObject(schema);
    }
    const echo = tools.find((t) => t.name === "mcp.everything.echo");
    expect(echo.input_schema).toMatchObject({
      type: "object",
      properties: { message: { type: "string" } },
      required: ["message"],
    });

    // a grant of one tool shows that one only
    const only = await spawn(a, "addonly");
    expect((await toolNames(a, only)).filter((n) => n.startsWith("mcp."))).toEqual(["mcp.v2.add"]);

    // the operator's view (no agent_id) has every tool of every server
    const all = ((await callA("tool.list", {})).tools as any[]).map((t) => t.name);
    expect(all).toEqual(expect.arrayContaining(["mcp.v1.wipe", "mcp.everything.get-sum", "mcp.capped.slow"]));
  });

  test("a grant naming an unconfigured server is an invalid manifest (-32005)", async () => {
    const e = await rpcError(callA("agent.spawn", { manifest: m("stray", ["tool: mcp.nosuch.add"]) }), -32005);
    expect(e.message).toContain("mcp.nosuch.add");
    expect(e.data).toMatchObject({ path: expect.anything(), line: expect.any(Number) });
  });

  test("an agent driven by the model calls mcp.v2.add, mcp.v1.mul and server-everything's echo; audited", async () => {
    const user = await spawn(a, "mcpuser");
    srv.reset();
    // a first run shows what the kernel offers the model
    srv.script([{ match: { system: "MCPUSER-AGENT", contains: "what tools" }, text: "I see them." }]);
    expect((await callA("agent.run", { agent_id: user, message: "what tools do you have?" })).response).toBe(
      "I see them.",
    );
    const offered = srv.requests.at(-1)!.body.tools as any[];
    const wire = (kernelName: string) => {
      const flat = kernelName.replace(/[^A-Za-z0-9]/g, "");
      const t = offered.find((t) => t.name === kernelName || t.name.replace(/[^A-Za-z0-9]/g, "") === flat);
      if (!t) throw new Error(`${kernelName} was not offered to the model: ${offered.map((t) => t.name)}`);
      return t;
    };
    expect(wire("mcp.v2.add").input_schema).toMatchObject({ properties: { a: { type: "number" } } });
    expect(wire("mcp.v1.mul").input_schema).toMatchObject({ properties: { b: { type: "number" } } });
    expect(wire("mcp.everything.echo").input_schema).toMatchObject({ properties: { message: { type: "string" } } });
    expect(offered.map((t) => t.name)).not.toContain("mcp.v1.wipe");

    const before = { add: v2.calls("add"), mul: v1.calls("mul") };
    srv.script([
      {
        match: { system: "MCPUSER-AGENT", contains: "compute please" },
        content: [
          { type: "tool_use", name: wire("mcp.v2.add").name, input: { a: 2, b: 40 } },
          { type: "tool_use", name: wire("mcp.v1.mul").name, input: { a: 6, b: 7 } },
          { type: "tool_use", name: wire("mcp.everything.echo").name, input: { message: "hi-everything" } },
        ],
      },
      { match: { system: "MCPUSER-AGENT", contains: "PRODUCT=42" }, text: "All three answered." },
    ]);
    const r = await callA("agent.run", { agent_id: user, message: "compute please" });
    expect(r.response).toBe("All three answered.");
    expect(r.tool_calls).toHaveLength(3);
    expect(r.tool_calls.map((c: any) => c.ok)).toEqual([true, true, true]);
    expect(textOf(r.tool_calls[0].output)).toContain("SUM=42");
    expect(textOf(r.tool_calls[1].output)).toContain("PRODUCT=42");
    expect(textOf(r.tool_calls[2].output)).toContain("Echo: hi-everything");
    expect(srv.pending()).toBe(0);
    // the model got the three results back
    const last = JSON.stringify(srv.requests.at(-1)!.body.messages);
    for (const s of ["SUM=42", "PRODUCT=42", "Echo: hi-everything"]) expect(last).toContain(s);
    // each reached its server once
    expect(v2.calls("add")).toBe(before.add + 1);
    expect(v1.calls("mul")).toBe(before.mul + 1);

    const events = await audit(a, { agent_id: user, kind: "tool.*" });
    for (const [tool, server, mcpTool, input] of [
      ["mcp.v2.add", "v2", "add", { a: 2, b: 40 }],
      ["mcp.v1.mul", "v1", "mul", { a: 6, b: 7 }],
      ["mcp.everything.echo", "everything", "echo", { message: "hi-everything" }],
    ] as const) {
      const call = events.find((e) => e.kind === "tool.call" && e.tool === tool);
      expect(call).toMatchObject({ server, mcp_tool: mcpTool, input, via: "model" });
      const result = events.find((e) => e.kind === "tool.result" && e.call_seq === call.seq);
      expect(result).toMatchObject({ tool, ok: true });
      expect(result.result_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(result.bytes).toBeGreaterThan(0);
    }
  });

  test("every tool name the kernel offers the model fits the Messages API's rule", async () => {
    const user = await spawn(a, "mcpuser");
    srv.reset();
    srv.script([{ match: { system: "MCPUSER-AGENT", contains: "names" }, text: "ok" }]);
    await callA("agent.run", { agent_id: user, message: "names?" });
    const names = (srv.requests.at(-1)!.body.tools as any[]).map((t) => t.name);
    expect(names.length).toBeGreaterThanOrEqual(8);
    // a dot is a 400 from the real API ("tools.N.custom.name: String should match pattern")
    expect(names.filter((n) => !API_TOOL_NAME.test(n))).toEqual([]);
  });

  test("a denied call is capability.denied and never reaches the server; bad input neither", async () => {
    const only = await spawn(a, "addonly");
    const before = { v2: v2.calls(), v1: v1.calls() };
    const e = await rpcError(invoke(a, only, "mcp.v2.wipe", { target: "everything" }), -32001);
    expect(e.data).toMatchObject({ tool: "mcp.v2.wipe", capability: "tool: mcp.v2.wipe" });
    await rpcError(invoke(a, only, "mcp.v1.mul", { a: 1, b: 2 }), -32001);
    const denied = await audit(a, { agent_id: only, kind: "capability.denied" });
    expect(denied.map((d) => d.tool)).toEqual(expect.arrayContaining(["mcp.v2.wipe", "mcp.v1.mul"]));
    expect(await audit(a, { agent_id: only, kind: "tool.call" })).toEqual([]);

    // through the model: the refusal is the tool's result, the server still untouched
    srv.reset();
    srv.script([{ match: { system: "ADDONLY-AGENT", contains: "look" }, text: "looked" }]);
    await callA("agent.run", { agent_id: only, message: "look" });
    const addWire = (srv.requests.at(-1)!.body.tools as any[]).find((t) => /add$/.test(t.name)).name as string;
    const wipeWire = addWire.slice(0, -"add".length) + "wipe";
    srv.script([
      {
        match: { system: "ADDONLY-AGENT", contains: "wipe it" },
        content: [{ type: "tool_use", name: wipeWire, input: { target: "all" } }],
      },
      { match: { system: "ADDONLY-AGENT", contains: "is_error" }, text: "refused" },
    ]);
    const r = await callA("agent.run", { agent_id: only, message: "wipe it" });
    expect(r.response).toBe("refused");
    expect(r.tool_calls[0]).toMatchObject({ ok: false, error: { code: -32001 } });
    expect(v2.calls()).toBe(before.v2);
    expect(v1.calls()).toBe(before.v1);

    // input the server's schema refuses is -32602, before the server
    const user = await spawn(a, "mcpuser");
    const bad = await rpcError(invoke(a, user, "mcp.v2.add", { a: "two", b: 1 }), -32602);
    expect(bad.message).toContain("input.a");
    expect(bad.data).toMatchObject({ tool: "mcp.v2.add" });
    expect((await rpcError(invoke(a, user, "mcp.v2.add", { a: 1 }), -32602)).message).toContain("input.b");
    expect(v2.calls()).toBe(before.v2);
  });

  test("a tool named in approval_required waits for approval.respond; approve runs it, deny never does", async () => {
    const gated = await spawn(a, "gated");
    const before = v2.calls("wipe");
    const requested = a.client.waitFor("approval.requested", 10_000, (p) => p.agent_id === gated);
    const pending = invoke(a, gated, "mcp.v2.wipe", { target: "t1" });
    const note = await requested;
    expect(note).toMatchObject({ tool: "mcp.v2.wipe", input: { target: "t1" } });
    await Bun.sleep(200);
    expect(v2.calls("wipe")).toBe(before); // waiting, not called
    expect((await callA("approval.list")).approvals.map((x: any) => x.id)).toContain(note.id);
    await callA("approval.respond", { id: note.id, decision: "approve" });
    expect(textOf((await pending).output)).toContain("wiped t1");
    expect(v2.calls("wipe")).toBe(before + 1);

    const again = a.client.waitFor("approval.requested", 10_000, (p) => p.agent_id === gated);
    const refused = invoke(a, gated, "mcp.v2.wipe", { target: "t2" });
    const n2 = await again;
    await callA("approval.respond", { id: n2.id, decision: "deny", reason: "not this one" });
    await rpcError(refused, -32003);
    expect(v2.calls("wipe")).toBe(before + 1);

    // without approval_required, and approve_destructive off (kernel A), the same tool runs at once
    const user = await spawn(a, "mcpuser");
    expect(textOf((await invoke(a, user, "mcp.v2.wipe", { target: "t0" })).output)).toContain("wiped t0");
    expect(v2.calls("wipe")).toBe(before + 2);
  });

  test("approve_destructive: a destructiveHint tool waits for approval for any agent (v2 and v1 servers)", async () => {
    await allConnected(b, ["v2", "v1"]);
    const d = await spawn(b, "destr");
    // a tool without the hint runs at once
    expect(textOf((await invoke(b, d, "mcp.v2.add", { a: 1, b: 1 })).output)).toContain("SUM=2");
    for (const [tool, srvCalls, text] of [
      ["mcp.v2.wipe", () => v2.calls("wipe"), "wiped d1"],
      ["mcp.v1.wipe", () => v1.calls("wipe"), "v1 wiped d1"],
    ] as const) {
      const before = srvCalls();
      const requested = b.client.waitFor("approval.requested", 10_000, (p) => p.agent_id === d && p.tool === tool);
      const pending = invoke(b, d, tool, { target: "d1" });
      const note = await requested;
      await Bun.sleep(200);
      expect(srvCalls()).toBe(before);
      await callB("approval.respond", { id: note.id, decision: "approve" });
      expect(textOf((await pending).output)).toContain(text);
      expect(srvCalls()).toBe(before + 1);
    }
    expect(textOf((await invoke(b, d, "mcp.v1.mul", { a: 3, b: 3 })).output)).toContain("PRODUCT=9");
  });

  test("a server that is down is a clear error naming it; the kernel reconnects and the call works again", async () => {
    const u = await spawn(a, "flakyuser");
    expect(textOf((await invoke(a, u, "mcp.flaky.add", { a: 1, b: 2 })).output)).toContain("SUM=3");
    const port = flaky.port;
    await flaky.stop();
    const e = await rpcError(invoke(a, u, "mcp.flaky.add", { a: 1, b: 2 }), -32603);
    expect(e.message).toMatch(/MCP server "?flaky"? is unreachable/);
    const down = await until("flaky reported down", async () => {
      const s = await serverOf(a, "flaky");
      return s?.state === "down" ? s : null;
    });
    expect(typeof down.error).toBe("string");
    // v2 and the others are not affected
    expect((await serverOf(a, "v2")).state).toBe("connected");

    // stay down past the first retry (1 s), so the backoff has failed at least once
    await Bun.sleep(1_500);
    expect((await serverOf(a, "flaky")).state).toBe("down");
    flaky = await startV2Server({ port, state: flakyState });
    // the kernel comes back by itself (its backoff timer), before anyone calls
    await until(
      "flaky connected again without a call",
      async () => (await serverOf(a, "flaky"))?.state === "connected",
      20_000,
    );
    const back = await invoke(a, u, "mcp.flaky.add", { a: 20, b: 3 });
    expect(textOf(back.output)).toContain("SUM=23");
    expect((await serverOf(a, "flaky")).state).toBe("connected");
    const states = (await audit(a, { kind: "mcp.server" })).filter((x) => x.server === "flaky").map((x) => x.state);
    // state changes only: the failed retries while it was down are not each a record
    expect(states).toEqual(["connected", "down", "connected"]);
  }, 45_000);

  test("tools/list_changed: after grow, the new tool appears as mcp.v2.extra and can be called", async () => {
    const user = await spawn(a, "mcpuser");
    expect(await toolNames(a, user)).not.toContain("mcp.v2.extra");
    await rpcError(invoke(a, user, "mcp.v2.extra", {}), -32001);
    expect(textOf((await invoke(a, user, "mcp.v2.grow", {})).output)).toContain("grown");
    await until("mcp.v2.extra in tool.list", async () => (await toolNames(a, user)).includes("mcp.v2.extra"));
    expect(textOf((await invoke(a, user, "mcp.v2.extra", {})).output)).toContain("EXTRA-OK");
    expect((await serverOf(a, "v2")).tools).toContain("mcp.v2.extra");
    const changes = (await audit(a, { kind: "mcp.tools" })).filter((x) => x.server === "v2");
    expect(changes.some((x) => (x.added ?? []).includes("extra"))).toBe(true);
    // an agent granted only add still does not see it
    const only = await spawn(a, "addonly");
    expect(await toolNames(a, only)).not.toContain("mcp.v2.extra");
  });

  test("max_result_bytes and timeout: an oversized result and a slow call are clear errors", async () => {
    const c = await spawn(a, "capper");
    expect(textOf((await invoke(a, c, "mcp.capped.big", { bytes: 100 })).output)).toContain("x".repeat(100));
    const big = await rpcError(invoke(a, c, "mcp.capped.big", { bytes: 10_000 }), -32603);
    expect(big.message).toMatch(/4096|max_result_bytes/);
    expect(big.message).toContain("capped");

    expect(textOf((await invoke(a, c, "mcp.capped.slow", { ms: 10 })).output)).toContain("slept 10");
    const t0 = Date.now();
    const slow = await rpcError(invoke(a, c, "mcp.capped.slow", { ms: 5_000 }), -32009);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(4_000);
    expect(slow.message).toContain("capped");

    // an isError result is a tool error carrying the server's text
    const fail = await rpcError(invoke(a, c, "mcp.capped.fail", {}), -32603);
    expect(fail.message).toContain("fixture failure: fail was asked to fail");

    const results = (await audit(a, { agent_id: c, kind: "tool.result" })).filter((r) => r.ok === false);
    expect(results.map((r) => r.tool)).toEqual(
      expect.arrayContaining(["mcp.capped.big", "mcp.capped.slow", "mcp.capped.fail"]),
    );
  });
});

describe("external MCP servers over stdio (host mode command:)", () => {
  test("the v2 and v1 fixtures launched by the kernel list and answer their tools", async () => {
    const list = await allConnected(b, ["v2s", "v1s"]);
    const v2s = list.find((s) => s.name === "v2s");
    const v1s = list.find((s) => s.name === "v1s");
    expect(v2s).toMatchObject({ transport: "stdio", state: "connected" });
    expect(v2s.tools).toEqual(
      expect.arrayContaining(["add", "slow", "big", "wipe", "fail", "grow"].map((t) => `mcp.v2s.${t}`)),
    );
    expect(v1s).toMatchObject({ transport: "stdio", state: "connected" });
    expect([...v1s.tools].sort()).toEqual(["mcp.v1s.mul", "mcp.v1s.wipe"]);

    const u = await spawn(b, "stdiouser");
    const names = await toolNames(b, u);
    expect(names).toEqual(expect.arrayContaining(["mcp.v2s.add", "mcp.v1s.mul", "mcp.v1s.wipe"]));
    expect(textOf((await invoke(b, u, "mcp.v2s.add", { a: 5, b: 8 })).output)).toContain("SUM=13");
    expect(textOf((await invoke(b, u, "mcp.v1s.mul", { a: 5, b: 8 })).output)).toContain("PRODUCT=40");
    expect(lines(v2sCalls)).toEqual(["add"]);
    expect(lines(v1sCalls)).toEqual(["mul"]);
    const call = (await audit(b, { agent_id: u, kind: "tool.call" })).find((e) => e.tool === "mcp.v1s.mul");
    expect(call).toMatchObject({ server: "v1s", mcp_tool: "mul", via: "rpc" });

    // approve_destructive holds for stdio servers too
    const requested = b.client.waitFor("approval.requested", 10_000, (p) => p.agent_id === u);
    const pending = invoke(b, u, "mcp.v1s.wipe", { target: "s1" });
    const note = await requested;
    expect(lines(v1sCalls)).toEqual(["mul"]);
    await callB("approval.respond", { id: note.id, decision: "deny" });
    await rpcError(pending, -32003);
    expect(lines(v1sCalls)).toEqual(["mul"]);
  });

  test("list_changed over stdio: grow on the stdio v2 server shows mcp.v2s.extra", async () => {
    const u = await spawn(b, "stdiouser");
    expect(await toolNames(b, u)).not.toContain("mcp.v2s.extra");
    await invoke(b, u, "mcp.v2s.grow", {});
    await until("mcp.v2s.extra in tool.list", async () => (await toolNames(b, u)).includes("mcp.v2s.extra"));
    expect(textOf((await invoke(b, u, "mcp.v2s.extra", {})).output)).toContain("EXTRA-OK");
    expect(lines(v2sCalls)).toEqual(expect.arrayContaining(["grow", "extra"]));
  });
});
