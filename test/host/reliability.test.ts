// Issue 9 through the real socket: the capability check comes first,
// limits hold under concurrency, an acknowledged decision survives kill -9,
// and a full data disk (a real tmpfs filled to the brim) loses nothing
// acknowledged, hangs no call and does not stop the kernel from booting.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";
import { canMount, smallDisk, type SmallDisk } from "./diskfull.ts";

const MODEL = "claude-haiku-4-5-20251001";
const CAREFUL = `name: careful\nmodel: ${MODEL}\ncapabilities: [echo]\napproval_required: [echo]\n`;
const ECHOER = `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n`;
const SENDER = `name: sender\nmodel: ${MODEL}\nmessage_send: [inbox]\n`;
const INBOX = `name: inbox\nmodel: ${MODEL}\ncapabilities: ["tool: message_read"]\n`;

async function kinds(k: RunningKernel, q: object): Promise<string[]> {
  const r = await k.client.call("audit.query", { limit: 1000, ...q });
  return r.events.map((e: any) => e.kind);
}

describe("the capability check comes first", () => {
  let k: RunningKernel;
  beforeAll(async () => {
    k = await startKernel({
      kernelYaml: "approval:\n  timeout: 30s\n",
      manifests: {
        nothing: `name: nothing\nmodel: ${MODEL}\n`,
        once: `name: once\nmodel: ${MODEL}\ncapabilities:\n  - capability: "tool: echo"\n    max_invocations: 1\n`,
        brief: `name: brief\nmodel: ${MODEL}\ncapabilities:\n  - capability: "tool: echo"\n    expires_in: 1s\napproval_required: [echo]\n`,
      },
    });
  });
  afterAll(async () => {
    await k.stop();
    cleanup(k);
  });
  const call = (m: string, p: object = {}) => k.client.call(m, p);

  test("no token and a malformed input: -32001, audited", async () => {
    const a = await call("agent.spawn", { name: "nothing" });
    const e = await rpcError(call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { wrong: 1 } }), -32001);
    expect(e.data).toMatchObject({ tool: "echo", capability: "tool: echo" });
    expect(await kinds(k, { agent_id: a.agent_id })).toEqual(["agent.spawn", "capability.grant", "capability.denied"]);
  });

  test("an unknown tool is denied and audited", async () => {
    const a = await call("agent.spawn", { name: "nothing" });
    const e = await rpcError(call("tool.invoke", { agent_id: a.agent_id, tool: "frobnicate", input: {} }), -32001);
    expect(e.data).toMatchObject({ tool: "frobnicate", capability: "tool: frobnicate" });
    const r = await call("audit.query", { agent_id: a.agent_id, kind: "capability.denied" });
    expect(r.events[0]).toMatchObject({ tool: "frobnicate", reason: 'no tool named "frobnicate"' });
  });

  test("a validation error does not spend a max_invocations count", async () => {
    const a = await call("agent.spawn", { name: "once" });
    await rpcError(call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { wrong: 1 } }), -32602);
    await rpcError(call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: {} }), -32602);
    expect(await call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "hi" } })).toEqual({
      output: { message: "hi" },
    });
    const e = await rpcError(
      call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "again" } }),
      -32001,
    );
    expect(e.data.reason).toContain("exhausted");
  });

  test("a token that expires while its call waits for approval never runs the tool", async () => {
    const a = await call("agent.spawn", { name: "brief" });
    const pending = k.client.waitFor(
      "agent.output",
      5000,
      (p) => p.agent_id === a.agent_id && p.type === "approval_pending",
    );
    const invoke = call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "late" } });
    const { approval_id } = await pending;
    await Bun.sleep(1200);
    await call("approval.respond", { id: approval_id, decision: "approve" });
    const e = await rpcError(invoke, -32001);
    expect(e.data.reason).toMatch(/expired.*while the call waited for approval/);
    const ks = await kinds(k, { agent_id: a.agent_id });
    expect(ks).toContain("approval.decided");
    expect(ks).not.toContain("tool.call");
    expect(ks.at(-1)).toBe("capability.denied");
  });
});

