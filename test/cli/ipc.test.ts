// aaosctl's inbox and typed-call verbs (send, result, call-agent, restart)
// against a real host-mode kernel, each verb run as its own process; the
// model is the local Messages API fixture, told apart per agent by its
// system prompt.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

const KEY = "sk-ant-api03-CLITEST-ipc-00000000000000";
const MODEL = "claude-haiku-4-5-20251001";

const FORECAST = `serves:
  forecast:
    description: the weather for a city
    params:
      type: object
      properties:
        city: {type: string}
        days: {type: integer}
      required: [city]
      additionalProperties: false
    result:
      type: object
      properties:
        summary: {type: string}
      required: [summary]
`;

let k: RunningKernel;
let llm: MessagesServer;
let S: string[];

beforeAll(async () => {
  llm = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({
    kernelYaml: "inference:\n  request_timeout_ms: 5000\n  retry:\n    max_retries: 0\n",
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    manifests: {
      weather: `name: weather\nmodel: ${MODEL}\nsystem_prompt: "You are WEATHER-AGENT."\nmax_turns: 2\n${FORECAST}`,
      notes: `name: notes\nmodel: ${MODEL}\nsystem_prompt: "You are NOTES-AGENT."\ncapabilities:\n  - echo\n`,
    },
  });
  S = ["--socket", k.socket];
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
});
beforeEach(() => llm.reset());

const cli = (...args: string[]) => aaosctl([...S, ...args]);

async function spawnId(name: string): Promise<string> {
  const r = await cli("spawn", name, "--json");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).agent_id;
}

async function stop(id: string) {
  await cli("stop", id);
}

