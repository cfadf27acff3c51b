// Persistent agents, supervision and crash-safe resume through the real
// socket of a host-mode kernel, the model served by the Messages API fixture.
// Restarts reuse the data directory; crashes are SIGKILL. Side effects are
// counted where they happen (a loopback HTTP server counting hits, a file on
// disk), never read back from the kernel's own log.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

const KEY = "sk-ant-api03-PERSISTTEST-never-in-logs-0a1b2c3d4e";
const MODEL = "claude-haiku-4-5-20251001";
const KERNEL_YAML = `inference:
  max_concurrency: 4
  request_timeout_ms: 20000
  retry:
    base_delay_ms: 5
    max_delay_ms: 20
    max_retries: 0
supervision:
  backoff_base: "50ms"
  backoff_max: "200ms"
  crash_loop_failures: 3
  crash_loop_window: "60s"
`;

let srv: MessagesServer;
const kernels: RunningKernel[] = [];

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
});
afterAll(async () => {
  for (const k of kernels) await k.stop().catch(() => {});
  for (const k of new Set(kernels.map((k) => k.dir))) cleanup({ dir: k } as RunningKernel);
  await srv.stop();
});
beforeEach(() => srv.reset());

async function boot(opts: { dir?: string; manifests?: Record<string, string>; kernelYaml?: string } = {}) {
  const k = await startKernel({
    kernelYaml: opts.kernelYaml ?? KERNEL_YAML,
    ...(opts.dir ? { dir: opts.dir } : {}),
    ...(opts.manifests ? { manifests: opts.manifests } : {}),
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url },
  });
  kernels.push(k);
  return k;
}

async function crash(k: RunningKernel) {
  k.client.close();
  k.proc.kill("SIGKILL");
  await k.proc.exited;
}

function manifest(name: string, extra = "") {
  return `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You remember things."\n${extra}`;
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(25);
  }
}

/** agent.send, then agent.result until the item is finished */
async function sendAndWait(k: RunningKernel, agent_id: string, message: string) {
  const { message_id } = await k.client.call("agent.send", { agent_id, message });
  return waitResult(k, agent_id, message_id);
}

function waitResult(k: RunningKernel, agent_id: string, message_id: string) {
  return until(`the result of ${message_id}`, async () => {
    const r = await k.client.call("agent.result", { agent_id, message_id });
    return r.state === "queued" || r.state === "running" ? null : r;
  });
}

async function auditOf(k: RunningKernel, agent_id: string) {
  return (await k.client.call("audit.query", { agent_id, limit: 1000 })).events as any[];
}

/** the JSON of the messages of the n-th recorded model request */
const sent = (i: number) => JSON.stringify(srv.requests[i]!.body.messages);

