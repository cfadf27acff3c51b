// The kernel as an MCP server, proved with real clients no one here wrote:
// the official v2 client (@modelcontextprotocol/client, negotiating 2026-07-28
// through server/discover) and the v1 client (@modelcontextprotocol/sdk, the
// 2025-11-25 initialize handshake), each over Streamable HTTP at /mcp on the
// kernel's HTTP listener (bearer token per principal) and over stdio through
// `aaosctl mcp --as NAME --socket SOCK`. Each client is a principal declared in
// kernel.yaml mcp.clients: "desk" (echo behind an approval, file_read on the
// agents' area, a served method of a live agent, spawn_child for agent_run) and
// "narrow" (echo only). What a principal sees and may do is checked against
// the kernel's own answers over the RPC socket (mcp.clients, tool.list,
// audit.query, approval.list / approval.respond). One kernel for the file.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioV2 } from "@modelcontextprotocol/client/stdio";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as HttpV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport as StdioV1 } from "@modelcontextprotocol/sdk/client/stdio.js";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const ROOT = resolve(import.meta.dir, "../..");
const KEY = "sk-ant-api03-MCPCLIENTS-0a1b2c3d4e5f60718293";
const MODEL = "claude-haiku-4-5-20251001";
const DESK_TOKEN = "desk-token-7f3a9c1e5b2d48f6a0c3e7b19d5f2a64";
const NARROW_TOKEN = "narrow-token-2b8e4d6f1a3c5e7092b4d6f8a1c3e5f7";
const FOREIGN = "http://evil.example";

const LOOKUP_PARAMS = {
  type: "object",
  properties: { key: { type: "string" } },
  required: ["key"],
  additionalProperties: false,
};
const LOOKUP_RESULT = { type: "object", properties: { value: { type: "string" } }, required: ["value"] };

let k: RunningKernel;
let llm: MessagesServer;
let mcpUrl: string;
let filesDir: string;
/** agent ids of the principals, from mcp.clients */
const principal: Record<"desk" | "narrow", string> = { desk: "", narrow: "" };
let servedId: string;

beforeAll(async () => {
  llm = await startMessagesServer({ apiKey: KEY });
  const dir = mkdtempSync(join(tmpdir(), "aaos-mcp-"));
  const configDir = join(dir, "config");
  filesDir = join(dir, "data", "files");
  mkdirSync(join(configDir, "secrets"), { recursive: true });
  mkdirSync(join(filesDir, "notes"), { recursive: true });
  writeFileSync(join(configDir, "secrets", "desk.token"), DESK_TOKEN + "\n", { mode: 0o600 });
  writeFileSync(join(configDir, "secrets", "narrow.token"), NARROW_TOKEN + "\n", { mode: 0o600 });
  writeFileSync(join(filesDir, "notes", "hello.txt"), "hello from the files area 4417\n");
  k = await startKernel({
    dir,
    extraListen: ["http:127.0.0.1:0"],
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    kernelYaml: `approval:
  timeout: 60s
inference:
  max_concurrency: 8
  request_timeout_ms: 20000
  retry:
    base_delay_ms: 5
    max_delay_ms: 20
    max_retries: 0
mcp:
  clients:
    desk:
      manifest: desk
      token_file: secrets/desk.token
    narrow:
      manifest: narrow
      token_file: secrets/narrow.token
`,
    manifests: {
      desk: `name: desk
model: ${MODEL}
system_prompt: "You are the DESK principal."
capabilities:
  - echo
  - "file_read: ${filesDir}/*"
  - "call: served.lookup"
spawn_child: [helper]
approval_required: [echo]
`,
      narrow: `name: narrow
model: ${MODEL}
system_prompt: "You are the NARROW principal."
capabilities:
  - echo
`,
      served: `name: served
model: ${MODEL}
system_prompt: "You are SERVED-AGENT."
max_turns: 2
serves:
  lookup:
    description: look a key up
    params:
      type: object
      properties:
        key: {type: string}
      required: [key]
      additionalProperties: false
    result:
      type: object
      properties:
        value: {type: string}
      required: [value]
`,
      helper: `name: helper
model: ${MODEL}
system_prompt: "You are HELPER-AGENT."
max_turns: 1
`,
    },
  });
  const tokens = await k.client.call<{ urls: string[] }>("web.tokens", {});
  mcpUrl = tokens.urls[0]! + "mcp";
  const clients = (await k.client.call<{ clients: any[] }>("mcp.clients", {})).clients;
  for (const c of clients) if (c.name === "desk" || c.name === "narrow") principal[c.name as "desk"] = c.agent_id;
  servedId = (await k.client.call<{ agent_id: string }>("agent.spawn", { name: "served" })).agent_id;
});

afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
});

const rpc = <T = any>(method: string, params: object = {}) => k.client.call<T>(method, params);

/** poll until the predicate holds (the test's own timeout bounds it) */
async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

/** the whole audit log, paged with since_seq */
async function auditAll(params: Record<string, unknown> = {}): Promise<any[]> {
  const out: any[] = [];
  let since_seq: number | undefined;
  for (;;) {
    const r = await rpc<{ events: any[]; next_seq?: number }>("audit.query", {
      ...params,
      limit: 1000,
      ...(since_seq !== undefined ? { since_seq } : {}),
    });
    out.push(...r.events);
    if (r.events.length < 1000 || r.next_seq === undefined) return out;
    since_seq = r.next_seq;
  }
}

const textOf = (r: any): string => (r.content ?? []).map((c: any) => (c.type === "text" ? c.text : "")).join("");

// ---- one adapter over both SDKs and both transports ----------------------

type Sdk = "v2" | "v1";
type Wire = "http" | "stdio";

interface Conn {
  /** the protocol version the client negotiated */
  version: string | undefined;
  era?: string | undefined;
  client: any;
  stderr: () => string;
  listTools(): Promise<any[]>;
  call(name: string, args: Record<string, unknown>, onprogress?: (p: any) => void): Promise<any>;
  listResources(): Promise<any[]>;
  read(uri: string): Promise<any>;
  close(): Promise<void>;
}

function stdioParams(as: string) {
  return {
    command: process.execPath,
    args: [join(ROOT, "cli/main.ts"), "mcp", "--as", as, "--socket", k.socket],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? tmpdir() },
    cwd: ROOT,
    stderr: "pipe" as const,
  };
}

