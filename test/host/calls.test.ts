// Typed calls between agents through the real JSON-RPC socket of a host-mode
// kernel: agent_call / agent.call validated against the recipient's serves:
// schemas, answered through the reply tool, refused on a cycle or a full
// inbox, cancelled by a stop or a timeout; agent_notify one-way; agent.send
// and agent.result. One kernel and one fixture model server for every test;
// each agent's steps are told apart by its system prompt.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

const KEY = "sk-ant-api03-HOSTTEST-calls-0a1b2c3d4e5f";
const MODEL = "claude-haiku-4-5-20251001";
const KERNEL_YAML = `inference:
  max_concurrency: 8
  request_timeout_ms: 600000
  retry:
    base_delay_ms: 5
    max_delay_ms: 50
    max_retries: 2
limits:
  max_inbox: 2
`;

const LOOKUP = `serves:
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
`;
const PING = `serves:
  ping:
    description: answers ok
    params: {type: object}
    result:
      type: object
      properties:
        ok: {type: boolean}
      required: [ok]
`;
const RESULT_SCHEMA = {
  type: "object",
  properties: { value: { type: "string" } },
  required: ["value"],
};

const m = (name: string, prompt: string, extra = "") =>
  `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "${prompt}"\n${extra}`;
const MANIFESTS = {
  served: m("served", "You are SERVED-AGENT.", `max_turns: 2\n${LOOKUP}`),
  caller: m("caller", "You are CALLER-AGENT.", `capabilities:\n  - "call: served.lookup"\n`),
  nocall: m("nocall", "You are NOCALL-AGENT.", `capabilities:\n  - echo\n`),
  ping: m("ping", "You are PING-AGENT.", `max_turns: 3\ncapabilities:\n  - "call: pong.*"\n${PING}`),
  pong: m("pong", "You are PONG-AGENT.", `max_turns: 3\ncapabilities:\n  - "call: ping.ping"\n${PING}`),
  plain: m("plain", "You are PLAIN-AGENT.", `capabilities:\n  - echo\napproval_required: [echo]\n`),
};

let srv: MessagesServer;
let k: RunningKernel;
/** agents a test spawned: stopped after it, so a name names one live agent */
let spawned: string[] = [];

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({
    manifests: MANIFESTS,
    kernelYaml: KERNEL_YAML,
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url },
  });
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
  await srv.stop();
});
beforeEach(() => srv.reset());
afterEach(async () => {
  for (const id of spawned.splice(0)) await call("agent.stop", { agent_id: id }).catch(() => {});
});

const call = (method: string, p: object = {}) => k.client.call(method, p);

async function spawn(name: keyof typeof MANIFESTS): Promise<string> {
  const id = (await call("agent.spawn", { name })).agent_id as string;
  spawned.push(id);
  return id;
}

async function auditKind(kind: string): Promise<any[]> {
  return (await call("audit.query", { kind, limit: 1000 })).events as any[];
}

/** poll until the predicate holds (a behaviour, not a timing: the test's own timeout bounds it) */
async function until<T>(f: () => Promise<T | null | undefined | false> | T | null | undefined | false): Promise<T> {
  for (;;) {
    const v = await f();
    if (v) return v as T;
    await Bun.sleep(20);
  }
}

const requestsOf = (prompt: string) => srv.requests.filter((r) => JSON.stringify(r.body.system ?? "").includes(prompt));

/** the agent.request record of a call to `to` (the last one) */
async function requestTo(to: string): Promise<any> {
  return until(async () => (await auditKind("agent.request")).filter((e) => e.to === to).at(-1));
}

