// kernel/kernel.ts through the AgentServices it implements: a real Kernel
// over a real AuditLog (durability "none") in a temp dir, no inference.
// What is asserted is what a caller of the one door sees: results, error
// codes, and the audit records each action leaves.
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { AuditLog } from "../../../kernel/audit/index.ts";
import { KernelConfigSchema } from "../../../kernel/config.ts";
import { ErrorCode } from "../../../kernel/errors.ts";
import { Kernel } from "../../../kernel/kernel.ts";

const MODEL = "claude-haiku-4-5-20251001";

let opened: { audit: AuditLog; root: string }[] = [];
afterEach(async () => {
  for (const o of opened) {
    await o.audit.close();
    rmSync(o.root, { recursive: true, force: true });
  }
  opened = [];
});

async function kernelWith(opts: { manifests?: Record<string, string>; config?: unknown } = {}) {
  const root = mkdtempSync(join(tmpdir(), "aaos-kernel-"));
  const configDir = join(root, "config");
  const dataDir = join(root, "data");
  mkdirSync(join(configDir, "manifests"), { recursive: true });
  for (const [name, text] of Object.entries(opts.manifests ?? {}))
    writeFileSync(join(configDir, "manifests", `${name}.yaml`), text);
  const audit = await AuditLog.open(join(dataDir, "audit"), { durability: "none", registerEnvSecrets: false });
  opened.push({ audit, root });
  const kernel = new Kernel({
    config: KernelConfigSchema.parse(opts.config ?? {}),
    configDir,
    dataDir,
    audit,
    log: pino({ level: "silent" }),
  });
  /** the audit records of these kinds, oldest first */
  const records = async (...kinds: string[]) =>
    (await kernel.queryAudit({ limit: 1000 })).events.filter((e) => kinds.includes(e.kind));
  return { kernel, records };
}

function manifest(name: string, extra = ""): string {
  return `name: ${name}\nmodel: ${MODEL}\n${extra}`;
}

/** the code of the KernelError a call throws or rejects with */
async function code(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
  } catch (e: any) {
    return e.code;
  }
  throw new Error("expected a rejection");
}

// ---- spawn -----------------------------------------------------------------

test("spawn by name reads <config>/manifests/<name>.yaml; spawn by text takes the manifest itself", async () => {
  const { kernel, records } = await kernelWith({ manifests: { worker: manifest("worker", "capabilities: [echo]\n") } });
  const byName = await kernel.spawn({ name: "worker" });
  expect(byName).toMatchObject({ name: "worker" });
  expect(byName.agent_id).toMatch(/^ag-/);
  expect(byName.capabilities).toHaveLength(1);
  const byText = await kernel.spawn({ manifest: manifest("inline", "capabilities: [echo]\n") });
  expect(byText.name).toBe("inline");

  expect(kernel.status(byName.agent_id)).toMatchObject({
    agent_id: byName.agent_id,
    name: "worker",
    state: "ready",
    parent_id: null,
    model: MODEL,
    children: [],
  });
  expect(kernel.list().map((a) => a.name)).toEqual(["worker", "inline"]);
  const spawns = await records("agent.spawn");
  expect(spawns.map((r) => [r.agent_id, r.source])).toEqual([
    [byName.agent_id, "manifests/worker.yaml"],
    [byText.agent_id, "manifest"],
  ]);
  expect((await records("capability.grant")).map((r) => r.agent_id)).toEqual([byName.agent_id, byText.agent_id]);
});

test("spawn needs exactly one source (-32602) and a manifest that exists and is valid (-32005)", async () => {
  const { kernel } = await kernelWith({ manifests: { worker: manifest("worker") } });
  expect(await code(() => kernel.spawn({}))).toBe(ErrorCode.InvalidParams);
  expect(await code(() => kernel.spawn({ name: "worker", manifest: manifest("worker") }))).toBe(
    ErrorCode.InvalidParams,
  );
  expect(await code(() => kernel.spawn({ name: "Not A Name" }))).toBe(ErrorCode.InvalidParams);
  expect(await code(() => kernel.spawn({ name: "missing" }))).toBe(ErrorCode.InvalidManifest);
  expect(await code(() => kernel.spawn({ manifest: "name: x\n" }))).toBe(ErrorCode.InvalidManifest);
  expect(kernel.list()).toEqual([]);
});

test("a spawn refused by limits.max_agents is -32008 and audited as spawn.denied; a stop frees the slot", async () => {
  const { kernel, records } = await kernelWith({ config: { limits: { max_agents: 1 } } });
  const first = await kernel.spawn({ manifest: manifest("one") });
  expect(await code(() => kernel.spawn({ manifest: manifest("two") }))).toBe(ErrorCode.AgentNotRunnable);
  expect(await records("spawn.denied")).toEqual([
    expect.objectContaining({ kind: "spawn.denied", name: "two", reason: "max_agents reached" }),
  ]);
  expect(kernel.systemCounts().agents).toBe(1);
  await kernel.stop(first.agent_id);
  expect((await kernel.spawn({ manifest: manifest("two") })).name).toBe("two");
});

// ---- stop ------------------------------------------------------------------