async function connect(sdk: Sdk, wire: Wire, as: "desk" | "narrow"): Promise<Conn> {
  const token = as === "desk" ? DESK_TOKEN : NARROW_TOKEN;
  const headers = { authorization: `Bearer ${token}` };
  let err = "";
  let negotiated: string | undefined;
  let client: any;
  let transport: any;
  if (sdk === "v2") {
    client = new ClientV2({ name: "mcp-clients-test-v2", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
    transport =
      wire === "http" ? new HttpV2(new URL(mcpUrl), { requestInit: { headers } }) : new StdioV2(stdioParams(as));
  } else {
    client = new ClientV1({ name: "mcp-clients-test-v1", version: "1.0.0" });
    transport =
      wire === "http" ? new HttpV1(new URL(mcpUrl), { requestInit: { headers } }) : new StdioV1(stdioParams(as));
    // the v1 client hands the initialize result's protocolVersion to the transport
    const set = transport.setProtocolVersion?.bind(transport);
    transport.setProtocolVersion = (v: string) => {
      negotiated = v;
      set?.(v);
    };
  }
  transport.stderr?.on?.("data", (d: Buffer) => (err += d.toString()));
  try {
    await client.connect(transport);
  } catch (e) {
    throw new Error(`${sdk} ${wire} connect as ${as} failed: ${String(e)}\nstderr: ${err}`);
  }
  return {
    version: sdk === "v2" ? client.getNegotiatedProtocolVersion() : negotiated,
    era: sdk === "v2" ? client.getProtocolEra() : undefined,
    client,
    stderr: () => err,
    listTools: async () => (await client.listTools()).tools,
    call: (name, args, onprogress) => {
      const options = onprogress ? { onprogress, timeout: 60_000 } : { timeout: 60_000 };
      // v1's callTool takes (params, resultSchema?, options?); v2's (params, options?)
      return sdk === "v2"
        ? client.callTool({ name, arguments: args }, options)
        : client.callTool({ name, arguments: args }, undefined, options);
    },
    listResources: async () => (await client.listResources()).resources,
    read: (uri) => client.readResource({ uri }),
    close: () => client.close(),
  };
}

/** the kernel's own answer: the names of the tools this principal may call */
async function kernelToolNames(agent_id: string): Promise<string[]> {
  return (await rpc<{ tools: any[] }>("tool.list", { agent_id })).tools.map((t) => t.name);
}

/** the pending approval of the desk principal's echo with this message */
function approvalFor(message: string): Promise<any> {
  return until(`the approval of echo "${message}"`, async () =>
    (await rpc<{ approvals: any[] }>("approval.list")).approvals.find(
      (a) => a.agent_id === principal.desk && a.tool === "echo" && a.input?.message === message,
    ),
  );
}

// ---- the four clients ------------------------------------------------------

const FLAVORS: { sdk: Sdk; wire: Wire; version: string }[] = [
  { sdk: "v2", wire: "http", version: "2026-07-28" },
  { sdk: "v2", wire: "stdio", version: "2026-07-28" },
  { sdk: "v1", wire: "http", version: "2025-11-25" },
  { sdk: "v1", wire: "stdio", version: "2025-11-25" },
];

describe.each(FLAVORS)("the $sdk client over $wire", ({ sdk, wire, version }) => {
  const tag = `${sdk}-${wire}`;
  let desk: Conn;
  let narrow: Conn;

  beforeAll(async () => {
    desk = await connect(sdk, wire, "desk");
    narrow = await connect(sdk, wire, "narrow");
  });
  afterAll(async () => {
    await desk?.close().catch(() => {});
    await narrow?.close().catch(() => {});
  });

  test(`connects speaking ${version}; desk's tools/list is exactly its kernel tools, served.lookup and agent_run`, async () => {
    expect(principal.desk).toMatch(/^ag-/);
    expect(desk.version).toBe(version);
    if (sdk === "v2") expect(desk.era).toBe("modern");
    const tools = await desk.listTools();
    const names = tools.map((t) => t.name).sort();
    const kernel = await kernelToolNames(principal.desk);
    expect(kernel).toEqual(expect.arrayContaining(["echo", "file_read"]));
    expect(kernel).not.toContain("file_write");
    expect(names).toEqual([...kernel, "served.lookup", "agent_run"].sort());
    expect(names).not.toContain("file_write");
    expect(names).not.toContain("web_fetch");

    const lookup = tools.find((t) => t.name === "served.lookup");
    expect(lookup.inputSchema).toMatchObject(LOOKUP_PARAMS);
    expect(lookup.outputSchema).toMatchObject(LOOKUP_RESULT);
    const run = tools.find((t) => t.name === "agent_run");
    expect(run.inputSchema.type).toBe("object");
    expect(Object.keys(run.inputSchema.properties).sort()).toEqual(["agent", "message"]);
    expect(JSON.stringify(run.inputSchema.properties.agent)).toContain("helper");
    const fileRead = tools.find((t) => t.name === "file_read");
    expect(fileRead.inputSchema).toMatchObject({ type: "object", properties: { path: { type: "string" } } });
    expect(fileRead.annotations?.readOnlyHint).toBe(true);
  });

  test("narrow sees only its own tools, and desk's are denied to it", async () => {
    expect(narrow.version).toBe(version);
    const names = (await narrow.listTools()).map((t) => t.name).sort();
    expect(names).toEqual((await kernelToolNames(principal.narrow)).sort());
    expect(names).toEqual(["echo"]);
    // narrow's echo needs no approval: its manifest says none
    const r = await narrow.call("echo", { message: `narrow-${tag}` });
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toContain(`narrow-${tag}`);
    for (const [name, args] of [
      ["file_read", { path: join(filesDir, "notes", "hello.txt") }],
      ["served.lookup", { key: "k" }],
      ["agent_run", { agent: "helper", message: "hi" }],
    ] as const) {
      const d = await narrow.call(name, args);
      expect(d.isError).toBe(true);
      expect(textOf(d)).not.toContain("4417");
    }
  });

  test("an allowed tool, a served method and agent_run answer", async () => {
    const r = await desk.call("file_read", { path: join(filesDir, "notes", "hello.txt") });
    expect(r.isError).toBeFalsy();
    expect(JSON.stringify(r)).toContain("hello from the files area 4417");

    const value = `value-${tag}-8813`;
    llm.script([
      {
        match: { system: "SERVED-AGENT", contains: `key-${tag}` },
        content: [{ type: "tool_use", name: "reply", input: { value } }],
      },
    ]);
    const s = await desk.call("served.lookup", { key: `key-${tag}` });
    expect(s.isError).toBeFalsy();
    expect(s.structuredContent).toEqual({ value });
    const req = await until("the agent.request of the served call", async () =>
      (await rpc<{ events: any[] }>("audit.query", { kind: "agent.request", limit: 1000 })).events.find(
        (e) => e.to === servedId && e.agent_id === principal.desk && JSON.stringify(e).includes("lookup"),
      ),
    );
    expect(req.method).toBe("lookup");

    const answer = `helper answered ${tag} 5521`;
    llm.script([{ match: { system: "HELPER-AGENT", contains: `run-${tag}` }, text: answer }]);
    const a = await desk.call("agent_run", { agent: "helper", message: `run-${tag}` });
    expect(a.isError).toBeFalsy();
    expect(textOf(a)).toContain(answer);
    // the child ran under the principal and was stopped
    const spawn = await until("the helper's spawn", async () =>
      (await rpc<{ events: any[] }>("audit.query", { kind: "agent.spawn", limit: 1000 })).events.findLast(
        (e) => e.parent_id === principal.desk && e.name === "helper",
      ),
    );
    const child = spawn.agent_id as string;
    await until(
      "the helper to be stopped",
      async () => (await rpc("agent.status", { agent_id: child })).state === "stopped",
    );
  });

  test("a tool the principal lacks is an isError result, audited as capability.denied via mcp", async () => {
    const path = join(filesDir, "notes", `denied-${tag}.txt`);
    const r = await desk.call("file_write", { path, content: "nope" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("file_write");
    // outside its file_read grant: denied too
    const r2 = await desk.call("file_read", { path: "/etc/hostname" });
    expect(r2.isError).toBe(true);
    const denied = await until("capability.denied via mcp", async () =>
      (await rpc<{ events: any[] }>("audit.query", { kind: "capability.denied", limit: 1000 })).events.filter(
        (e) => e.agent_id === principal.desk && e.via === "mcp",
      ),
    );
    const w = denied.find((e) => e.tool === "file_write");
    expect(w).toMatchObject({ tool: "file_write", via: "mcp", client: "desk", capability: expect.any(String) });
    expect(denied.find((e) => e.tool === "file_read" && JSON.stringify(e).includes("/etc/hostname"))).toBeTruthy();
    // the tool never ran
    expect(await Bun.file(path).exists()).toBe(false);
  });

  test("a call that needs approval waits without holding the connection; approved it completes, denied it is isError", async () => {
    const message = `approve-me-${tag}`;
    const progress: any[] = [];
    let settled = false;
    const pending = desk.call("echo", { message }, (p) => progress.push(p)).finally(() => (settled = true));
    const approval = await approvalFor(message);
    // the same client goes on while that call waits
    const other = await desk.call("file_read", { path: join(filesDir, "notes", "hello.txt") });
    expect(JSON.stringify(other)).toContain("4417");
    const also = await desk.listTools();
    expect(also.length).toBeGreaterThan(0);
    expect(settled).toBe(false);
    await until("a progress notification", async () => progress.length > 0);
    expect(JSON.stringify(progress)).toContain(approval.id);
    await rpc("approval.respond", { id: approval.id, decision: "approve" });
    const r = await pending;
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toContain(message);

    const denyMessage = `deny-me-${tag}`;
    const pending2 = desk.call("echo", { message: denyMessage });
    const approval2 = await approvalFor(denyMessage);
    await rpc("approval.respond", { id: approval2.id, decision: "deny", reason: `not today ${tag}` });
    const d = await pending2;
    expect(d.isError).toBe(true);
    expect(textOf(d)).toContain(`not today ${tag}`);
    const decided = (await rpc<{ events: any[] }>("audit.query", { kind: "approval.decided", limit: 1000 })).events;
    expect(decided.find((e) => e.approval_id === approval.id)).toMatchObject({ tool: "echo", decision: "approve" });
    expect(decided.find((e) => e.approval_id === approval2.id)).toMatchObject({ tool: "echo", decision: "deny" });
  });

  test("resources: aaos://self/status and aaos://self/audit are the principal's own", async () => {
    const uris = (await desk.listResources()).map((r) => r.uri);
    expect(uris).toEqual(expect.arrayContaining(["aaos://self/status", "aaos://self/audit"]));
    expect(uris).toContain(`aaos://agents/${servedId}/status`);

    const status = await desk.read("aaos://self/status");
    expect(status.contents).toHaveLength(1);
    expect(status.contents[0].uri).toBe("aaos://self/status");
    const st = JSON.parse(status.contents[0].text);
    expect(st).toMatchObject({ agent_id: principal.desk, name: "desk" });
    expect(st.capabilities).toEqual(expect.arrayContaining(["tool: echo"]));

    const audit = await desk.read("aaos://self/audit");
    const body = JSON.parse(audit.contents[0].text);
    const records: any[] = Array.isArray(body) ? body : (body.events ?? body.records);
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThanOrEqual(200);
    expect(records.every((e) => e.agent_id === principal.desk)).toBe(true);
    // what this client just did is in it: the denial from the test before
    expect(records.some((e) => e.kind === "capability.denied" && e.tool === "file_write" && e.via === "mcp")).toBe(
      true,
    );

    const served = await desk.read(`aaos://agents/${servedId}/status`);
    expect(JSON.parse(served.contents[0].text)).toMatchObject({ agent_id: servedId, name: "served" });

    // narrow may not call served: it neither lists nor reads its status, and its own audit has no desk record
    const nuris = (await narrow.listResources()).map((r) => r.uri);
    expect(nuris).toEqual(expect.arrayContaining(["aaos://self/status", "aaos://self/audit"]));
    expect(nuris).not.toContain(`aaos://agents/${servedId}/status`);
    let refused: any = null;
    await narrow.read(`aaos://agents/${servedId}/status`).catch((e: any) => (refused = e));
    expect(refused).not.toBeNull();
    expect(refused.code).toBe(-32602);
    const nst = JSON.parse((await narrow.read("aaos://self/status")).contents[0].text);
    expect(nst.agent_id).toBe(principal.narrow);
    const nbody = JSON.parse((await narrow.read("aaos://self/audit")).contents[0].text);
    const nrecords: any[] = Array.isArray(nbody) ? nbody : (nbody.events ?? nbody.records);
    expect(nrecords.every((e) => e.agent_id === principal.narrow)).toBe(true);
  });
});

// ---- HTTP: who may knock -------------------------------------------------

describe("/mcp over HTTP", () => {
  const initialize = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
  });
  const post = (headers: Record<string, string>, body = initialize) =>
    fetch(mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body,
    });

  test("the right bearer token is answered (the control for what follows)", async () => {
    const r = await post({ authorization: `Bearer ${DESK_TOKEN}`, origin: new URL(mcpUrl).origin });
    const text = await r.text();
    expect(r.status).toBe(200);
    expect(text).toContain('"protocolVersion"');
  });

  test("no token, a wrong one, or another scheme: 401 with WWW-Authenticate", async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer wrong-token-0000" },
      { authorization: `Bearer ${DESK_TOKEN}x` },
      { authorization: `Basic ${btoa(`desk:${DESK_TOKEN}`)}` },
    ]) {
      const r = await post(headers);
      await r.arrayBuffer();
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate") ?? "").toMatch(/^Bearer/i);
    }
    // a real client with a wrong token does not get in either
    for (const sdk of ["v2", "v1"] as const) {
      const headers = { authorization: "Bearer wrong-token-0000" };
      const client =
        sdk === "v2"
          ? new ClientV2({ name: "bad", version: "1" }, { versionNegotiation: { mode: "auto" } })
          : new ClientV1({ name: "bad", version: "1" });
      const transport =
        sdk === "v2"
          ? new HttpV2(new URL(mcpUrl), { requestInit: { headers } })
          : new HttpV1(new URL(mcpUrl), { requestInit: { headers } });
      let failed: unknown = null;
      await (client as any).connect(transport).catch((e: unknown) => (failed = e));
      expect(failed).not.toBeNull();
      await (client as any).close().catch(() => {});
    }
  });

  test("a foreign Origin is 403 even with the right token (DNS rebinding)", async () => {
    for (const origin of [FOREIGN, "http://localhost.evil.example:80", "null"]) {
      const r = await post({ authorization: `Bearer ${DESK_TOKEN}`, origin });
      await r.arrayBuffer();
      expect(r.status).toBe(403);
    }
  });

  test("a Host header naming another server is 403 even with the right token (DNS rebinding)", async () => {
    const { hostname, port } = new URL(mcpUrl);
    // fetch sets Host itself: a raw request says what a rebound browser would send
    const raw = (host: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = connectTcp({ host: hostname, port: Number(port) }, () => {
          sock.write(
            `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${DESK_TOKEN}\r\n` +
              `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
              `Content-Length: ${Buffer.byteLength(initialize)}\r\nConnection: close\r\n\r\n${initialize}`,
          );
        });
        let data = "";
        sock.on("data", (d) => (data += d.toString()));
        sock.on("end", () => resolve(data));
        sock.on("error", reject);
      });
    expect(await raw(`evil.example:${port}`)).toStartWith("HTTP/1.1 403");
    expect(await raw(`${hostname}:${port}`)).toStartWith("HTTP/1.1 200");
  });

  test("refusals are audited as mcp.refused, and no bearer token is written to the audit log", async () => {
    // the refusal's record is written beside the answer, not before it: wait for it
    const refused = await until("the mcp.refused records", async () => {
      const r = await auditAll({ kind: "mcp.refused" });
      return r.filter((e) => e.status === 401).length >= 4 && r.filter((e) => e.status === 403).length >= 4 && r;
    });
    expect(refused.every((e) => e.agent_id === null && e.client_address === "127.0.0.1")).toBe(true);
    expect(refused.find((e) => e.status === 401 && /wrong bearer token/.test(e.reason))).toBeTruthy();
    expect(refused.find((e) => e.status === 403 && /Origin/.test(e.reason))).toBeTruthy();
    expect(refused.find((e) => e.status === 403 && /Host/.test(e.reason))).toBeTruthy();
    const all = JSON.stringify(await auditAll());
    expect(all).not.toContain(DESK_TOKEN);
    expect(all).not.toContain(NARROW_TOKEN);
  });
});

describe("a stopped principal", () => {
  test("is spawned again at the client's next request, with its manifest's capabilities", async () => {
    const before = principal.narrow;
    await rpc("agent.stop", { agent_id: before });
    expect((await rpc("agent.status", { agent_id: before })).state).toBe("stopped");
    const narrow = await connect("v1", "http", "narrow");
    try {
      const r = await narrow.call("echo", { message: "back again" });
      expect(r.isError).toBeFalsy();
      expect(textOf(r)).toContain("back again");
      const after = (await rpc<{ clients: any[] }>("mcp.clients")).clients.find((c) => c.name === "narrow");
      expect(after.agent_id).toMatch(/^ag-/);
      expect(after.agent_id).not.toBe(before);
      expect((await rpc("agent.status", { agent_id: after.agent_id })).capabilities).toEqual(["tool: echo"]);
      expect((await narrow.listTools()).map((t) => t.name)).toEqual(["echo"]);
    } finally {
      await narrow.close();
    }
  });
});