describe("persistent agents keep their conversation across messages and restarts", () => {
  test("three messages keep context; a restart keeps id, usage and conversation; a session agent is gone", async () => {
    const k = await boot();
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("keeper", "lifecycle: persistent\n"),
    });
    const { agent_id: sessionId } = await k.client.call("agent.spawn", { manifest: manifest("visitor") });
    srv.script([
      { text: "Noted: alpha.", usage: { input_tokens: 10, output_tokens: 3 } },
      { text: "Noted: beta.", usage: { input_tokens: 20, output_tokens: 3 } },
      { text: "You said alpha and beta.", usage: { input_tokens: 30, output_tokens: 5 } },
    ]);
    const r1 = await k.client.call("agent.run", { agent_id, message: "remember alpha-1111" });
    expect(r1.response).toBe("Noted: alpha.");
    const r2 = await sendAndWait(k, agent_id, "remember beta-2222");
    expect(r2).toMatchObject({ state: "done", response: "Noted: beta." });
    const r3 = await k.client.call("agent.run", { agent_id, message: "what did I say?" });
    expect(r3.response).toBe("You said alpha and beta.");
    expect(srv.requests.length).toBe(3);
    const third = sent(2);
    for (const s of ["remember alpha-1111", "Noted: alpha.", "remember beta-2222", "Noted: beta.", "what did I say?"])
      expect(third).toContain(s);
    // the conversation in order: user, assistant, user, assistant, user
    expect(srv.requests[2]!.body.messages.map((m: any) => m.role)).toEqual([
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
    ]);
    const before = await k.client.call("agent.status", { agent_id });
    expect(before.usage).toEqual({ input_tokens: 60, output_tokens: 11 });
    expect(before.lifecycle).toBe("persistent");

    await k.stop();
    const k2 = await boot({ dir: k.dir });
    const list = (await k2.client.call("agent.list")).agents as any[];
    expect(list.filter((a) => a.agent_id === agent_id).length).toBe(1);
    expect(list.find((a) => a.agent_id === agent_id).state).toBe("ready");
    expect(list.some((a) => a.agent_id === sessionId)).toBe(false);
    await rpcError(k2.client.call("agent.status", { agent_id: sessionId }), -32002);
    const after = await k2.client.call("agent.status", { agent_id });
    expect(after.usage).toEqual(before.usage);
    expect(after.name).toBe("keeper");

    srv.script([{ text: "Still alpha and beta.", usage: { input_tokens: 40, output_tokens: 4 } }]);
    const r4 = await sendAndWait(k2, agent_id, "and now?");
    expect(r4).toMatchObject({ state: "done", response: "Still alpha and beta." });
    const fourth = sent(3);
    for (const s of ["remember alpha-1111", "Noted: beta.", "You said alpha and beta.", "and now?"])
      expect(fourth).toContain(s);
    expect((await k2.client.call("agent.status", { agent_id })).usage).toEqual({
      input_tokens: 100,
      output_tokens: 15,
    });
    const kinds = (await auditOf(k2, agent_id)).map((e) => e.kind);
    expect(kinds).toContain("agent.resume");
    await k2.stop();
  }, 60_000);

  test("autostart agents are spawned once at boot and resumed, not duplicated, after a restart", async () => {
    const k = await boot({
      manifests: {
        // the parsed field counts, not the text: True is a YAML boolean, the comment is no value
        daemon: manifest("daemon", "lifecycle: persistent\nautostart: True # at boot\n"),
        listed: manifest("listed", "lifecycle: persistent\n"),
      },
      kernelYaml: KERNEL_YAML + "autostart: [listed]\n",
    });
    const names = async (kk: RunningKernel) =>
      ((await kk.client.call("agent.list")).agents as any[]).filter((a) => a.state !== "stopped");
    const first = await names(k);
    expect(first.filter((a) => a.name === "daemon").length).toBe(1);
    expect(first.filter((a) => a.name === "listed").length).toBe(1);
    const ids = Object.fromEntries(first.map((a) => [a.name, a.agent_id]));
    await k.stop();
    const k2 = await boot({ dir: k.dir });
    const second = await names(k2);
    expect(second.filter((a) => a.name === "daemon").map((a) => a.agent_id)).toEqual([ids.daemon]);
    expect(second.filter((a) => a.name === "listed").map((a) => a.agent_id)).toEqual([ids.listed]);
    // and a third boot after a crash: still one each
    await crash(k2);
    const k3 = await boot({ dir: k.dir });
    const third = await names(k3);
    expect(third.map((a) => a.name).sort()).toEqual(["daemon", "listed"]);
    await k3.stop();
  }, 60_000);
});

