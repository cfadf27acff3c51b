// aaosctl against a real host-mode kernel (test/host/harness.ts), each verb
// run as its own process, as an operator would; the model behind `run` is the
// local Messages API fixture reached through the real SDK.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl, CliProcess } from "./run-cli.ts";

setDefaultTimeout(20_000);

const KEY = "sk-ant-api03-CLITEST-0000000000000000";
const MODEL = "claude-haiku-4-5-20251001";

let k: RunningKernel;
let llm: MessagesServer;
let S: string[];

beforeAll(async () => {
  llm = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({
    kernelYaml: "approval:\n  timeout: 60s\ninference:\n  request_timeout_ms: 5000\n",
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    manifests: {
      echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities:\n  - echo\n`,
      careful: `name: careful\nmodel: ${MODEL}\ncapabilities:\n  - echo\napproval_required:\n  - echo\n`,
    },
  });
  S = ["--socket", k.socket];
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
});

const cli = (...args: string[]) => aaosctl([...S, ...args]);

async function spawnId(name: string): Promise<string> {
  const r = await cli("spawn", name, "--json");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).agent_id;
}

describe("reading the machine", () => {
  test("info shows version, boot id and mode; --json is the result", async () => {
    const r = await cli("info");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^version:\s+\S+/m);
    expect(r.stdout).toContain(k.ready.boot_id);
    expect(r.stdout).toMatch(/^mode:\s+host$/m);
    const j = JSON.parse((await cli("info", "--json")).stdout);
    expect(j).toMatchObject({ boot_id: k.ready.boot_id, mode: "host" });
  });

  test("stats: memory, the data disk, load, network and clock; --json is system.stats", async () => {
    const j = JSON.parse((await cli("stats", "--json")).stdout);
    const direct = await k.client.call<any>("system.stats", {});
    expect(Object.keys(j).sort()).toEqual(Object.keys(direct).sort());
    expect(j.disk.path).toBe(k.dataDir);
    const r = await cli("stats");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^memory:\s+kernel RSS [\d.]+ [KMG]i?B/m);
    expect(r.stdout).toMatch(/^data disk:\s+[\d.]+ \S+ used, [\d.]+ \S+ free of [\d.]+ \S+ \(/m);
    expect(r.stdout).toContain(k.dataDir);
    expect(r.stdout).toMatch(/^load:\s+[\d.]+ [\d.]+ [\d.]+$/m);
    // host mode: the host's clock, which the kernel does not synchronise
    expect(r.stdout).toMatch(/^clock:\s+\d{4}-\d\d-\d\dT\S+Z not synced \(rtc\)$/m);
  });

  test("ping", async () => {
    const r = await cli("ping");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pong in [\d.]+ ms/);
  });

  test("tools: all of them, or those an agent may call", async () => {
    const all = await cli("tools");
    expect(all.stdout.split("\n")[0]).toMatch(/^TOOL\s+DESCRIPTION$/);
    expect(all.stdout).toMatch(/^echo\s+/m);
    expect(all.stdout).toMatch(/^file_write\s+/m);
    const id = await spawnId("echoer");
    const mine = JSON.parse((await cli("tools", id, "--json")).stdout);
    expect(mine.tools.map((t: { name: string }) => t.name)).toEqual(["echo"]);
  });
});

describe("agents", () => {
  test("spawn by name, see it in ps, describe it by id prefix, stop it", async () => {
    const r = await cli("spawn", "echoer");
    expect(r.code).toBe(0);
    const id = /spawned echoer (ag-[0-9a-f]+)/.exec(r.stdout)![1]!;
    const ps = await cli("ps");
    expect(ps.stdout.split("\n")[0]).toMatch(/^AGENT ID\s+NAME\s+STATE\s+PARENT\s+MODEL$/);
    expect(ps.stdout).toMatch(new RegExp(`^${id}\\s+echoer\\s+ready\\s+-\\s+${MODEL}$`, "m"));
    const st = await cli("status", id.slice(0, 12));
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`^agent:\\s+${id}$`, "m"));
    expect(st.stdout).toMatch(/^capabilities:\s+tool: echo$/m);
    const stop = await cli("stop", id);
    expect(stop.code).toBe(0);
    expect(stop.stdout.trim()).toBe(`${id} stopped`);
  });

  test("spawn from a manifest file and from stdin", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aaosctl-"));
    const file = join(dir, "inline.yaml");
    writeFileSync(file, `name: from-file\nmodel: ${MODEL}\ncapabilities: [echo]\n`);
    const a = await cli("spawn", file);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("spawned from-file ag-");
    const b = await aaosctl([...S, "spawn", "-"], { stdin: `name: from-stdin\nmodel: ${MODEL}\n` });
    expect(b.stdout).toContain("spawned from-stdin ag-");
  });

  test("an invalid manifest fails with its line and column (exit 1)", async () => {
    const r = await aaosctl([...S, "spawn", "-"], { stdin: `name: a\nmodel: ${MODEL}\naproval_required: [echo]\n` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32005)");
    expect(r.stderr).toMatch(/at aproval_required:3:1/);
  });

  test("an ambiguous prefix is a usage error; an unknown agent is the kernel's no such agent", async () => {
    await spawnId("echoer");
    await spawnId("echoer");
    const amb = await cli("status", "ag-");
    expect(amb.code).toBe(2);
    expect(amb.stderr).toContain("ambiguous");
    const none = await cli("status", "ag-ffffffffffffffff");
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("(-32002)");
  });
});

describe("tools", () => {
  test("invoke prints the tool's output", async () => {
    const id = await spawnId("echoer");
    const r = await cli("invoke", id, "echo", '{"message":"hello"}');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ message: "hello" });
  });

  test("a capability denial exits 4 and says which", async () => {
    const id = await spawnId("echoer");
    const r = await cli("invoke", id, "file_read", '{"path":"/etc/passwd"}');
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("(-32001)");
    expect(r.stderr).toContain("file_read");
  });

  test("bad JSON input is a usage error", async () => {
    const r = await cli("invoke", "ag-x", "echo", "{text:");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not valid JSON");
  });
});

describe("approvals", () => {
  test("an invoke waits; approvals lists it; approve by prefix lets it finish", async () => {
    const id = await spawnId("careful");
    const waiting = new CliProcess([...S, "invoke", id, "echo", '{"message":"may I"}']);
    await waiting.waitFor(/waiting for approval (\S+)/);
    const apId = /waiting for approval (\S+)/.exec(waiting.stderr)![1]!;
    const list = await cli("approvals");
    expect(list.stdout.split("\n")[0]).toMatch(/^ID\s+AGENT\s+TOOL\s+REQUESTED\s+INPUT$/);
    expect(list.stdout).toMatch(new RegExp(`^${apId}\\s+${id}\\s+echo\\s+`, "m"));
    const ok = await cli("approve", apId.slice(0, apId.length - 2));
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe(`approved ${apId}`);
    expect(await waiting.exited).toBe(0);
    expect(JSON.parse(waiting.stdout)).toEqual({ message: "may I" });
  });

  test("deny with a reason: the invoke fails with approval denied, exit 4", async () => {
    const id = await spawnId("careful");
    const waiting = new CliProcess([...S, "invoke", id, "echo", '{"message":"no"}']);
    await waiting.waitFor(/waiting for approval (\S+)/);
    const apId = /waiting for approval (\S+)/.exec(waiting.stderr)![1]!;
    const d = await cli("deny", apId, "--reason", "not now");
    expect(d.code).toBe(0);
    expect(d.stdout).toContain(`denied ${apId}`);
    expect(await waiting.exited).toBe(4);
    expect(waiting.stderr).toContain("(-32003)");
  });

  test("approvals --follow shows a request the moment it is made", async () => {
    const follow = new CliProcess([...S, "approvals", "--follow"]);
    await follow.waitFor("waiting for approval requests");
    const id = await spawnId("careful");
    const waiting = new CliProcess([...S, "invoke", id, "echo", '{"message":"watch me"}']);
    await follow.waitFor(`agent ${id} wants echo`);
    expect(follow.stdout).toContain('input {"message":"watch me"}');
    follow.signal("SIGINT");
    expect(await follow.exited).toBe(0);
    const apId = /approval requested (\S+):/.exec(follow.stdout)![1]!;
    await cli("deny", apId);
    expect(await waiting.exited).toBe(4);
  });
});

describe("run", () => {
  test("streams the model's words and its tool calls, then a summary", async () => {
    const id = await spawnId("echoer");
    llm.script([
      {
        content: [
          { type: "text", text: "Checking." },
          { type: "tool_use", name: "echo", input: { message: "ping" } },
        ],
        usage: { input_tokens: 30, output_tokens: 6 },
      },
      { text: "All good.", usage: { input_tokens: 40, output_tokens: 3 }, match: { contains: "tool_result" } },
    ]);
    const r = await cli("run", id.slice(0, 10), "please", "check");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Checking.\n  ▸ echo {"message":"ping"}\n  ✓ echo {"message":"ping"}\nAll good.\n');
    expect(r.stderr).toMatch(/── end_turn · 70 in \/ 9 out tokens · 1 tool call · /);
  });

  test("--json prints the run's result", async () => {
    const id = await spawnId("echoer");
    llm.script([{ text: "Fine." }]);
    const r = await cli("run", id, "hi", "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ agent_id: id, response: "Fine.", stop_reason: "end_turn" });
  });

  test("spawn --run spawns and runs in one call", async () => {
    llm.script([{ text: "Born and running." }]);
    const r = await cli("spawn", "echoer", "--run", "hello");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Born and running.\n");
  });
});

describe("audit", () => {
  test("lists events, filters by agent and kind, verifies the chain", async () => {
    const id = await spawnId("echoer");
    const all = await cli("audit", "--agent", id);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`^\\s+\\d+  \\d{4}-\\d\\d-\\d\\dT\\S+Z  agent\\.spawn\\s+${id}`, "m"));
    const spawns = JSON.parse((await cli("audit", "--kind", "agent.spawn", "--json")).stdout);
    expect(spawns.events.length).toBeGreaterThan(0);
    expect(spawns.events.every((e: { kind: string }) => e.kind === "agent.spawn")).toBe(true);
    const v = await cli("audit", "verify");
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^audit chain intact: \d+ events, head [0-9a-f]{64}\n$/); // empty findings are not printed
  });

  test("--follow prints new events as they are logged", async () => {
    const follow = new CliProcess([...S, "audit", "--follow", "--kind", "agent.spawn", "--interval", "100"]);
    await Bun.sleep(300);
    const id = await spawnId("echoer");
    await follow.waitFor(id);
    follow.signal("SIGINT");
    expect(await follow.exited).toBe(0);
  });
});

describe("call, usage and failures", () => {
  test("call METHOD JSON prints the JSON result", async () => {
    const r = await cli("call", "system.ping");
    expect(JSON.parse(r.stdout)).toMatchObject({ pong: true });
    const list = await cli("call", "agent.list", "{}");
    expect(JSON.parse(list.stdout).agents.length).toBeGreaterThan(0);
  });

  test("call of an unknown method exits 1 with the kernel's error; --json puts it on stdout", async () => {
    const r = await cli("call", "no.such");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32601)");
    const j = await cli("call", "no.such", "--json");
    expect(JSON.parse(j.stdout).error.code).toBe(-32601);
  });

  test("no kernel at the socket: exit 3 with what to do", async () => {
    const r = await aaosctl(["--socket", join(k.dir, "nothing.sock"), "ps"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("cannot connect to");
    expect(r.stderr).toContain("is the kernel running?");
  });

  test("usage: unknown verb (with a suggestion), missing argument, no target", async () => {
    const u = await cli("stauts");
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("did you mean status?");
    const m = await cli("run");
    expect(m.code).toBe(2);
    expect(m.stderr).toContain("usage: aaosctl run AGENT MESSAGE...");
    const t = await aaosctl(["ps"]);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain("--socket PATH");
  });

  test("--help for the program and for each verb, without a kernel", async () => {
    const g = await aaosctl(["--help"]);
    expect(g.code).toBe(0);
    expect(g.stdout).toContain("exit codes:");
    const v = await aaosctl(["audit", "--help"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("usage: aaosctl audit [verify|export] [options]");
  });
});

// last: the kernel goes away
describe("shutdown", () => {
  test("shutdown asks the kernel to stop; it does", async () => {
    const r = await cli("shutdown");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("powering off");
    expect(await k.proc.exited).toBe(0);
  });
});