describe("limits hold under concurrency", () => {
  let k: RunningKernel;
  beforeAll(async () => {
    k = await startKernel({
      kernelYaml: "limits:\n  max_agents: 8\n  max_children: 3\n",
      manifests: {
        parent: `name: parent\nmodel: ${MODEL}\ncapabilities: [echo]\nspawn_child: [kid]\n`,
        kid: `name: kid\nmodel: ${MODEL}\ncapabilities: [echo]\n`,
      },
    });
  });
  afterAll(async () => {
    await k.stop();
    cleanup(k);
  });

  test("30 concurrent spawn_agent calls from one parent make max_children children", async () => {
    const p = await k.client.call("agent.spawn", { name: "parent" });
    const calls = Array.from({ length: 30 }, () =>
      k.client.call("tool.invoke", { agent_id: p.agent_id, tool: "spawn_agent", input: { name: "kid" } }).then(
        () => "ok",
        (e) => e.code,
      ),
    );
    const results = await Promise.all(calls);
    expect(results.filter((r) => r === "ok").length).toBe(3);
    expect(results.filter((r) => r !== "ok").every((c) => c === -32001)).toBe(true);
    const st = await k.client.call("agent.status", { agent_id: p.agent_id });
    expect(st.children.length).toBe(3);
  });

  test("30 concurrent agent.spawn calls never pass max_agents", async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        k.client.call("agent.spawn", { name: "kid" }).then(
          () => "ok",
          (e) => e.code,
        ),
      ),
    );
    const live = (await k.client.call("agent.list")).agents.filter((a: any) => a.state !== "stopped");
    expect(live.length).toBe(8);
    expect(results.filter((r) => r === "ok").length).toBe(8 - 4); // parent and its 3 children were live already
    expect(results.filter((r) => r !== "ok").every((c) => c === -32008)).toBe(true);
    expect((await k.client.call("system.info")).agents).toBe(8);
  });
});

describe("an acknowledged approval decision survives kill -9", () => {
  test("respond, SIGKILL the moment the reply arrives, restart: the decision is in the log (10 tries)", async () => {
    let k = await startKernel({ manifests: { careful: CAREFUL } });
    const dir = k.dir;
    try {
      for (let i = 0; i < 10; i++) {
        const a = await k.client.call("agent.spawn", { name: "careful" });
        const pending = k.client.waitFor(
          "agent.output",
          5000,
          (p) => p.agent_id === a.agent_id && p.type === "approval_pending",
        );
        k.client
          .call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: `try ${i}` } })
          .catch(() => {});
        const { approval_id } = await pending;
        await k.client.call("approval.respond", { id: approval_id, decision: i % 2 ? "deny" : "approve" });
        k.proc.kill("SIGKILL");
        await k.proc.exited;
        k = await startKernel({ dir, manifests: { careful: CAREFUL } });
        const decided = (await k.client.call("audit.query", { kind: "approval.*", agent_id: a.agent_id })).events;
        expect(decided.map((e: any) => e.kind)).toEqual(["approval.requested", "approval.decided"]);
        expect(decided[1]).toMatchObject({ approval_id, decision: i % 2 ? "deny" : "approve" });
      }
      expect((await k.client.call("audit.verify")).ok).toBe(true);
    } finally {
      await k.stop();
      cleanup(k);
    }
  }, 60_000);
});

