// Agents, manifests, capabilities, approvals and audit through the real
// JSON-RPC socket of a host-mode kernel.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

let k: RunningKernel;
const MODEL = "claude-haiku-4-5-20251001";

beforeAll(async () => {
  k = await startKernel({
    kernelYaml: "approval:\n  timeout: 2s\nlimits:\n  max_spawn_depth: 2\n",
    manifests: {
      echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities:\n  - echo\n`,
      "limited-echo": `name: limited-echo\nmodel: ${MODEL}\ncapabilities:\n  - capability: "tool: echo"\n    max_invocations: 2\n`,
      "short-lived": `name: short-lived\nmodel: ${MODEL}\ncapabilities:\n  - capability: echo\n    expires_in: 1s\n`,
      careful: `name: careful\nmodel: ${MODEL}\ncapabilities:\n  - echo\napproval_required:\n  - echo\n`,
      // the names the spawn_child and message_send lists below refer to must be agents the kernel knows
      ...Object.fromEntries(
        ["child", "grandchild", "d1", "d2", "d3", "bob"].map((n) => [n, `name: ${n}\nmodel: ${MODEL}\n`]),
      ),
    },
  });
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
});

const call = (m: string, p: object = {}) => k.client.call(m, p);
const spawn = (name: string) => call("agent.spawn", { name });
const echo = (agent_id: string, message = "hi") => call("tool.invoke", { agent_id, tool: "echo", input: { message } });

async function auditKinds(agent_id: string): Promise<string[]> {
  const r = await call("audit.query", { agent_id, limit: 1000 });
  return r.events.map((e: any) => e.kind);
}

describe("spawn", () => {
  test("by name from the config directory", async () => {
    const s = await spawn("echoer");
    expect(s).toEqual({
      agent_id: expect.stringMatching(/^ag-[0-9a-f]{16}$/),
      name: "echoer",
      capabilities: ["tool: echo"],
    });
    const st = await call("agent.status", { agent_id: s.agent_id });
    expect(st).toMatchObject({
      agent_id: s.agent_id,
      name: "echoer",
      state: "ready",
      parent_id: null,
      model: MODEL,
      capabilities: ["tool: echo"],
      usage: { input_tokens: 0, output_tokens: 0 },
      children: [],
    });
    const list = await call("agent.list");
    expect(list.agents).toContainEqual({
      agent_id: s.agent_id,
      name: "echoer",
      state: "ready",
      parent_id: null,
      model: MODEL,
    });
    expect(await auditKinds(s.agent_id)).toEqual(["agent.spawn", "capability.grant"]);
  });

  test("from YAML text", async () => {
    const s = await call("agent.spawn", {
      manifest: `name: inline\nmodel: ${MODEL}\ncapabilities: ["file_read: /srv/x/*"]\n`,
    });
    expect(s.capabilities).toEqual(["file_read: /srv/x/*"]);
  });

  test("one YAML text spawned again is checked against the agent names as they are then", async () => {
    // a spawn takes a text it loaded before from memory only when it names no agent (kernel.ts loadForSpawn)
    const text = `name: later\nmodel: ${MODEL}\ncapabilities: [echo]\nspawn_child: [late]\n`;
    const refused = await rpcError(call("agent.spawn", { manifest: text }), -32005);
    expect(refused.message).toContain('unknown agent "late"');
    const file = join(k.configDir, "manifests", "late.yaml");
    writeFileSync(file, `name: late\nmodel: ${MODEL}\n`);
    const a = await call("agent.spawn", { manifest: text });
    const b = await call("agent.spawn", { manifest: text });
    expect(b.capabilities).toEqual(a.capabilities);
    rmSync(file);
    await rpcError(call("agent.spawn", { manifest: text }), -32005);
    // a text that names no agent, spawned many times: one manifest, one hash
    const plain = `name: plain\nmodel: ${MODEL}\ncapabilities: [echo]\napproval_required: [echo, irreversible]\n`;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await call("agent.spawn", { manifest: plain })).agent_id);
    const hashes = new Set<string>();
    for (const id of ids) {
      const r = await call("audit.query", { agent_id: id, kind: "agent.spawn" });
      hashes.add(r.events[0].manifest_sha256);
      await call("agent.stop", { agent_id: id });
    }
    expect(hashes.size).toBe(1);
  });

  test("unknown key → -32005 with path, line and column", async () => {
    const e = await rpcError(
      call("agent.spawn", { manifest: `name: a\nmodel: ${MODEL}\naproval_required: [echo]\n` }),
      -32005,
    );
    expect(e.data).toMatchObject({ path: "aproval_required", line: 3, column: 1 });
  });

  test("wrong type → -32005 pointing at the value", async () => {
    const e = await rpcError(
      call("agent.spawn", { manifest: `name: a\nmodel: ${MODEL}\nmax_turns: "many"\n` }),
      -32005,
    );
    expect(e.data).toMatchObject({ path: "max_turns", line: 3, column: 12 });
  });

  test("malformed capability string → -32005 at its list item", async () => {
    const e = await rpcError(
      call("agent.spawn", { manifest: `name: a\nmodel: ${MODEL}\ncapabilities:\n  - echo\n  - "fs_read: /x"\n` }),
      -32005,
    );
    expect(e.data).toMatchObject({ path: "capabilities[1]", line: 5, column: 5 });
    expect(e.message).toContain("fs_read");
  });

  test("YAML syntax error → -32005 with its position", async () => {
    const e = await rpcError(call("agent.spawn", { manifest: `name: a\nmodel: [unclosed\n` }), -32005);
    expect(e.data.line).toBeGreaterThanOrEqual(2);
  });

  test("missing required field names it", async () => {
    const e = await rpcError(call("agent.spawn", { manifest: `name: a\n` }), -32005);
    expect(e.data.path).toBe("model");
  });

  test("approval_required naming an unknown tool is refused", async () => {
    const e = await rpcError(
      call("agent.spawn", { manifest: `name: a\nmodel: m\napproval_required: [file_wrte]\n` }),
      -32005,
    );
    expect(e.data.path).toBe("approval_required[0]");
  });

  test("unknown manifest name, and a name that tries to leave the directory", async () => {
    await rpcError(spawn("nobody"), -32005);
    await rpcError(spawn("../../etc/passwd"), -32602);
  });

  test("both or neither of manifest and name → -32602", async () => {
    await rpcError(call("agent.spawn", {}), -32602);
    await rpcError(call("agent.spawn", { name: "echoer", manifest: "name: x" }), -32602);
  });
});

describe("manifest.list", () => {
  test("lists the config directory's manifests, flagging a broken one with its position", async () => {
    writeFileSync(join(k.configDir, "manifests", "broken.yaml"), `name: broken\nmodel: ${MODEL}\nlifecycle: forever\n`);
    const { manifests } = await call("manifest.list");
    expect(manifests.map((m: any) => m.name)).toEqual([
      "bob",
      "broken",
      "careful",
      "child",
      "d1",
      "d2",
      "d3",
      "echoer",
      "grandchild",
      "limited-echo",
      "short-lived",
    ]);
    const broken = manifests[1];
    expect(broken.valid).toBe(false);
    expect(broken.error).toContain("lifecycle");
    expect(broken.error).toContain("line 3, column 12");
    expect(manifests[7]).toEqual({ name: "echoer", file: "echoer.yaml", source: "config", valid: true });
  });
});

describe("capabilities through tool.invoke", () => {
  test("granted tool runs and is audited as call and result", async () => {
    const { agent_id } = await spawn("echoer");
    expect((await echo(agent_id, "hello")).output).toEqual({ message: "hello" });
    const kinds = await auditKinds(agent_id);
    expect(kinds.slice(-2)).toEqual(["tool.call", "tool.result"]);
  });

  test("a tool not granted → -32001 with data, audited", async () => {
    const { agent_id } = await spawn("echoer");
    const e = await rpcError(
      call("tool.invoke", { agent_id, tool: "file_read", input: { path: "/etc/passwd" } }),
      -32001,
    );
    expect(e.data).toMatchObject({ tool: "file_read", capability: expect.any(String), reason: expect.any(String) });
    expect(await auditKinds(agent_id)).toContain("capability.denied");
  });

  test("tool.list with agent_id shows only what it may call", async () => {
    const { agent_id } = await spawn("echoer");
    const all = await call("tool.list");
    expect(all.tools.map((t: any) => t.name)).toEqual(
      expect.arrayContaining(["echo", "file_read", "file_write", "file_list", "web_fetch", "spawn_agent"]),
    );
    const mine = await call("tool.list", { agent_id });
    expect(mine.tools.map((t: any) => t.name)).toEqual(["echo"]);
    expect(mine.tools[0].input_schema).toMatchObject({ type: "object", properties: { message: { type: "string" } } });
  });

  test("bad tool input names the field", async () => {
    const { agent_id } = await spawn("echoer");
    const e = await rpcError(call("tool.invoke", { agent_id, tool: "echo", input: { message: 5 } }), -32602);
    expect(e.message).toContain("input.message");
  });

  test("tool.invoke params outside the plain shape get the schema's errors (the quick path steps aside)", async () => {
    const { agent_id } = await spawn("echoer");
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ agent_id, tool: "echo", input: { message: "x" }, extra: 1 }, /extra/],
      [{ agent_id, tool: "echo", input: ["x"] }, /input/],
      [{ agent_id, tool: "echo", input: null }, /input/],
      [{ agent_id, tool: "" }, /tool/],
      [{ agent_id: "a".repeat(129), tool: "echo" }, /agent_id/],
      [{ agent_id: 7, tool: "echo" }, /agent_id/],
      [{ tool: "echo" }, /agent_id/],
    ];
    for (const [params, field] of bad) {
      const e = await rpcError(call("tool.invoke", params), -32602);
      expect(e.message).toMatch(/^Invalid params/);
      expect(e.message).toMatch(field);
    }
    // no input is an empty one: echo's schema then names the missing field
    expect((await rpcError(call("tool.invoke", { agent_id, tool: "echo" }), -32602)).message).toContain(
      "input.message",
    );
    expect(await call("tool.invoke", { agent_id, tool: "echo", input: { message: "ok" } })).toEqual({
      output: { message: "ok" },
    });
  });

  test("max_invocations is enforced and counted before the tool runs", async () => {
    const { agent_id } = await spawn("limited-echo");
    await echo(agent_id);
    await echo(agent_id);
    const e = await rpcError(echo(agent_id), -32001);
    expect(e.data.reason).toMatch(/exhaust|invocation/i);
  });

  test("an expired token no longer authorises", async () => {
    const { agent_id } = await spawn("short-lived");
    await echo(agent_id);
    await Bun.sleep(1100);
    const e = await rpcError(echo(agent_id), -32001);
    expect(e.data.reason).toMatch(/expire/i);
  });

  test("stopping an agent revokes its tokens; a stopped agent is not runnable", async () => {
    const { agent_id } = await spawn("echoer");
    expect(await call("agent.stop", { agent_id })).toEqual({ agent_id, state: "stopped" });
    const st = await call("agent.status", { agent_id });
    expect(st.state).toBe("stopped");
    expect(st.capabilities).toEqual([]);
    await rpcError(echo(agent_id), -32008);
    const stop = (await call("audit.query", { agent_id, kind: "agent.stop" })).events[0];
    expect(stop.revoked_tokens).toBe(1);
  });

  test("no such agent → -32002", async () => {
    await rpcError(call("agent.status", { agent_id: "ag-0000000000000000" }), -32002);
    await rpcError(echo("ag-0000000000000000"), -32002);
  });

  test("agent.run without a provider → -32006, audited", async () => {
    const { agent_id } = await spawn("echoer");
    const e = await rpcError(call("agent.run", { agent_id, message: "hi" }), -32006);
    expect(e.message).toMatch(/provider|key/i);
  });
});

describe("approvals", () => {
  test("the call blocks until approved, then runs; approval.requested is broadcast", async () => {
    const { agent_id } = await spawn("careful");
    const watcher = await k.connect();
    const requested = watcher.client.waitFor("approval.requested", 3000, (p) => p.agent_id === agent_id);
    const pending = echo(agent_id, "needs a human");
    const note = await requested;
    const list = await call("approval.list");
    expect(list.approvals).toContainEqual({
      id: note.id,
      agent_id,
      tool: "echo",
      input: { message: "needs a human" },
      requested_at: expect.any(String),
    });
    expect(await call("approval.respond", { id: note.id, decision: "approve" })).toEqual({
      id: note.id,
      decision: "approve",
    });
    expect((await pending).output).toEqual({ message: "needs a human" });
    const kinds = await auditKinds(agent_id);
    expect(kinds).toEqual(
      expect.arrayContaining(["approval.requested", "approval.decided", "tool.call", "tool.result"]),
    );
    expect(kinds.indexOf("approval.decided")).toBeLessThan(kinds.indexOf("tool.call"));
    await rpcError(call("approval.respond", { id: note.id, decision: "deny" }), -32007);
    watcher.client.close();
  });

  test("deny answers -32003 and the tool does not run", async () => {
    const { agent_id } = await spawn("careful");
    const requested = k.client.waitFor("approval.requested", 3000, (p) => p.agent_id === agent_id);
    const pending = echo(agent_id);
    const note = await requested;
    await call("approval.respond", { id: note.id, decision: "deny", reason: "not today" });
    const e = await rpcError(pending, -32003);
    expect(e.message).toContain("not today");
    expect(await auditKinds(agent_id)).not.toContain("tool.call");
  });

  test("a timeout denies", async () => {
    const { agent_id } = await spawn("careful");
    const e = await rpcError(echo(agent_id), -32003);
    expect(e.message).toMatch(/no decision within/);
    expect(await auditKinds(agent_id)).toContain("approval.timeout");
  });

  test("stopping the agent cancels its pending approval", async () => {
    const { agent_id } = await spawn("careful");
    const requested = k.client.waitFor("approval.requested", 3000, (p) => p.agent_id === agent_id);
    const pending = echo(agent_id);
    const note = await requested;
    await call("agent.stop", { agent_id });
    await rpcError(pending, -32003);
    await rpcError(call("approval.respond", { id: note.id, decision: "approve" }), -32007);
  });

  test("unknown approval id → -32007", async () => {
    await rpcError(call("approval.respond", { id: "apr-nope", decision: "approve" }), -32007);
  });
});

describe("children", () => {
  const parent = (caps: string, extra = "") =>
    `name: parent\nmodel: ${MODEL}\ncapabilities:\n${caps}\nspawn_child: [child, grandchild]\n${extra}`;
  const child = (caps: string, extra = "") => `name: child\nmodel: ${MODEL}\ncapabilities:\n${caps}\n${extra}`;

  test("a child within its parent's grant is spawned, with parent_id; more is refused and audited", async () => {
    const p = await call("agent.spawn", { manifest: parent('  - "file_read: /srv/data/*"\n  - echo') });
    const ok = await call("tool.invoke", {
      agent_id: p.agent_id,
      tool: "spawn_agent",
      input: { manifest: child('  - "file_read: /srv/data/reports/*"') },
    });
    expect(ok.output.capabilities).toEqual(["file_read: /srv/data/reports/*"]);
    const st = await call("agent.status", { agent_id: ok.output.agent_id });
    expect(st.parent_id).toBe(p.agent_id);
    expect((await call("agent.status", { agent_id: p.agent_id })).children).toEqual([ok.output.agent_id]);

    const e = await rpcError(
      call("tool.invoke", {
        agent_id: p.agent_id,
        tool: "spawn_agent",
        input: { manifest: child('  - "file_read: /srv/*"') },
      }),
      -32001,
    );
    expect(e.data.capability).toContain("/srv/*");
    const e2 = await rpcError(
      call("tool.invoke", {
        agent_id: p.agent_id,
        tool: "spawn_agent",
        input: { manifest: child('  - "file_write: /srv/data/*"') },
      }),
      -32001,
    );
    expect(e2.data.capability).toContain("file_write");
    expect(await auditKinds(p.agent_id)).toContain("spawn.denied");
  });

  test("a child not on spawn_child is refused", async () => {
    const p = await call("agent.spawn", { manifest: parent("  - echo") });
    const e = await rpcError(
      call("tool.invoke", {
        agent_id: p.agent_id,
        tool: "spawn_agent",
        input: { manifest: `name: other\nmodel: ${MODEL}\n` },
      }),
      -32001,
    );
    expect(e.data.reason).toContain("spawn_child");
  });

  test("depth limit holds", async () => {
    const chain = (name: string, next: string) =>
      `name: ${name}\nmodel: ${MODEL}\nspawn_child: [${next}]\ncapabilities: [echo]\n`;
    const a = await call("agent.spawn", {
      manifest: `name: d0\nmodel: ${MODEL}\nspawn_child: [d1, d2, d3]\ncapabilities: [echo]\n`,
    });
    const b = await call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "spawn_agent",
      input: { manifest: `name: d1\nmodel: ${MODEL}\nspawn_child: [d2, d3]\ncapabilities: [echo]\n` },
    });
    const c = await call("tool.invoke", {
      agent_id: b.output.agent_id,
      tool: "spawn_agent",
      input: { manifest: `name: d2\nmodel: ${MODEL}\nspawn_child: [d3]\ncapabilities: [echo]\n` },
    });
    const e = await rpcError(
      call("tool.invoke", {
        agent_id: c.output.agent_id,
        tool: "spawn_agent",
        input: { manifest: chain("d3", "d3").replace("spawn_child: [d3]\n", "") },
      }),
      -32001,
    );
    expect(e.data.reason).toContain("depth");
  });

  test("a child inherits its parent's approval requirements", async () => {
    const p = await call("agent.spawn", { manifest: parent("  - echo", "approval_required: [echo]\n") });
    const c = await call("tool.invoke", {
      agent_id: p.agent_id,
      tool: "spawn_agent",
      input: { manifest: child("  - echo") },
    });
    const requested = k.client.waitFor("approval.requested", 3000, (x) => x.agent_id === c.output.agent_id);
    const pending = echo(c.output.agent_id);
    const note = await requested;
    await call("approval.respond", { id: note.id, decision: "deny" });
    await rpcError(pending, -32003);
  });

  test("stopping a parent stops its children", async () => {
    const p = await call("agent.spawn", { manifest: parent("  - echo") });
    const c = await call("tool.invoke", {
      agent_id: p.agent_id,
      tool: "spawn_agent",
      input: { manifest: child("  - echo") },
    });
    await call("agent.stop", { agent_id: p.agent_id });
    expect((await call("agent.status", { agent_id: c.output.agent_id })).state).toBe("stopped");
  });
});

describe("messages between agents", () => {
  test("send is allowed only to names on message_send; the recipient reads its mailbox", async () => {
    const b = await call("agent.spawn", {
      manifest: `name: bob\nmodel: ${MODEL}\ncapabilities: ["tool: message_read"]\n`,
    });
    const a = await call("agent.spawn", { manifest: `name: alice\nmodel: ${MODEL}\nmessage_send: [bob]\n` });
    expect(a.capabilities).toEqual(expect.arrayContaining(["tool: message_send"]));
    const sent = await call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "message_send",
      input: { to: "bob", message: "hello bob" },
    });
    expect(sent.output).toEqual({ delivered: true, to: b.agent_id });
    const read = await call("tool.invoke", { agent_id: b.agent_id, tool: "message_read", input: {} });
    expect(read.output.messages).toEqual([
      { from: a.agent_id, from_name: "alice", message: "hello bob", sent_at: expect.any(String) },
    ]);
    await spawn("echoer");
    const e = await rpcError(
      call("tool.invoke", { agent_id: a.agent_id, tool: "message_send", input: { to: "echoer", message: "x" } }),
      -32001,
    );
    expect(e.data.reason).toContain("message_send");
    await rpcError(
      call("tool.invoke", { agent_id: a.agent_id, tool: "message_send", input: { to: "nobody-here", message: "x" } }),
      -32002,
    );
  });
});

describe("audit", () => {
  test("query filters by kind prefix and pages with next_seq; verify is ok", async () => {
    const first = await call("audit.query", { limit: 3 });
    expect(first.events).toHaveLength(3);
    expect(first.events[0]).toMatchObject({ seq: 1, kind: "system.boot" });
    const next = await call("audit.query", { since_seq: first.next_seq, limit: 2 });
    expect(next.events[0].seq).toBe(first.next_seq);
    const tools = await call("audit.query", { kind: "tool.*", limit: 1000 });
    expect(tools.events.length).toBeGreaterThan(0);
    expect(tools.events.every((e: any) => e.kind.startsWith("tool."))).toBe(true);
    const v = await call("audit.verify");
    expect(v.ok).toBe(true);
    expect(v.events).toBeGreaterThan(10);
    expect(v.head).toMatch(/^[0-9a-f]{64}$/);
  });
});