describe("typed calls between agents", () => {
  test("a caller's agent_call is answered by the recipient's reply tool; both sides audited", async () => {
    const served = await spawn("served");
    const caller = await spawn("caller");
    srv.script([
      {
        match: { system: "CALLER-AGENT" },
        content: [
          { type: "tool_use", name: "agent_call", input: { to: "served", method: "lookup", params: { key: "k1" } } },
        ],
      },
      {
        match: { system: "SERVED-AGENT", tool_choice: "any" },
        content: [{ type: "tool_use", name: "reply", input: { value: "v1-answer-7731" } }],
      },
      { match: { system: "CALLER-AGENT", contains: "v1-answer-7731" }, text: "The value is v1." },
    ]);
    const r = await call("agent.run", { agent_id: caller, message: "look up k1" });
    expect(r.response).toBe("The value is v1.");
    expect(r.tool_calls).toHaveLength(1);
    expect(r.tool_calls[0]).toMatchObject({ tool: "agent_call", ok: true, output: { value: "v1-answer-7731" } });
    expect(srv.pending()).toBe(0);

    // the recipient's model was asked with the reply tool (the result schema) and tool_choice any
    const asked = requestsOf("SERVED-AGENT");
    expect(asked).toHaveLength(1);
    expect(asked[0]!.body.tool_choice).toEqual({ type: "any" });
    const reply = asked[0]!.body.tools.find((t: any) => t.name === "reply");
    expect(reply.input_schema).toMatchObject(RESULT_SCHEMA);
    expect(JSON.stringify(asked[0]!.body.messages)).toContain('\\"key\\": \\"k1\\"');

    const req = await requestTo(served);
    expect(req).toMatchObject({ agent_id: caller, to: served, method: "lookup", chain: [caller] });
    expect(req.bytes).toBe(Buffer.byteLength(JSON.stringify({ key: "k1" })));
    expect(req.sha256).toMatch(/^[0-9a-f]{64}$/);
    const res = await until(async () => (await auditKind("agent.response")).find((e) => e.call_id === req.call_id));
    expect(res).toMatchObject({ agent_id: served, to: caller, method: "lookup", ok: true, chain: [caller] });
    expect(res.bytes).toBe(Buffer.byteLength(JSON.stringify({ value: "v1-answer-7731" })));
    expect(res.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await call("agent.status", { agent_id: served })).serves).toEqual(["lookup"]);
    // the call is kept for agent.result under its call id
    expect(await call("agent.result", { agent_id: served, message_id: req.call_id })).toMatchObject({
      state: "done",
      result: { value: "v1-answer-7731" },
    });
  });

  test("invalid params are refused with -32602 naming the field and never delivered", async () => {
    const served = await spawn("served");
    const caller = await spawn("caller");
    const before = (await auditKind("agent.request")).length;
    const e1 = await rpcError(call("agent.call", { agent_id: served, method: "lookup", params: { key: 5 } }), -32602);
    expect(e1.message).toContain("params.key");
    const e2 = await rpcError(
      call("agent.call", { agent_id: served, method: "lookup", params: { key: "a", extra: 1 } }),
      -32602,
    );
    expect(e2.message).toContain("extra");
    const e3 = await rpcError(call("agent.call", { agent_id: served, method: "lookup", params: {} }), -32602);
    expect(e3.message).toContain("params.key");
    // through a model's agent_call: the refusal is its tool_result
    srv.script([
      {
        match: { system: "CALLER-AGENT" },
        content: [
          { type: "tool_use", name: "agent_call", input: { to: "served", method: "lookup", params: { nope: 1 } } },
        ],
      },
      { match: { system: "CALLER-AGENT", contains: "-32602" }, text: "refused" },
    ]);
    const r = await call("agent.run", { agent_id: caller, message: "call badly" });
    expect(r.response).toBe("refused");
    expect(r.tool_calls[0]).toMatchObject({ tool: "agent_call", ok: false, error: { code: -32602 } });
    expect(requestsOf("SERVED-AGENT")).toHaveLength(0);
    expect((await auditKind("agent.request")).length).toBe(before);
    expect((await call("agent.status", { agent_id: served })).inbox).toEqual({ depth: 0, current: null });
  });

  test("a reply that violates the result schema is refused: the caller gets -32603 naming the field", async () => {
    const served = await spawn("served");
    srv.script([
      {
        match: { system: "SERVED-AGENT", tool_choice: "any" },
        content: [{ type: "tool_use", name: "reply", input: { wrong: 1 } }],
      },
      {
        match: { system: "SERVED-AGENT", tool_choice: "reply" },
        content: [{ type: "tool_use", name: "reply", input: { value: 42 } }],
      },
    ]);
    const e = await rpcError(call("agent.call", { agent_id: served, method: "lookup", params: { key: "k" } }), -32603);
    expect(e.message).toContain("served.lookup answered a result that does not match its schema");
    expect(e.message).toContain("value");
    // the model was told why and asked again, the last turn forcing the reply tool
    const asked = requestsOf("SERVED-AGENT");
    expect(asked).toHaveLength(2);
    expect(asked[1]!.body.tool_choice).toEqual({ type: "tool", name: "reply" });
    expect(JSON.stringify(asked[1]!.body.messages)).toContain("does not match the result schema");
    const req = await requestTo(served);
    const res = await until(async () => (await auditKind("agent.response")).find((x) => x.call_id === req.call_id));
    expect(res).toMatchObject({ ok: false, error: { code: -32603 } });
    // the agent is still ready for the next call
    expect((await call("agent.status", { agent_id: served })).state).toBe("ready");
  });

  test("a cycle A → B → A is refused with -32008 naming it", async () => {
    const ping = await spawn("ping");
    const pong = await spawn("pong");
    srv.script([
      {
        match: { system: "PING-AGENT", contains: "Request ping" },
        content: [{ type: "tool_use", name: "agent_call", input: { to: "pong", method: "ping", params: {} } }],
      },
      {
        match: { system: "PONG-AGENT" },
        content: [{ type: "tool_use", name: "agent_call", input: { to: "ping", method: "ping", params: {} } }],
      },
      {
        match: { system: "PONG-AGENT", contains: "deadlock refused" },
        content: [{ type: "tool_use", name: "reply", input: { ok: false } }],
      },
      {
        match: { system: "PING-AGENT", contains: "tool_result" },
        content: [{ type: "tool_use", name: "reply", input: { ok: true } }],
      },
    ]);
    const r = await call("agent.call", { agent_id: ping, method: "ping", params: {} });
    expect(r).toEqual({ result: { ok: true } });
    // pong's model got the refusal as its tool_result
    const pongAsked = requestsOf("PONG-AGENT");
    expect(pongAsked).toHaveLength(2);
    const text = JSON.stringify(pongAsked[1]!.body.messages);
    expect(text).toContain("-32008");
    expect(text).toContain("deadlock refused: pong → ping → pong");
    const denied = (await auditKind("message.denied")).find((e) => e.agent_id === pong && e.to === ping);
    expect(denied.reason).toContain("deadlock refused");
    // the refused call was never queued at ping
    expect((await auditKind("agent.request")).filter((e) => e.agent_id === pong && e.to === ping)).toHaveLength(0);
  });

  test("two agents calling each other at the same moment: one call is refused, neither waits for the timeout", async () => {
    const ping = await spawn("ping");
    const pong = await spawn("pong");
    const side = (me: "PING" | "PONG", other: "ping" | "pong") => [
      { match: { system: `${me}-AGENT`, contains: "deadlock refused" }, text: `${me} gave up` },
      {
        match: { system: `${me}-AGENT`, contains: "Request ping" },
        content: [{ type: "tool_use" as const, name: "reply", input: { ok: true } }],
      },
      { match: { system: `${me}-AGENT`, contains: "tool_result" }, text: `${me} got it` },
      {
        match: { system: `${me}-AGENT`, contains: "start" },
        content: [{ type: "tool_use" as const, name: "agent_call", input: { to: other, method: "ping", params: {} } }],
      },
    ];
    srv.script([...side("PING", "pong"), ...side("PONG", "ping")]);
    const [a, b] = await Promise.all([
      call("agent.send", { agent_id: ping, message: "start" }),
      call("agent.send", { agent_id: pong, message: "start" }),
    ]);
    const [da, db] = await Promise.all([
      k.client.waitFor("agent.done", 20_000, (p) => p.message_id === a.message_id),
      k.client.waitFor("agent.done", 20_000, (p) => p.message_id === b.message_id),
    ]);
    expect(da.state).toBe("done");
    expect(db.state).toBe("done");
    expect([da.response, db.response].sort()).toEqual(
      da.response === "PING gave up" ? ["PING gave up", "PONG got it"] : ["PING got it", "PONG gave up"],
    );
    const denied = (await auditKind("message.denied")).filter(
      (e) => (e.agent_id === ping && e.to === pong) || (e.agent_id === pong && e.to === ping),
    );
    expect(denied).toHaveLength(1);
    expect(denied[0].reason).toContain("deadlock refused");
  }, 30_000);

  test("the operator's connection going away cancels its call", async () => {
    const served = await spawn("served");
    srv.script([{ match: { system: "SERVED-AGENT" }, hang: true }]);
    const other = await k.connect();
    const pending = other.client.call("agent.call", { agent_id: served, method: "lookup", params: { key: "gone" } });
    pending.catch(() => {});
    const req = await requestTo(served);
    await until(async () => (await call("agent.status", { agent_id: served })).inbox.current === req.call_id);
    other.client.close();
    await until(async () => {
      const x = await call("agent.result", { agent_id: served, message_id: req.call_id });
      return x.state === "cancelled";
    });
    await until(async () => (await call("agent.status", { agent_id: served })).inbox.current === null);
  });

  test("a full inbox answers at once with -32008", async () => {
    const served = await spawn("served");
    srv.script([{ match: { system: "SERVED-AGENT" }, hang: true }]);
    const first = await call("agent.send", { agent_id: served, message: "one" });
    await until(async () => (await call("agent.status", { agent_id: served })).inbox.current === first.message_id);
    await call("agent.send", { agent_id: served, message: "two" });
    const e = await rpcError(call("agent.call", { agent_id: served, method: "lookup", params: { key: "k" } }), -32008);
    expect(e.message).toBe(`inbox of served (${served}) is full (2 messages)`);
    await rpcError(call("agent.send", { agent_id: served, message: "three" }), -32008);
    const denied = (await auditKind("message.denied")).filter((x) => x.to === served);
    expect(denied.map((x) => x.reason)).toEqual([e.message, e.message]);
    expect(denied[0].method).toBe("lookup");
    const st = await call("agent.status", { agent_id: served });
    expect(st.inbox).toEqual({ depth: 1, current: first.message_id });
    expect(requestsOf("SERVED-AGENT")).toHaveLength(1);
  });

  test("stopping the caller cancels its request at the recipient", async () => {
    const served = await spawn("served");
    const caller = await spawn("caller");
    srv.script([
      {
        match: { system: "CALLER-AGENT" },
        content: [
          { type: "tool_use", name: "agent_call", input: { to: "served", method: "lookup", params: { key: "s" } } },
        ],
      },
      { match: { system: "SERVED-AGENT" }, hang: true },
    ]);
    await call("agent.send", { agent_id: caller, message: "look it up" });
    const req = await requestTo(served);
    await until(async () => (await call("agent.status", { agent_id: served })).inbox.current === req.call_id);
    await call("agent.stop", { agent_id: caller });
    const r = await until(async () => {
      const x = await call("agent.result", { agent_id: served, message_id: req.call_id });
      return x.state === "cancelled" ? x : null;
    });
    expect(r.error.code).toBe(-32008);
    const res = await until(async () => (await auditKind("agent.response")).find((x) => x.call_id === req.call_id));
    expect(res).toMatchObject({ ok: false, error: { code: -32008 } });
    // the recipient's run was cut short; it is ready again
    await until(async () => {
      const st = await call("agent.status", { agent_id: served });
      return st.state === "ready" && st.inbox.current === null;
    });
  });

  test("stopping the recipient fails the waiting caller's call promptly", async () => {
    const served = await spawn("served");
    srv.script([{ match: { system: "SERVED-AGENT" }, hang: true }]);
    const pending = call("agent.call", { agent_id: served, method: "lookup", params: { key: "x" } });
    const req = await requestTo(served);
    await until(async () => (await call("agent.status", { agent_id: served })).inbox.current === req.call_id);
    await call("agent.stop", { agent_id: served });
    const e = await rpcError(pending, -32008);
    expect(e.message).toContain("stopped");
  });

  test("stopping the caller cancels its request still queued at a busy recipient", async () => {
    const served = await spawn("served");
    const caller = await spawn("caller");
    srv.script([
      { match: { system: "SERVED-AGENT" }, hang: true },
      {
        match: { system: "CALLER-AGENT" },
        content: [
          { type: "tool_use", name: "agent_call", input: { to: "served", method: "lookup", params: { key: "q" } } },
        ],
      },
    ]);
    const busy = await call("agent.send", { agent_id: served, message: "keep busy" });
    await until(async () => (await call("agent.status", { agent_id: served })).inbox.current === busy.message_id);
    await call("agent.send", { agent_id: caller, message: "look it up" });
    const req = await requestTo(served);
    expect((await call("agent.result", { agent_id: served, message_id: req.call_id })).state).toBe("queued");
    expect((await call("agent.status", { agent_id: served })).inbox.depth).toBe(1);
    await call("agent.stop", { agent_id: caller });
    await until(async () => {
      const x = await call("agent.result", { agent_id: served, message_id: req.call_id });
      return x.state === "cancelled";
    });
    expect((await call("agent.status", { agent_id: served })).inbox).toEqual({ depth: 0, current: busy.message_id });
    // the recipient's model never saw the cancelled request
    expect(requestsOf("SERVED-AGENT")).toHaveLength(1);
  });

  test("a nested call is bounded by its caller's deadline: both items cancelled at the timeout", async () => {
    const ping = await spawn("ping");
    const pong = await spawn("pong");
    srv.script([
      {
        match: { system: "PING-AGENT" },
        content: [{ type: "tool_use", name: "agent_call", input: { to: "pong", method: "ping", params: {} } }],
      },
      { match: { system: "PONG-AGENT" }, hang: true },
    ]);
    await rpcError(call("agent.call", { agent_id: ping, method: "ping", params: {}, timeout_ms: 500 }), -32009);
    const outer = await requestTo(ping);
    const inner = await requestTo(pong);
    expect(inner.chain).toEqual([ping]);
    expect(Date.parse(inner.deadline)).toBeLessThanOrEqual(Date.parse(outer.deadline));
    for (const [id, r] of [
      [ping, outer],
      [pong, inner],
    ] as const)
      await until(
        async () => (await call("agent.result", { agent_id: id, message_id: r.call_id })).state === "cancelled",
      );
  });

  test("a call to a failed agent is refused at once with -32008 naming why, not left to time out", async () => {
    const served = await spawn("served");
    // restart: never (the default): an agent.send whose run fails puts the agent in failed
    srv.script([{ match: { system: "SERVED-AGENT" }, error: { status: 400, message: "bad request on purpose" } }]);
    await call("agent.send", { agent_id: served, message: "fail" });
    await until(async () => (await call("agent.status", { agent_id: served })).state === "failed");
    const e = await rpcError(call("agent.call", { agent_id: served, method: "lookup", params: { key: "f" } }), -32008);
    expect(e.message).toContain("failed");
    expect(e.message).toContain("agent.restart");
    await call("agent.restart", { agent_id: served });
  });

  test("agent.call with a small timeout_ms against a hanging model answers -32009 and cancels the item", async () => {
    const served = await spawn("served");
    srv.script([{ match: { system: "SERVED-AGENT" }, hang: true }]);
    const e = await rpcError(
      call("agent.call", { agent_id: served, method: "lookup", params: { key: "t" }, timeout_ms: 300 }),
      -32009,
    );
    expect(e.message).toContain("did not answer");
    const req = await requestTo(served);
    expect((await call("agent.result", { agent_id: served, message_id: req.call_id })).state).toBe("cancelled");
    await until(async () => {
      const st = await call("agent.status", { agent_id: served });
      return st.state === "ready" && st.inbox.current === null;
    });
  });

  test("the operator's agent.call; a caller without call: is denied; agent_notify is one-way", async () => {
    const served = await spawn("served");
    const caller = await spawn("caller");
    const nocall = await spawn("nocall");
    srv.script([
      { match: { system: "SERVED-AGENT" }, content: [{ type: "tool_use", name: "reply", input: { value: "op" } }] },
    ]);
    expect(await call("agent.call", { agent_id: served, method: "lookup", params: { key: "o" } })).toEqual({
      result: { value: "op" },
    });
    const opReq = await requestTo(served);
    expect(opReq).toMatchObject({ agent_id: null, chain: [], method: "lookup" });

    // no call: capability at all: the tool itself is denied
    const d1 = await rpcError(
      call("tool.invoke", {
        agent_id: nocall,
        tool: "agent_call",
        input: { to: "served", method: "lookup", params: { key: "a" } },
      }),
      -32001,
    );
    expect(d1.data.tool).toBe("agent_call");
    // call: served.lookup covers only that method
    const d2 = await rpcError(
      call("tool.invoke", {
        agent_id: caller,
        tool: "agent_call",
        input: { to: "served", method: "other", params: {} },
      }),
      -32001,
    );
    expect(d2.data.capability).toBe("call: served.other");
    const denials = await auditKind("capability.denied");
    expect(denials.some((e) => e.agent_id === nocall && e.tool === "agent_call")).toBe(true);
    expect(denials.some((e) => e.agent_id === caller && e.resource === "served.other")).toBe(true);

    // agent_notify: delivered, run by the recipient without a reply tool
    srv.reset();
    srv.script([
      {
        match: { system: "CALLER-AGENT" },
        content: [
          { type: "tool_use", name: "agent_notify", input: { to: "served", method: "lookup", params: { key: "n1" } } },
        ],
      },
      { match: { system: "CALLER-AGENT", contains: "tool_result" }, text: "notified" },
      { match: { system: "SERVED-AGENT", contains: "Notification lookup" }, text: "noted" },
    ]);
    const r = await call("agent.run", { agent_id: caller, message: "notify served" });
    expect(r.response).toBe("notified");
    expect(r.tool_calls[0]).toMatchObject({ tool: "agent_notify", ok: true, output: { delivered: true } });
    const messageId = r.tool_calls[0].output.message_id as string;
    const done = await until(async () => {
      const x = await call("agent.result", { agent_id: served, message_id: messageId });
      return x.state === "done" ? x : null;
    });
    expect(done.response).toBe("noted");
    const asked = requestsOf("SERVED-AGENT");
    expect(asked).toHaveLength(1);
    expect(asked[0]!.body.tool_choice).toBeUndefined();
    expect((asked[0]!.body.tools ?? []).some((t: any) => t.name === "reply")).toBe(false);
    const ntf = (await auditKind("agent.notify")).find((e) => e.message_id === messageId);
    expect(ntf).toMatchObject({ agent_id: caller, to: served, method: "lookup", chain: [caller] });
    expect(ntf.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test("agent.send answers at once; agent.output and agent.done carry message_id; status shows the inbox", async () => {
    const plain = await spawn("plain");
    srv.script([
      { match: { system: "PLAIN-AGENT" }, content: [{ type: "tool_use", name: "echo", input: { message: "hi" } }] },
      { match: { system: "PLAIN-AGENT", contains: "tool_result" }, text: "first done" },
      { match: { system: "PLAIN-AGENT", contains: "second" }, text: "second done" },
    ]);
    const outputs: any[] = [];
    const off = k.client.onNotification((n: any) => {
      if (n.method === "agent.output" && n.params.agent_id === plain) outputs.push(n.params);
    });
    const approval = k.client.waitFor("approval.requested", 10_000, (p) => p.agent_id === plain);
    const first = await call("agent.send", { agent_id: plain, message: "first" });
    expect(first).toEqual({ agent_id: plain, message_id: expect.stringMatching(/^msg-/) });
    const firstDone = k.client.waitFor("agent.done", 20_000, (p) => p.message_id === first.message_id);
    const a = await approval;
    // busy: waiting for the approval of echo
    expect((await call("agent.result", { agent_id: plain, message_id: first.message_id })).state).toBe("running");
    const second = await call("agent.send", { agent_id: plain, message: "second" });
    const secondDone = k.client.waitFor("agent.done", 20_000, (p) => p.message_id === second.message_id);
    const st = await call("agent.status", { agent_id: plain });
    expect(st.state).toBe("running");
    expect(st.inbox).toEqual({ depth: 1, current: first.message_id });
    expect((await call("agent.result", { agent_id: plain, message_id: second.message_id })).state).toBe("queued");
    await call("approval.respond", { id: a.id ?? a.approval_id, decision: "approve" });
    const d1 = await firstDone;
    expect(d1).toMatchObject({ agent_id: plain, message_id: first.message_id, state: "done", response: "first done" });
    const d2 = await secondDone;
    expect(d2).toMatchObject({ message_id: second.message_id, state: "done", response: "second done" });
    off();
    expect(outputs.length).toBeGreaterThan(0);
    for (const o of outputs) expect([first.message_id, second.message_id]).toContain(o.message_id);
    expect(outputs.some((o) => o.message_id === first.message_id && o.type === "tool_result")).toBe(true);
    expect(await call("agent.result", { agent_id: plain, message_id: first.message_id })).toMatchObject({
      state: "done",
      response: "first done",
      stop_reason: "end_turn",
    });
    const st2 = await call("agent.status", { agent_id: plain });
    expect(st2.inbox).toEqual({ depth: 0, current: null });
    await rpcError(call("agent.result", { agent_id: plain, message_id: "msg-nope" }), -32602);
    const sends = (await auditKind("agent.send")).filter((e) => e.to === plain).map((e) => e.message_id);
    expect(sends).toEqual([first.message_id, second.message_id]);
  });
});