describe("effect classes: when tool.call must be durable", () => {
  test("tool.list says each tool's effect class", async () => {
    const k = await startKernel();
    try {
      const { tools } = await k.client.call("tool.list");
      expect(Object.fromEntries(tools.map((t: any) => [t.name, t.effect]))).toEqual({
        echo: "none",
        file_read: "none",
        file_list: "none",
        message_read: "none",
        file_write: "reversible",
        file_delete: "reversible",
        file_move: "reversible",
        dir_create: "reversible",
        web_fetch: "irreversible",
        spawn_agent: "irreversible",
        message_send: "irreversible",
        agent_call: "irreversible",
        agent_notify: "irreversible",
        memory_store: "irreversible",
        memory_search: "none",
        memory_delete: "irreversible",
        memory_block_update: "irreversible",
      });
    } finally {
      await k.stop();
      cleanup(k);
    }
  });

  test("echo (none), SIGKILL right after a reply, restart: every acknowledged call has both records (8 tries)", async () => {
    let k = await startKernel({ manifests: { echoer: ECHOER } });
    const dir = k.dir;
    try {
      for (let i = 0; i < 8; i++) {
        const { agent_id } = await k.client.call("agent.spawn", { name: "echoer" });
        const acked: string[] = [];
        let killed = false;
        const calls = Array.from({ length: 32 }, (_, j) =>
          k.client
            .call("tool.invoke", { agent_id, tool: "echo", input: { message: `try ${i} call ${j}` } })
            .then((r: any) => {
              acked.push(r.output.message);
              // kill at the (i+1)-th reply: some calls answered, others in flight
              if (!killed && acked.length > i) {
                killed = true;
                k.proc.kill("SIGKILL");
              }
            })
            .catch(() => {}),
        );
        await Promise.all(calls);
        await k.proc.exited;
        expect(acked.length).toBeGreaterThan(0);
        k = await startKernel({ dir, manifests: { echoer: ECHOER } });
        const events = (await k.client.call("audit.query", { kind: "tool.*", agent_id, limit: 1000 })).events;
        for (const message of acked) {
          const call = events.find((e: any) => e.kind === "tool.call" && e.input.message === message);
          expect(call, message).toBeDefined();
          const result = events.find((e: any) => e.kind === "tool.result" && e.call_seq === call.seq);
          expect(result, message).toMatchObject({ tool: "echo", ok: true, output: { message } });
          expect(result.seq).toBeGreaterThan(call.seq);
        }
        // a call never answered may have left both records or none, never a result without its call
        for (const r of events.filter((e: any) => e.kind === "tool.result"))
          expect(events.some((e: any) => e.kind === "tool.call" && e.seq === r.call_seq && e.seq < r.seq)).toBe(true);
      }
      expect((await k.client.call("audit.verify")).ok).toBe(true);
    } finally {
      await k.stop();
      cleanup(k);
    }
  }, 60_000);

  test("file_write (reversible) keeps the write-ahead: tool.call, then the file, then tool.result", async () => {
    const out = mkdtempSync(join(tmpdir(), "aaos-effects-"));
    const k = await startKernel({
      manifests: { writer: `name: writer\nmodel: ${MODEL}\ncapabilities: ["file_write: ${out}/*"]\n` },
    });
    const path = join(out, "report.txt");
    try {
      const { agent_id } = await k.client.call("agent.spawn", { name: "writer" });
      await k.client.call("tool.invoke", { agent_id, tool: "file_write", input: { path, content: "x" } });
      const events = (await k.client.call("audit.query", { kind: "tool.*", agent_id })).events;
      expect(events.map((e: any) => [e.kind, e.tool])).toEqual([
        ["tool.call", "file_write"],
        ["tool.result", "file_write"],
      ]);
      expect(events[1]).toMatchObject({ call_seq: events[0].seq, ok: true });
      expect(events[1].seq).toBeGreaterThan(events[0].seq);
    } finally {
      await k.stop();
      cleanup(k);
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!canMount())("a full data disk", () => {
  let disk: SmallDisk;
  let k: RunningKernel;
  beforeAll(async () => {
    disk = smallDisk();
    k = await startKernel({
      dir: disk.dir,
      kernelYaml: "approval:\n  timeout: 3s\n",
      manifests: { echoer: ECHOER, careful: CAREFUL, sender: SENDER, inbox: INBOX },
    });
  });
  afterAll(async () => {
    await k.stop();
    disk.unmount();
  });
  const call = (m: string, p: object = {}) => k.client.call(m, p);

  /**
   * Fill the disk, then use up the slack of the segment's last page: stop
   * spare agents until one agent.stop cannot be written. From then on the
   * log refuses any record at least as long as an agent.stop of an
   * "echoer" (spawn records, approval decisions and stops of echoers are).
   */
  async function fillUntilRefused(): Promise<void> {
    const spares: string[] = [];
    for (let i = 0; i < 40; i++) spares.push((await call("agent.spawn", { name: "echoer" })).agent_id);
    disk.fill();
    for (const id of spares) {
      try {
        await call("agent.stop", { agent_id: id });
      } catch (e: any) {
        expect(e.code).toBe(-32603);
        return;
      }
    }
    throw new Error("the disk never filled");
  }

  test("a spawn that cannot be recorded leaves no agent, no token, no slot", async () => {
    await fillUntilRefused();
    const before = (await call("agent.list")).agents;
    const live = (await call("system.info")).agents;
    const e = await rpcError(call("agent.spawn", { name: "echoer" }), -32603);
    expect(e.message).toMatch(
      /agent\.spawn was not recorded in the audit log, so no agent was started: .*(no space left|ENOSPC)/i,
    );
    expect((await call("agent.list")).agents).toEqual(before);
    expect((await call("system.info")).agents).toBe(live);
    disk.free();
    const s = await call("agent.spawn", { name: "echoer" });
    expect(await call("tool.invoke", { agent_id: s.agent_id, tool: "echo", input: { message: "x" } })).toEqual({
      output: { message: "x" },
    });
    // every agent that exists has its spawn and grant on record
    for (const a of (await call("agent.list")).agents)
      expect((await kinds(k, { agent_id: a.agent_id })).slice(0, 2)).toEqual(["agent.spawn", "capability.grant"]);
    expect((await call("audit.verify")).ok).toBe(true);
  });

  test("a stop that cannot be recorded leaves the agent running; it stops once space is freed", async () => {
    const target = await call("agent.spawn", { name: "echoer" });
    await fillUntilRefused();
    const e = await rpcError(call("agent.stop", { agent_id: target.agent_id }), -32603);
    expect(e.message).toMatch(/agent\.stop was not recorded.*still running/);
    expect((await call("agent.status", { agent_id: target.agent_id })).state).toBe("ready");
    disk.free();
    expect(await call("agent.stop", { agent_id: target.agent_id })).toEqual({
      agent_id: target.agent_id,
      state: "stopped",
    });
    expect(await kinds(k, { agent_id: target.agent_id, kind: "agent.stop" })).toEqual(["agent.stop"]);
  });

  test("a message that cannot be recorded is not delivered", async () => {
    const from = await call("agent.spawn", { name: "sender" });
    const to = await call("agent.spawn", { name: "inbox" });
    await fillUntilRefused();
    const e = await rpcError(
      call("tool.invoke", {
        agent_id: from.agent_id,
        tool: "message_send",
        input: { to: "inbox", message: "m".repeat(300) },
      }),
      -32603,
    );
    expect(e.message).toMatch(/not recorded|cannot be written/);
    disk.free();
    const r = await call("tool.invoke", { agent_id: to.agent_id, tool: "message_read", input: {} });
    expect(r.output.messages).toEqual([]);
  });

  test("an approval answered on a full disk stays pending, and its call completes once space is freed", async () => {
    const a = await call("agent.spawn", { name: "careful" });
    const pending = k.client.waitFor(
      "agent.output",
      5000,
      (p) => p.agent_id === a.agent_id && p.type === "approval_pending",
    );
    const invoke = call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "gated" } });
    const { approval_id } = await pending;
    await fillUntilRefused();
    const e = await rpcError(call("approval.respond", { id: approval_id, decision: "approve" }), -32603);
    expect(e.message).toMatch(/was not recorded, so it was not applied \(the approval is still pending\)/);
    expect((await call("approval.list")).approvals.map((x: any) => x.id)).toContain(approval_id);
    disk.free();
    await call("approval.respond", { id: approval_id, decision: "approve" });
    expect(await invoke).toEqual({ output: { message: "gated" } });
  });

  test("an approval that times out on a full disk still settles its call", async () => {
    const a = await call("agent.spawn", { name: "careful" });
    const pending = k.client.waitFor(
      "agent.output",
      5000,
      (p) => p.agent_id === a.agent_id && p.type === "approval_pending",
    );
    const invoke = call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "waits" } }).then(
      () => 0,
      (e) => e.code,
    );
    await pending;
    await fillUntilRefused();
    expect(await invoke).toBe(-32003); // the 3 s timeout denied it; it did not hang
    expect((await call("approval.list")).approvals).toEqual([]);
    disk.free();
  });

  test("the kernel boots on a full disk: reads answer, changes get a clear error, service resumes when space is freed", async () => {
    await k.stop();
    // leftovers a crash would leave: a pending approval and a torn record at the tail
    writeFileSync(
      join(disk.dataDir, "approvals", "pending.json"),
      JSON.stringify([
        {
          id: "apr-0000000000000001",
          agent_id: "ag-x",
          tool: "echo",
          input: {},
          requested_at: new Date().toISOString(),
        },
      ]),
    );
    const seg = readdirSync(join(disk.dataDir, "audit"))
      .filter((f) => f.endsWith(".jsonl"))
      .sort()
      .at(-1)!;
    appendFileSync(join(disk.dataDir, "audit", seg), '{"seq":99999,"torn');
    disk.fill();
    k = await startKernel({
      dir: disk.dir,
      kernelYaml: "approval:\n  timeout: 3s\n",
      manifests: { echoer: ECHOER, careful: CAREFUL },
    });
    expect((await call("system.ping")).pong).toBe(true);
    const info = await call("system.info");
    expect(info.degraded?.reason ?? "").toMatch(/no space left on device|ENOSPC/i);
    expect((await call("audit.query", { limit: 5 })).events.length).toBeGreaterThan(0);
    expect(typeof (await call("audit.verify")).ok).toBe("boolean");
    const e = await rpcError(call("agent.spawn", { name: "echoer" }), -32603);
    expect(e.message).toMatch(/no agent was started.*(no space left|ENOSPC)/i);
    disk.free();
    await call("agent.spawn", { name: "echoer" });
    expect((await call("system.info")).degraded ?? null).toBeNull();
    expect((await call("audit.verify")).ok).toBe(true);
  });
});
