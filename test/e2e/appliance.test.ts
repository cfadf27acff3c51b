// End to end on the real image, under QEMU (TCG): boot, system.ready on the
// serial line, an agent from AAOS-CFG runs against the local Messages API
// server (reached only through QEMU's guestfwd), its file_write waits for
// approval given over the serial line, the file lands on AAOS-DATA, the audit
// chain verifies; reboot; everything is still there and the sequence goes
// on; poweroff and QEMU exits by itself. `make test-e2e` builds the image first.
// The same boot serves the dashboard (kernel.yaml web.listen) through QEMU's
// hostfwd on a free host port: the page with its CSP, the tokens over the
// serial line (web.tokens), a login's session cookie, and system.info over
// the WebSocket /rpc naming the boot the serial line announced; after the
// reboot the tokens are the same ones (kept on AAOS-DATA).
// Through the same hostfwd, the official v2 MCP client on the host speaks
// Streamable HTTP to /mcp as the principal "ide" (kernel.yaml mcp.clients,
// a manifest and a bearer token on this run's config partition only): it
// negotiates 2026-07-28, lists exactly that manifest's tools, calls echo and
// a file_write that lands on AAOS-DATA, and a tool and a path it was not
// granted come back isError; the serial line's audit log names the client,
// and after the poweroff the file is on AAOS-DATA.
// The disk is enlarged by 512 MiB before the first boot, as a VM's disk is:
// that boot grows AAOS-DATA to the disk's end (GPT, BLKPG, online ext4
// resize) and says so in its boot report, the reboot finds it full, and the
// host checks the table with sfdisk and the file system with e2fsck.
import { randomBytes } from "node:crypto";
import { statSync, truncateSync } from "node:fs";
import { createServer } from "node:net";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { checkDataFs, cleanupDisks, gptPartitions, imageArtifacts, makeDisk, readDataFile } from "../../qemu/disk.ts";

const API_KEY = "sk-ant-e2e-not-a-real-key";
const MODEL = "claude-haiku-4-5-20251001";
// this run's bearer token for the MCP client "ide": a fresh one each run, never in the shipped image
const MCP_TOKEN = randomBytes(32).toString("base64url");

const config = {
  "kernel.yaml": `network:
  mode: dhcp
inference:
  providers:
    anthropic:
      base_url: http://10.0.2.100:8080
      api_key_file: secrets/anthropic_api_key
web:
  listen: "0.0.0.0:8080"
mcp:
  clients:
    ide:
      manifest: ide
      token_file: secrets/mcp_ide_token
`,
  "secrets/anthropic_api_key": API_KEY + "\n",
  "secrets/mcp_ide_token": MCP_TOKEN + "\n",
  // the MCP client's principal: echo, and writes beneath /data/files/mcp only (no file_read at all)
  "manifests/ide.yaml": `name: ide
model: ${MODEL}
system_prompt: "The principal of the MCP client ide; it never runs a model."
capabilities:
  - "tool: echo"
  - "file_write: /data/files/mcp/*"
`,
  "manifests/writer.yaml": `name: writer
model: ${MODEL}
system_prompt: "You write files for the operator."
capabilities:
  - "file_write: /data/files/*"
  - "file_read: /data/files/*"
approval_required:
  - file_write
`,
};

let server: MessagesServer;
let vm: VM | null = null;
let disk: string;
/** the disk as mkdisk made it, and after the 512 MiB a VM's disk gets */
let builtBytes: number;
let diskBytes: number;
const GROW_BYTES = 512 << 20;
let webPort: number;