test("stop is idempotent: a stopped agent answers its state again, with one agent.stop record", async () => {
  const { kernel, records } = await kernelWith();
  const a = await kernel.spawn({ manifest: manifest("worker", "capabilities: [echo]\n") });
  const [s1, s2] = await Promise.all([kernel.stop(a.agent_id), kernel.stop(a.agent_id)]);
  expect(s1).toEqual({ agent_id: a.agent_id, state: "stopped" });
  expect(s2).toEqual(s1);
  expect(await kernel.stop(a.agent_id)).toEqual(s1);
  expect((await records("agent.stop")).map((r) => r.agent_id)).toEqual([a.agent_id]);
  // its tokens are gone with it
  expect(kernel.status(a.agent_id)).toMatchObject({ state: "stopped", capabilities: [] });
  expect(kernel.systemCounts().agents).toBe(0);
});

test("stop of an unknown agent is -32002", async () => {
  const { kernel } = await kernelWith();
  await expect(kernel.stop("ag-0000000000000000")).rejects.toMatchObject({ code: ErrorCode.NoSuchAgent }); // a rejection, never a synchronous throw
});

test("stopping a parent stops its children first, each with its own agent.stop", async () => {
  const { kernel, records } = await kernelWith({
    manifests: { child: manifest("child", "capabilities: [echo]\n") },
  });
  const parent = await kernel.spawn({ manifest: manifest("parent", "capabilities: [echo]\nspawn_child: [child]\n") });
  const child = await kernel.spawn({ name: "child" }, parent.agent_id);
  expect(kernel.status(parent.agent_id).children).toEqual([child.agent_id]);
  expect(kernel.status(child.agent_id).parent_id).toBe(parent.agent_id);

  await kernel.stop(parent.agent_id);
  expect(kernel.status(child.agent_id).state).toBe("stopped");
  expect((await records("agent.stop")).map((r) => r.agent_id)).toEqual([child.agent_id, parent.agent_id]);
});

test("a child may not hold more than its parent: -32001, audited as spawn.denied", async () => {
  const { kernel, records } = await kernelWith({ manifests: { child: manifest("child", "capabilities: [echo]\n") } });
  const parent = await kernel.spawn({ manifest: manifest("parent", "spawn_child: [child]\n") });
  expect(await code(() => kernel.spawn({ name: "child" }, parent.agent_id))).toBe(ErrorCode.CapabilityDenied);
  expect(await records("spawn.denied")).toEqual([
    expect.objectContaining({ agent_id: parent.agent_id, name: "child" }),
  ]);
  expect(kernel.status(parent.agent_id).children).toEqual([]);
});

// ---- tools -----------------------------------------------------------------

test("listTools: every tool without an agent; with one, only what it may call, and nothing once stopped", async () => {
  const { kernel } = await kernelWith({ manifests: { echoer: manifest("echoer") } });
  const all = kernel.listTools().map((t) => t.name);
  expect(all).toContain("echo");
  expect(all).toContain("file_read");
  expect(all).toEqual(kernel.systemCounts().tools);

  const echoer = await kernel.spawn({ manifest: manifest("echoer", "capabilities: [echo]\n") });
  expect(kernel.listTools(echoer.agent_id).map((t) => t.name)).toEqual(["echo"]);
  const sender = await kernel.spawn({ manifest: manifest("sender", "message_send: [echoer]\n") });
  expect(
    kernel
      .listTools(sender.agent_id)
      .map((t) => t.name)
      .sort(),
  ).toEqual(["message_read", "message_send"]);
  expect(kernel.listTools(echoer.agent_id)[0]).toMatchObject({ name: "echo", input_schema: expect.any(Object) });

  await kernel.stop(echoer.agent_id);
  expect(kernel.listTools(echoer.agent_id)).toEqual([]);
  expect(() => kernel.listTools("ag-0000000000000000")).toThrow(
    expect.objectContaining({ code: ErrorCode.NoSuchAgent }),
  );
});

test("invokeTool runs the tool with tool.call recorded before and tool.result after", async () => {
  const { kernel, records } = await kernelWith();
  const a = await kernel.spawn({ manifest: manifest("echoer", "capabilities: [echo]\n") });
  expect(await kernel.invokeTool(a.agent_id, "echo", { message: "hi" }, { via: "rpc" })).toEqual({ message: "hi" });
  const [call, result] = await records("tool.call", "tool.result");
  expect(call).toMatchObject({
    kind: "tool.call",
    agent_id: a.agent_id,
    tool: "echo",
    input: { message: "hi" },
    via: "rpc",
  });
  expect(result).toMatchObject({ kind: "tool.result", call_seq: call!.seq, ok: true, output: { message: "hi" } });
});

test("invokeTool checks the token before the input: no token and a bad input is -32001, audited", async () => {
  const { kernel, records } = await kernelWith();
  const a = await kernel.spawn({ manifest: manifest("nothing") });
  expect(await code(() => kernel.invokeTool(a.agent_id, "echo", { not: "an echo input" }, { via: "rpc" }))).toBe(
    ErrorCode.CapabilityDenied,
  );
  expect(await code(() => kernel.invokeTool(a.agent_id, "no_such_tool", {}, { via: "model" }))).toBe(
    ErrorCode.CapabilityDenied,
  );
  expect((await records("capability.denied")).map((r) => [r.tool, r.via])).toEqual([
    ["echo", "rpc"],
    ["no_such_tool", "model"],
  ]);
  expect(await records("tool.call")).toEqual([]);
});