describe("restart policies", () => {
  let k: RunningKernel;
  beforeAll(async () => {
    k = await boot();
  });
  afterAll(async () => {
    await k.stop();
  });

  test("never: a failed send puts the agent in failed with the reason, audited; agent.restart brings it back", async () => {
    const { agent_id } = await k.client.call("agent.spawn", { manifest: manifest("fragile", "restart: never\n") });
    srv.script([{ error: { status: 400, message: "bad request from the fixture" } }]);
    const r = await sendAndWait(k, agent_id, "hello");
    expect(r.state).toBe("failed");
    expect(r.error.message).toContain("bad request from the fixture");
    const st = await until("the failed state", async () => {
      const s = await k.client.call("agent.status", { agent_id });
      return s.state === "failed" ? s : null;
    });
    expect(st.failure.reason).toContain("bad request from the fixture");
    const failed = (await auditOf(k, agent_id)).filter((e) => e.kind === "agent.failed");
    expect(failed.length).toBe(1);
    expect(failed[0].reason).toContain("bad request from the fixture");
    // a failed agent takes no run
    await rpcError(k.client.call("agent.run", { agent_id, message: "again" }), -32008);
    expect(await k.client.call("agent.restart", { agent_id })).toEqual({ agent_id, state: "ready" });
    srv.script([{ text: "fine now" }]);
    const again = await sendAndWait(k, agent_id, "hello again");
    expect(again).toMatchObject({ state: "done", response: "fine now" });
    expect((await auditOf(k, agent_id)).some((e) => e.kind === "agent.restart" && e.by === "operator")).toBe(true);
  }, 30_000);

  test("on-failure: one failure then success completes the message, the restart audited", async () => {
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("sturdy", "restart: on-failure\n"),
    });
    srv.script([{ error: { status: 400, message: "first try fails" } }, { text: "second try works" }]);
    const r = await sendAndWait(k, agent_id, "hello");
    expect(r).toMatchObject({ state: "done", response: "second try works" });
    expect(srv.requests.length).toBe(2);
    const restarts = (await auditOf(k, agent_id)).filter((e) => e.kind === "agent.restart");
    expect(restarts.length).toBe(1);
    expect(restarts[0]).toMatchObject({ restarts: 1, message_id: r.message_id });
    expect(restarts[0].reason).toContain("first try fails");
    const st = await k.client.call("agent.status", { agent_id });
    expect(st).toMatchObject({ state: "ready", restarts: 1, failure: null });
  }, 30_000);

  test("on-failure: repeated failures end in failed with a crash-loop reason", async () => {
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("doomed", "restart: on-failure\n"),
    });
    srv.script([1, 2, 3, 4, 5].map((n) => ({ error: { status: 400, message: `failure ${n}` } })));
    const r = await sendAndWait(k, agent_id, "hello");
    expect(r.state).toBe("failed");
    const st = await until("the failed state", async () => {
      const s = await k.client.call("agent.status", { agent_id });
      return s.state === "failed" ? s : null;
    });
    expect(st.failure.reason).toContain("crash loop");
    expect(srv.requests.length).toBe(3);
    const events = await auditOf(k, agent_id);
    expect(events.filter((e) => e.kind === "agent.restart").length).toBe(2);
    expect(events.filter((e) => e.kind === "agent.failed").map((e) => e.reason)).toEqual([st.failure.reason]);
  }, 30_000);

  test("always: an ephemeral agent is ready again after its run, same id", async () => {
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("phoenix", "lifecycle: ephemeral\nrestart: always\n"),
    });
    srv.script([{ text: "one" }, { text: "two" }]);
    expect((await k.client.call("agent.run", { agent_id, message: "first" })).response).toBe("one");
    const st = await until("ready again", async () => {
      const s = await k.client.call("agent.status", { agent_id });
      return s.state === "ready" && s.inbox.current === null ? s : null;
    });
    expect(st.restarts).toBe(1);
    expect((await k.client.call("agent.run", { agent_id, message: "second" })).response).toBe("two");
    // an ephemeral agent without always is stopped after its run
    const { agent_id: once } = await k.client.call("agent.spawn", {
      manifest: manifest("mayfly", "lifecycle: ephemeral\n"),
    });
    srv.script([{ text: "bye" }]);
    await k.client.call("agent.run", { agent_id: once, message: "x" });
    await until("stopped", async () => (await k.client.call("agent.status", { agent_id: once })).state === "stopped");
  }, 30_000);
});