describe("send and result", () => {
  test("send prints the message id at once; result tells how it went", async () => {
    const id = await spawnId("notes");
    llm.script([{ match: { system: "NOTES-AGENT" }, text: "Noted: backup ran." }]);
    const r = await cli("send", id, "the", "backup", "ran");
    expect(r.code).toBe(0);
    const messageId = r.stdout.trim();
    expect(messageId).toMatch(/^msg-\S+$/);
    // poll as an operator would
    let res = await cli("result", id, messageId, "--json");
    while (["queued", "running"].includes(JSON.parse(res.stdout).state)) {
      await Bun.sleep(50);
      res = await cli("result", id, messageId, "--json");
    }
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      agent_id: id,
      message_id: messageId,
      state: "done",
      response: "Noted: backup ran.",
      stop_reason: "end_turn",
    });
    const human = await cli("result", id, messageId);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^message:\\s+${messageId}$`, "m"));
    expect(human.stdout).toMatch(/^state:\s+done$/m);
    expect(human.stdout).toMatch(/^response:\s+Noted: backup ran\.$/m);
    await stop(id);
  });

  test("send --wait (by name) streams the run and prints the outcome; --json prints agent.done", async () => {
    const id = await spawnId("notes");
    llm.script([
      { match: { system: "NOTES-AGENT" }, content: [{ type: "tool_use", name: "echo", input: { message: "hi" } }] },
      { match: { system: "NOTES-AGENT", contains: "tool_result" }, text: "Echoed." },
    ]);
    const r = await cli("send", "notes", "say hi", "--wait");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('  ▸ echo {"message":"hi"}\n  ✓ echo {"message":"hi"}\nEchoed.\n');
    const messageId = /message (msg-\S+) queued for (\S+)/.exec(r.stderr);
    expect(messageId?.[2]).toBe(id);
    expect(r.stderr).toMatch(new RegExp(`── ${messageId![1]} · done · end_turn · `));

    llm.script([{ match: { system: "NOTES-AGENT" }, text: "Quiet." }]);
    const j = await cli("send", id, "again", "-w", "--json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ agent_id: id, state: "done", response: "Quiet." });
    await stop(id);
  });

  test("a global --wait SECONDS before the verb still bounds the connection", async () => {
    const id = await spawnId("notes");
    llm.script([{ match: { system: "NOTES-AGENT" }, text: "ok" }]);
    const r = await aaosctl(["--wait", "5", ...S, "send", id, "hello", "--wait"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ok\n");
    await stop(id);
  });

  test("a failed message: send --wait and result exit 1 with the error", async () => {
    const id = await spawnId("notes");
    llm.script([{ match: { system: "NOTES-AGENT" }, error: { status: 400, message: "bad request from fixture" } }]);
    const r = await cli("send", id, "fail please", "--wait");
    expect(r.code).toBe(1);
    const messageId = /message (msg-\S+) queued/.exec(r.stderr)![1]!;
    expect(r.stderr).toMatch(/error: .*\(-32006\)/);
    expect(r.stderr).toContain(`── ${messageId} · failed`);
    const res = await cli("result", id, messageId);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^state:\s+failed$/m);
    expect(res.stdout).toMatch(/^error:\s+.*\(-32006\)$/m);
    // restart: never, so the agent is failed now, and `restart` brings it back
    const st = await cli("status", id);
    expect(st.stdout).toMatch(/^state:\s+failed$/m);
    expect(st.stdout).toMatch(/^failure:\s+\S/m);
    const ps = await cli("ps");
    expect(ps.stdout).toMatch(new RegExp(`^${id}\\s+notes\\s+failed\\s`, "m"));
    const re = await cli("restart", id);
    expect(re.code).toBe(0);
    expect(re.stdout.trim()).toBe(`${id} ready`);
    await stop(id);
  });

  test("result of an unknown message id is the kernel's -32602; bad input is a usage error", async () => {
    const id = await spawnId("notes");
    const r = await cli("result", id, "msg-nope");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32602)");
    const m = await cli("result", id);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain("usage: aaosctl result AGENT MESSAGE_ID");
    const s = await cli("send", id);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain("usage: aaosctl send AGENT MESSAGE...");
    const none = await cli("send", "ag-ffffffffffffffff", "hello");
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("(-32002)");
    await stop(id);
  });
});

describe("status", () => {
  test("shows lifecycle, restart policy, inbox and the methods served", async () => {
    const id = await spawnId("weather");
    const st = await cli("status", id);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/^state:\s+ready$/m);
    expect(st.stdout).toMatch(/^lifecycle:\s+session$/m);
    expect(st.stdout).toMatch(/^restart:\s+never$/m);
    expect(st.stdout).toMatch(/^inbox:\s+0 queued$/m);
    expect(st.stdout).toMatch(/^serves:\s+forecast$/m);
    const j = JSON.parse((await cli("status", id, "--json")).stdout);
    expect(j).toMatchObject({ inbox: { depth: 0, current: null }, failure: null, restarts: 0, serves: ["forecast"] });
    await stop(id);
  });
});

describe("restart", () => {
  test("an agent that is not failed is refused with -32008 (exit 1)", async () => {
    const id = await spawnId("notes");
    const r = await cli("restart", id);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32008)");
    expect(r.stderr).toContain("agent not runnable");
    const j = await cli("restart", id, "--json");
    expect(JSON.parse(j.stdout).error.code).toBe(-32008);
    await stop(id);
  });
});

describe("call-agent", () => {
  test("prints the result JSON the served method answered (--param and JSON_PARAMS)", async () => {
    const id = await spawnId("weather");
    llm.script([
      {
        match: { system: "WEATHER-AGENT", tool_choice: "any" },
        content: [{ type: "tool_use", name: "reply", input: { summary: "Oslo: snow for 3 days" } }],
      },
    ]);
    const r = await cli("call-agent", id, "forecast", "--param", "city=Oslo", "-p", "days=3", "--timeout", "20s");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ summary: "Oslo: snow for 3 days" });
    // the params reached the model as typed values
    const asked = llm.requests.filter((q) => JSON.stringify(q.body.system ?? "").includes("WEATHER-AGENT"));
    expect(JSON.stringify(asked[0]!.body.messages)).toContain("Oslo");

    llm.script([
      {
        match: { system: "WEATHER-AGENT", tool_choice: "any" },
        content: [{ type: "tool_use", name: "reply", input: { summary: "Bergen: rain" } }],
      },
    ]);
    const j = await cli("call-agent", "weather", "forecast", '{"city":"Bergen"}', "--json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ result: { summary: "Bergen: rain" } });
    await stop(id);
  });

  test("invalid params: the kernel's -32602 names the field; nothing reaches the model", async () => {
    const id = await spawnId("weather");
    const r = await cli("call-agent", id, "forecast", "--param", "days=3");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32602)");
    expect(r.stderr).toContain("city");
    const t = await cli("call-agent", id, "forecast", '{"city":"Oslo","days":"three"}');
    expect(t.code).toBe(1);
    expect(t.stderr).toContain("(-32602)");
    expect(t.stderr).toContain("days");
    expect(llm.requests.length).toBe(0);
    await stop(id);
  });

  test("a method the agent does not serve is -32601", async () => {
    const id = await spawnId("weather");
    const r = await cli("call-agent", id, "tides", "{}");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32601)");
    await stop(id);
  });

  test("a reply that never comes within --timeout is -32009", async () => {
    const id = await spawnId("weather");
    llm.script([{ match: { system: "WEATHER-AGENT" }, hang: true }]);
    const r = await cli("call-agent", id, "forecast", "-p", "city=Oslo", "--timeout", "300ms");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32009)");
    await stop(id);
  });

  test("bad command lines are usage errors (exit 2), before any kernel is asked", async () => {
    const bad = async (args: string[], says: string) => {
      const r = await aaosctl(["--socket", "/nonexistent.sock", ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(says);
    };
    await bad(["call-agent", "a", "m", "{x"], "JSON_PARAMS is not valid JSON");
    await bad(["call-agent", "a", "m", "[1]"], "JSON_PARAMS must be a JSON object");
    await bad(["call-agent", "a", "m", "{}", "--param", "x=1"], "not both");
    await bad(["call-agent", "a", "m", "--param", "novalue"], "--param wants KEY=VALUE");
    await bad(["call-agent", "a", "m", "--timeout", "soon"], "--timeout wants a duration");
    await bad(["call-agent", "a"], "usage: aaosctl call-agent AGENT METHOD [JSON_PARAMS]");
  });

  test("--help for each new verb, without a kernel", async () => {
    for (const [verb, usage] of [
      ["send", "usage: aaosctl send AGENT MESSAGE... [options]"],
      ["result", "usage: aaosctl result AGENT MESSAGE_ID"],
      ["call-agent", "usage: aaosctl call-agent AGENT METHOD [JSON_PARAMS] [options]"],
      ["restart", "usage: aaosctl restart AGENT"],
    ]) {
      const h = await aaosctl([verb!, "--help"]);
      expect(h.code).toBe(0);
      expect(h.stdout).toContain(usage!);
    }
    const g = await aaosctl(["--help"]);
    for (const verb of ["send", "result", "call-agent", "restart"])
      expect(g.stdout).toMatch(new RegExp(`^  ${verb} `, "m"));
  });
});