test("a bad input with a token is -32602 and spends nothing of a counted token", async () => {
  const { kernel, records } = await kernelWith();
  const a = await kernel.spawn({
    manifest: manifest("once", "capabilities:\n  - capability: echo\n    max_invocations: 1\n"),
  });
  expect(await code(() => kernel.invokeTool(a.agent_id, "echo", { not: "an echo input" }, { via: "rpc" }))).toBe(
    ErrorCode.InvalidParams,
  );
  expect(await code(() => kernel.invokeTool(a.agent_id, "echo", { message: 42 }, { via: "rpc" }))).toBe(
    ErrorCode.InvalidParams,
  );
  expect(await records("tool.call", "capability.denied")).toEqual([]);
  // the one invocation is still there
  expect(await kernel.invokeTool(a.agent_id, "echo", { message: "once" }, { via: "rpc" })).toEqual({ message: "once" });
  expect(await code(() => kernel.invokeTool(a.agent_id, "echo", { message: "twice" }, { via: "rpc" }))).toBe(
    ErrorCode.CapabilityDenied,
  );
});

test("invokeTool on a stopped agent is -32008, on an unknown one -32002", async () => {
  const { kernel } = await kernelWith();
  const a = await kernel.spawn({ manifest: manifest("echoer", "capabilities: [echo]\n") });
  await kernel.stop(a.agent_id);
  expect(await code(() => kernel.invokeTool(a.agent_id, "echo", { message: "hi" }, { via: "rpc" }))).toBe(
    ErrorCode.AgentNotRunnable,
  );
  expect(await code(() => kernel.invokeTool("ag-0000000000000000", "echo", { message: "hi" }, { via: "rpc" }))).toBe(
    ErrorCode.NoSuchAgent,
  );
});

// ---- messages --------------------------------------------------------------

test("sendMessage delivers to a name in message_send, recorded first; readMessages drains oldest first", async () => {
  const { kernel, records } = await kernelWith({ manifests: { inbox: manifest("inbox") } });
  const sender = await kernel.spawn({ manifest: manifest("sender", "message_send: [inbox]\n") });
  const inbox = await kernel.spawn({ manifest: manifest("inbox") });
  expect(await kernel.sendMessage(sender.agent_id, "inbox", "one")).toEqual({ delivered: true, to: inbox.agent_id });
  expect(await kernel.sendMessage(sender.agent_id, inbox.agent_id, "two")).toEqual({
    delivered: true,
    to: inbox.agent_id,
  });
  expect(await records("message.send")).toEqual([
    expect.objectContaining({ agent_id: sender.agent_id, to: inbox.agent_id, bytes: 3 }),
    expect.objectContaining({ agent_id: sender.agent_id, to: inbox.agent_id, bytes: 3 }),
  ]);
  const first = kernel.readMessages(inbox.agent_id, 1);
  expect(first).toEqual([{ from: sender.agent_id, from_name: "sender", message: "one", sent_at: expect.any(String) }]);
  expect(kernel.readMessages(inbox.agent_id, 10).map((m) => m.message)).toEqual(["two"]);
  expect(kernel.readMessages(inbox.agent_id, 10)).toEqual([]);
});

test("sendMessage to a name not in message_send is -32001, to no running agent -32002; both audited as message.denied", async () => {
  const { kernel, records } = await kernelWith({ manifests: { inbox: manifest("inbox") } });
  const sender = await kernel.spawn({ manifest: manifest("sender", "message_send: [inbox]\n") });
  const other = await kernel.spawn({ manifest: manifest("other") });
  expect(await code(() => kernel.sendMessage(sender.agent_id, "other", "no"))).toBe(ErrorCode.CapabilityDenied);
  expect(await code(() => kernel.sendMessage(sender.agent_id, "inbox", "nobody"))).toBe(ErrorCode.NoSuchAgent);
  expect((await records("message.denied")).map((r) => r.to)).toEqual(["other", "inbox"]);
  expect(await records("message.send")).toEqual([]);
  expect(kernel.readMessages(other.agent_id, 10)).toEqual([]);
  expect(() => kernel.readMessages("ag-0000000000000000", 10)).toThrow(
    expect.objectContaining({ code: ErrorCode.NoSuchAgent }),
  );
});

// ---- run -------------------------------------------------------------------

test("run without an inference provider is -32006, audited as inference.error", async () => {
  const { kernel, records } = await kernelWith();
  const a = await kernel.spawn({ manifest: manifest("worker") });
  expect(await code(() => kernel.run(a.agent_id, "hello"))).toBe(ErrorCode.InferenceFailed);
  expect((await records("inference.error")).map((r) => r.agent_id)).toEqual([a.agent_id]);
  expect(kernel.status(a.agent_id).state).toBe("ready");
});