describe("crash-safe resume", () => {
  test("kill -9 during a multi-tool run: resumed, every completed tool run once, the one in flight reported interrupted", async () => {
    const hits = new Map<string, number>();
    const web = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const path = new URL(req.url).pathname;
        hits.set(path, (hits.get(path) ?? 0) + 1);
        if (path === "/c") await new Promise(() => {}); // never answers: in flight at the kill
        return new Response(`hit-${path.slice(1)}`);
      },
    });
    const base = `http://127.0.0.1:${web.port}`;
    const k = await boot();
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("fetcher", `lifecycle: persistent\ncapabilities:\n  - "web_fetch: ${base}/*"\n`),
    });
    srv.script([
      { content: [{ type: "tool_use", name: "web_fetch", input: { url: `${base}/a` } }] },
      { content: [{ type: "tool_use", name: "web_fetch", input: { url: `${base}/b` } }], match: { contains: "hit-a" } },
      { content: [{ type: "tool_use", name: "web_fetch", input: { url: `${base}/c` } }], match: { contains: "hit-b" } },
    ]);
    const { message_id } = await k.client.call("agent.send", { agent_id, message: "fetch a, b and c" });
    await until("the fetch of /c in flight", async () => hits.get("/c") === 1);
    await crash(k);
    expect(srv.requests.length).toBe(3);
    srv.script([{ text: "a and b fetched; c unknown", match: { contains: "interrupted: outcome unknown" } }]);
    const k2 = await boot({ dir: k.dir });
    const r = await waitResult(k2, agent_id, message_id);
    if (process.env.DEBUG_P)
      console.log(
        JSON.stringify(
          srv.requests.map((q) => q.body.messages),
          null,
          1,
        ),
      );
    expect(r).toMatchObject({ state: "done", response: "a and b fetched; c unknown" });
    expect(Object.fromEntries(hits)).toEqual({ "/a": 1, "/b": 1, "/c": 1 });
    expect(srv.requests.length).toBe(4);
    const last = srv.requests[3]!.body.messages as any[];
    // the whole run is in the resumed request: a, b answered with their recorded results, c interrupted
    const results = last
      .flatMap((m) => (Array.isArray(m.content) ? m.content : []))
      .filter((b: any) => b.type === "tool_result");
    expect(results.length).toBe(3);
    expect(JSON.stringify(results[0])).toContain("hit-a");
    expect(JSON.stringify(results[1])).toContain("hit-b");
    expect(results[2].is_error).toBe(true);
    expect(JSON.stringify(results[2])).toContain("interrupted: outcome unknown");
    expect((await k2.client.call("agent.status", { agent_id })).state).toBe("ready");
    const resume = (await auditOf(k2, agent_id)).find((e) => e.kind === "agent.resume");
    expect(resume).toMatchObject({ ok: true, interrupted: message_id });
    await k2.stop();
    web.stop(true);
  }, 60_000);

  test("kill -9 while the model request of turn 3 is pending: resumed without fetching again", async () => {
    const hits = new Map<string, number>();
    const web = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const path = new URL(req.url).pathname;
        hits.set(path, (hits.get(path) ?? 0) + 1);
        return new Response(`hit-${path.slice(1)}`);
      },
    });
    const base = `http://127.0.0.1:${web.port}`;
    const k = await boot();
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("fetcher2", `lifecycle: persistent\ncapabilities:\n  - "web_fetch: ${base}/*"\n`),
    });
    srv.script([
      { content: [{ type: "tool_use", name: "web_fetch", input: { url: `${base}/a` } }] },
      { content: [{ type: "tool_use", name: "web_fetch", input: { url: `${base}/b` } }], match: { contains: "hit-a" } },
      { hang: true, match: { contains: "hit-b" } },
    ]);
    const { message_id } = await k.client.call("agent.send", { agent_id, message: "fetch a, b and c" });
    await until("the third model request", async () => srv.requests.length === 3);
    await crash(k);
    srv.script([
      { content: [{ type: "tool_use", name: "web_fetch", input: { url: `${base}/c` } }], match: { contains: "hit-b" } },
      { text: "all three fetched", match: { contains: "hit-c" } },
    ]);
    const k2 = await boot({ dir: k.dir });
    const r = await waitResult(k2, agent_id, message_id);
    expect(r).toMatchObject({ state: "done", response: "all three fetched" });
    expect(Object.fromEntries(hits)).toEqual({ "/a": 1, "/b": 1, "/c": 1 });
    await k2.stop();
    web.stop(true);
  }, 60_000);

  for (const how of ["kill -9", "a clean stop"] as const)
    test(`a pending approval survives ${how}: same id after the restart, approved, the run completes`, async () => {
      const k = await boot();
      const out = join(k.dataDir, "files", "out");
      const { agent_id } = await k.client.call("agent.spawn", {
        manifest: manifest(
          "careful",
          `lifecycle: persistent\napproval_required: [file_write]\ncapabilities:\n  - "file_write: ${out}/*"\n`,
        ),
      });
      srv.script([
        {
          content: [{ type: "tool_use", name: "file_write", input: { path: `${out}/kept.txt`, content: "approved" } }],
        },
        { text: "written after approval", match: { contains: "tool_result" } },
      ]);
      const { message_id } = await k.client.call("agent.send", { agent_id, message: "write kept.txt" });
      const [pending] = await until("the approval", async () => {
        const l = (await k.client.call("approval.list")).approvals as any[];
        return l.length ? l : null;
      });
      expect(pending).toMatchObject({ agent_id, tool: "file_write" });
      if (how === "kill -9") await crash(k);
      else await k.stop();
      expect(existsSync(join(out, "kept.txt"))).toBe(false);
      const k2 = await boot({ dir: k.dir });
      const l2 = await until("the restored approval", async () => {
        const l = (await k2.client.call("approval.list")).approvals as any[];
        return l.length ? l : null;
      });
      expect(l2.map((a) => a.id)).toEqual([pending.id]);
      await k2.client.call("approval.respond", { id: pending.id, decision: "approve" });
      const r = await waitResult(k2, agent_id, message_id);
      expect(r).toMatchObject({ state: "done", response: "written after approval" });
      expect(readFileSync(join(out, "kept.txt"), "utf8")).toBe("approved");
      expect((await k2.client.call("approval.list")).approvals).toEqual([]);
      await k2.stop();
    }, 60_000);
});