/** a TCP port nobody on the host's loopback listens on now (not 8080: make run's) */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET through the hostfwd; QEMU accepts before the guest listens, so retry a few seconds */
async function getPage(url: string): Promise<Response> {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    try {
      return await fetch(url, { signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      last = err;
      await Bun.sleep(250);
    }
  }
  throw new Error(`${url} unreachable: ${last}`);
}

/** one JSON-RPC call over the dashboard's WebSocket; resolves with the system.ready it got and the result */
function wsCall(url: string, headers: Record<string, string>, method: string, params: unknown = {}) {
  return new Promise<{ ready: any; result: any }>((resolve, reject) => {
    const ws = new WebSocket(url, { headers } as any);
    let ready: any = null;
    const timer = setTimeout(() => (ws.close(), reject(new Error(`no answer to ${method} over ${url}`))), 60_000);
    ws.onerror = (e) => (clearTimeout(timer), reject(new Error(`WebSocket ${url}: ${(e as any).message ?? e.type}`)));
    ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }));
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.method === "system.ready") ready = msg.params;
      if (msg.id === 1) {
        clearTimeout(timer);
        ws.close();
        if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
        else resolve({ ready, result: msg.result });
      }
    };
  });
}

beforeAll(async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image (make test-e2e does)`);
  server = await startMessagesServer({ port: 0, hostname: "127.0.0.1", apiKey: API_KEY });
  disk = makeDisk(config);
  builtBytes = statSync(disk).size;
  truncateSync(disk, builtBytes + GROW_BYTES);
  diskBytes = statSync(disk).size;
  webPort = await freePort();
});

afterAll(async () => {
  vm?.kill();
  await server?.stop();
  cleanupDisks();
});

/** a v2 MCP client connected as "ide" over Streamable HTTP through the hostfwd, negotiating the protocol version */
async function mcpConnect(url: URL): Promise<Client> {
  const client = new Client({ name: "aaos-e2e", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { authorization: `Bearer ${MCP_TOKEN}` } },
  });
  await client.connect(transport, { timeout: 60_000 });
  return client;
}

/** the text blocks of a CallToolResult, joined */
function resultText(r: any): string {
  return (r.content ?? [])
    .filter((c: any) => c.type === "text")
    .map((c: any) => c.text)
    .join("\n");
}

/** one raw JSON-RPC POST to /mcp, to see the HTTP status the SDK client would hide */
function mcpPost(url: URL, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    signal: AbortSignal.timeout(30_000),
  });
}

function writeStep(tag: string, path: string, content: string) {
  server.script([
    { match: { contains: tag }, content: [{ type: "tool_use", name: "file_write", input: { path, content } }] },
    { match: { contains: "tool_result" }, text: `Wrote ${path}.` },
  ]);
}

/** run the writer on message, approve its file_write over the serial line, return the run result */
async function runWithApproval(vm: VM, agentId: string, message: string) {
  const run = vm.call("agent.run", { agent_id: agentId, message }, 300_000);
  let approval: any = null;
  for (let i = 0; i < 600 && !approval; i++) {
    const { approvals } = await vm.call("approval.list", {});
    approval = approvals.find((a: any) => a.agent_id === agentId);
    if (!approval) await Bun.sleep(250);
  }
  expect(approval).toBeTruthy();
  expect(approval.tool).toBe("file_write");
  expect(await vm.call("approval.respond", { id: approval.id, decision: "approve" })).toEqual({
    id: approval.id,
    decision: "approve",
  });
  return run;
}

test("boot → agent from AAOS-CFG → approved file_write on /data → reboot → still there → poweroff", async () => {
  vm = await bootVM({
    image: disk,
    kernel: imageArtifacts().bzImage,
    guestfwd: [{ guestAddr: "10.0.2.100", guestPort: 8080, hostPort: server.port }],
    hostfwd: [{ hostPort: webPort, guestPort: 8080 }],
  });
  const ready1 = await vm.waitForReady();
  expect(ready1.params.boot_id).toBeString();
  const info = await vm.call("system.info");
  expect(info.mode).toBe("init");
  // the boot report: both partitions found by label and mounted, /data persistent
  expect(info.boot.config).toMatchObject({ mounted: true });
  expect(info.boot.data).toMatchObject({ mounted: true, persistent: true });
  // the enlarged disk: AAOS-DATA (64 MiB in the test disk) grew by the 512 MiB, the ext4 with it
  const grow1 = info.boot.data.grow;
  expect(grow1).toMatchObject({ status: "grown", done: ["gpt", "blkpg", "ext4"], disk_bytes: diskBytes });
  expect(grow1.partition_bytes_before).toBe(64 << 20);
  expect(grow1.partition_bytes_after - grow1.partition_bytes_before).toBeGreaterThanOrEqual(GROW_BYTES);
  expect(grow1.fs_bytes_after - grow1.fs_bytes_before).toBeGreaterThan(GROW_BYTES - (16 << 20));
  const stats1 = await vm.call("system.stats");
  expect(stats1.disk.total_bytes).toBe(grow1.fs_bytes_after);

  // --- the dashboard, from the host through QEMU's hostfwd
  const origin = `http://127.0.0.1:${webPort}`;
  const page = await getPage(origin + "/");
  expect(page.status).toBe(200);
  expect(page.headers.get("content-type")).toStartWith("text/html");
  expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
  expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  expect(await page.text()).toContain('<script src="/app.js"');
  const tokens = await vm.call("web.tokens");
  expect(tokens.operator).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(tokens.viewer).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(tokens.viewer).not.toBe(tokens.operator);
  // no session yet: the WebSocket is refused
  expect((await fetch(origin + "/rpc", { headers: { origin } })).status).toBe(401);
  const login = await fetch(origin + "/login", {
    method: "POST",
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify({ token: tokens.operator }),
  });
  expect(login.status).toBe(200);
  expect(await login.json()).toEqual({ role: "operator" });
  const setCookie = login.headers.get("set-cookie") ?? "";
  expect(setCookie).toMatch(/^aaos_session=[^;]+;/);
  expect(setCookie).toContain("HttpOnly");
  expect(setCookie).toContain("SameSite=Strict");
  const cookie = setCookie.split(";")[0]!;
  const overWs = await wsCall(`ws://127.0.0.1:${webPort}/rpc`, { cookie, origin }, "system.info");
  expect(overWs.ready?.boot_id).toBe(ready1.params.boot_id);
  expect(overWs.result.boot_id).toBe(ready1.params.boot_id);

  // --- MCP: a client on the host calls the appliance's tools over Streamable HTTP, through the hostfwd
  const mcpUrl = new URL(origin + "/mcp");
  // no token, or a wrong one: 401 with a Bearer challenge; a foreign Origin (DNS rebinding): 403
  const anonymous = await mcpPost(mcpUrl, {});
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get("www-authenticate") ?? "").toStartWith("Bearer");
  expect((await mcpPost(mcpUrl, { authorization: "Bearer not-the-token" })).status).toBe(401);
  expect(
    (await mcpPost(mcpUrl, { authorization: `Bearer ${MCP_TOKEN}`, origin: "http://rebind.example" })).status,
  ).toBe(403);
  const { clients } = await vm.call("mcp.clients");
  expect(clients.map((c: any) => [c.name, c.manifest, c.http])).toEqual([["ide", "ide", true]]);
  const principal: string = clients[0].agent_id;
  expect(principal).toBeString();

  const mcp = await mcpConnect(mcpUrl);
  expect(mcp.getProtocolEra()).toBe("modern");
  expect(mcp.getNegotiatedProtocolVersion()).toBe("2026-07-28");
  // exactly the manifest's tools: echo, and the four that file_write implies; no file_read, no agent_run
  const { tools } = await mcp.listTools();
  expect(tools.map((t) => t.name).sort()).toEqual(["dir_create", "echo", "file_delete", "file_move", "file_write"]);
  expect(tools.find((t) => t.name === "echo")?.annotations?.readOnlyHint).toBe(true);
  expect(tools.find((t) => t.name === "file_write")?.inputSchema.properties).toHaveProperty("path");

  const echoed = await mcp.callTool({ name: "echo", arguments: { message: "hello from the host" } });
  expect(echoed.isError).toBeFalsy();
  expect(resultText(echoed)).toContain("hello from the host");
  const wrote = await mcp.callTool({
    name: "file_write",
    arguments: { path: "/data/files/mcp/from-host.txt", content: "written by an MCP client on the host\n" },
  });
  expect(wrote.isError).toBeFalsy();
  // a tool it does not hold, and a path outside its grant: isError results naming what is missing
  const noRead = await mcp.callTool({ name: "file_read", arguments: { path: "/data/files/mcp/from-host.txt" } });
  expect(noRead.isError).toBe(true);
  expect(resultText(noRead)).toContain("file_read");
  const outside = await mcp.callTool({
    name: "file_write",
    arguments: { path: "/data/files/outside.txt", content: "must not land\n" },
  });
  expect(outside.isError).toBe(true);
  expect(resultText(outside)).toContain("/data/files/outside.txt");
  await mcp.close();

  // over the serial line: the file is there, the denied write left nothing, and the audit log names the client
  const landed = await vm.call("fs.read", { path: "/mcp/from-host.txt" });
  expect(landed.text).toBe("written by an MCP client on the host\n");
  expect((await vm.call("fs.list", { path: "/" })).entries.map((e: any) => e.name)).toEqual(["mcp"]);
  const calls = (await vm.call("audit.query", { agent_id: principal, kind: "tool.call" })).events;
  // the write outside the grant passed the tool check (file_write is held) and was refused at its path
  expect(calls.map((e: any) => [e.tool, e.via, e.client, e.input.path])).toEqual([
    ["echo", "mcp", "ide", undefined],
    ["file_write", "mcp", "ide", "/data/files/mcp/from-host.txt"],
    ["file_write", "mcp", "ide", "/data/files/outside.txt"],
  ]);
  const results = (await vm.call("audit.query", { agent_id: principal, kind: "tool.result" })).events;
  expect(results.map((e: any) => [e.tool, e.ok])).toEqual([
    ["echo", true],
    ["file_write", true],
    ["file_write", false],
  ]);
  const denials = (await vm.call("audit.query", { agent_id: principal, kind: "capability.denied" })).events;
  expect(denials.map((e: any) => [e.tool, e.via, e.client])).toEqual([
    ["file_read", "mcp", "ide"],
    ["file_write", "mcp", "ide"],
  ]);
  expect(denials[0].capability).toBe("tool: file_read");
  expect(denials[1].resource).toContain("/data/files/outside.txt");

  // --- first boot: spawn from the config partition, run, approve, verify
  const spawned = await vm.call("agent.spawn", { name: "writer" });
  expect(spawned.name).toBe("writer");
  writeStep("first-file", "/data/files/first.txt", "written before the reboot\n");
  const r1 = await runWithApproval(vm, spawned.agent_id, "please write the first-file");
  expect(r1.tool_calls.map((c: any) => [c.tool, c.ok])).toEqual([["file_write", true]]);
  expect(r1.response).toContain("Wrote /data/files/first.txt");
  // the model was reached through guestfwd, with the key from AAOS-CFG
  expect(server.requests.length).toBeGreaterThanOrEqual(2);
  // (the server was started with apiKey: a request without this key would have been a 401)
  expect(server.requests.map((r) => r.outcome)).toEqual(server.requests.map(() => "ok"));
  const h = server.requests[0]!.headers;
  expect(h["x-api-key"] ?? h["authorization"]?.replace(/^Bearer\s+/i, "")).toBe(API_KEY);

  const read1 = await vm.call("tool.invoke", {
    agent_id: spawned.agent_id,
    tool: "file_read",
    input: { path: "/data/files/first.txt" },
  });
  expect(JSON.stringify(read1)).toContain("written before the reboot");
  const v1 = await vm.call("audit.verify");
  expect(v1.ok).toBe(true);

  // --- reboot: same QEMU, the serial socket stays connected
  expect(await vm.call("system.shutdown", { action: "reboot" })).toEqual({ ok: true });
  const ready2 = await vm.waitForReady();
  expect(ready2.params.boot_id).not.toBe(ready1.params.boot_id);
  // the second boot finds AAOS-DATA filling its disk: nothing to do, the same size
  const grow2 = (await vm.call("system.info")).boot.data.grow;
  expect(grow2).toMatchObject({ status: "full", done: [] });
  expect(grow2.partition_bytes_before).toBe(grow1.partition_bytes_after);
  expect(grow2.fs_bytes_after).toBe(grow1.fs_bytes_after);
  expect((await vm.call("system.stats")).disk.total_bytes).toBe(grow1.fs_bytes_after);

  const v2 = await vm.call("audit.verify");
  expect(v2.ok).toBe(true);
  expect(v2.events).toBeGreaterThan(v1.events);
  const boots = await vm.call("audit.query", { kind: "system.boot", limit: 100 });
  expect(boots.events.length).toBe(2);
  // …and so do the boots' audit records
  expect(boots.events.map((e: any) => e.boot.data.grow.status).sort()).toEqual(["full", "grown"]);
  // the dashboard's tokens were kept on AAOS-DATA, not made again
  const tokens2 = await vm.call("web.tokens");
  expect([tokens2.operator, tokens2.viewer]).toEqual([tokens.operator, tokens.viewer]);
  // the login was audited
  const logins = await vm.call("audit.query", { kind: "web.login", limit: 10 });
  expect(logins.events.map((e: any) => [e.ok, e.role])).toEqual([[true, "operator"]]);

  const again = await vm.call("agent.spawn", { name: "writer" });
  const read2 = await vm.call("tool.invoke", {
    agent_id: again.agent_id,
    tool: "file_read",
    input: { path: "/data/files/first.txt" },
  });
  expect(JSON.stringify(read2)).toContain("written before the reboot");

  // the sequence goes on after the reboot
  writeStep("second-file", "/data/files/second.txt", "written after the reboot\n");
  const r2 = await runWithApproval(vm, again.agent_id, "please write the second-file");
  expect(r2.tool_calls.map((c: any) => [c.tool, c.ok])).toEqual([["file_write", true]]);
  expect((await vm.call("audit.verify")).ok).toBe(true);

  // --- poweroff: QEMU exits on its own
  expect(await vm.call("system.shutdown", { action: "poweroff" })).toEqual({ ok: true });
  expect(await vm.waitExit(120_000)).toBe(0);
  vm = null;

  // the host reads the data partition: both files, the audit log, a clean file system
  expect(readDataFile(disk, "files/first.txt")).toBe("written before the reboot\n");
  expect(readDataFile(disk, "files/second.txt")).toBe("written after the reboot\n");
  expect(readDataFile(disk, "files/mcp/from-host.txt")).toBe("written by an MCP client on the host\n");
  // the table as util-linux reads it: no error, AAOS-DATA to the last usable LBA (128 entries + header before the end)
  const verify = Bun.spawnSync(["sfdisk", "--verify", disk], { stderr: "pipe" });
  const said = verify.stdout.toString() + verify.stderr.toString();
  expect(said).toContain("No errors detected");
  expect(said).not.toMatch(/mismatch|not on the end|corrupt/i);
  const data = gptPartitions(disk).find((p) => p.name === "AAOS-DATA")!;
  expect(data.lastLba).toBe(diskBytes / 512 - 34);
  expect((data.lastLba - data.firstLba + 1) * 512).toBe(grow1.partition_bytes_after);
  const fs = checkDataFs(disk);
  expect({ clean: fs.clean, needsRecovery: fs.needsRecovery, fsckOk: fs.fsckOk }).toEqual({
    clean: true,
    needsRecovery: false,
    fsckOk: true,
  });
}, 900_000);
