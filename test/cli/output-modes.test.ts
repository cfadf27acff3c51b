// -o json|yaml|wide, --json errors with the kernel's code, and stop of a
// stopped agent, against a real host-mode kernel, each verb its own process.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import YAML from "yaml";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";

let k: RunningKernel;
let S: string[];

beforeAll(async () => {
  k = await startKernel({
    env: { ANTHROPIC_API_KEY: "sk-ant-api03-CLITEST-output-0000000000" },
    manifests: { echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities:\n  - echo\n` },
  });
  S = ["--socket", k.socket];
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

const cli = (...args: string[]) => aaosctl([...S, ...args]);

async function spawnId(name = "echoer"): Promise<string> {
  const r = await cli("spawn", name, "--json");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).agent_id;
}

describe("-o json|yaml", () => {
  test("-o yaml parses back to what --json prints (ps, status, info, version)", async () => {
    const id = await spawnId();
    for (const args of [["ps"], ["status", id], ["tools", id], ["version"]]) {
      const j = await cli(...args, "--json");
      const y = await cli(...args, "-o", "yaml");
      expect(j.code).toBe(0);
      expect(y.code).toBe(0);
      expect(y.stdout.trimStart().startsWith("{")).toBe(false);
      expect(YAML.parse(y.stdout)).toEqual(JSON.parse(j.stdout));
    }
  });

  test("-o json is --json, before or after the verb, and `call` prints YAML with -o yaml", async () => {
    const a = await cli("ps", "--json");
    const b = await aaosctl(["-o", "json", ...S, "ps"]);
    const c = await cli("ps", "--output=json");
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout)).toEqual(JSON.parse(a.stdout));
    expect(JSON.parse(c.stdout)).toEqual(JSON.parse(a.stdout));
    const y = await cli("call", "system.ping", "-o", "yaml");
    expect(y.code).toBe(0);
    expect(YAML.parse(y.stdout)).toMatchObject({ pong: true });
    expect(y.stdout).not.toContain("{");
  });

  test("an unknown format, or --json against -o yaml, is a usage error", async () => {
    const r = await cli("ps", "-o", "xml");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("-o is one of json, yaml, wide, text");
    const both = await cli("ps", "--json", "-o", "yaml");
    expect(both.code).toBe(2);
  });
});

describe("-o wide", () => {
  test("ps -o wide adds lifecycle, restarts, inbox and tokens; ps alone does not", async () => {
    const id = await spawnId();
    const narrow = await cli("ps");
    expect(narrow.code).toBe(0);
    expect(narrow.stdout.split("\n")[0]).toMatch(/^AGENT ID\s+NAME\s+STATE\s+PARENT\s+MODEL$/);
    const w = await cli("ps", "-o", "wide");
    expect(w.code).toBe(0);
    const [header, ...rows] = w.stdout.trimEnd().split("\n");
    expect(header).toMatch(
      /^AGENT ID\s+NAME\s+STATE\s+PARENT\s+LIFECYCLE\s+RESTARTS\s+INBOX\s+TOKENS IN\/OUT\s+MODEL$/,
    );
    const row = rows.find((r) => r.startsWith(id))!;
    expect(row).toMatch(new RegExp(`^${id}\\s+echoer\\s+ready\\s+-\\s+\\w+\\s+0\\s+0\\s+0/0\\s+${MODEL}$`));
  });

  test("tools -o wide adds what each tool's run does", async () => {
    const id = await spawnId();
    const w = await cli("tools", id, "-o", "wide");
    expect(w.code).toBe(0);
    expect(w.stdout.split("\n")[0]).toMatch(/^TOOL\s+EFFECT\s+DESCRIPTION$/);
    expect(w.stdout).toMatch(/\necho\s+none\s+/);
    expect((await cli("tools", id)).stdout.split("\n")[0]).toMatch(/^TOOL\s+DESCRIPTION$/);
  });

  test("a verb without extra columns prints its usual text with -o wide", async () => {
    const id = await spawnId();
    const a = await cli("status", id);
    const w = await cli("status", id, "-o", "wide");
    expect(w.code).toBe(0);
    expect(w.stdout).toBe(a.stdout);
  });
});

describe("errors for programs", () => {
  test("a refused call with --json prints {error: {code: -32001, message, data}} and exits 4", async () => {
    const id = await spawnId();
    const params = JSON.stringify({ agent_id: id, tool: "file_read", input: { path: "/etc/passwd" } });
    const r = await cli("call", "tool.invoke", params, "--json");
    expect(r.code).toBe(4);
    expect(r.stderr).toBe("");
    const e = JSON.parse(r.stdout);
    expect(Object.keys(e)).toEqual(["error"]);
    expect(e.error).toMatchObject({ code: -32001, message: expect.stringContaining("file_read"), exit: 4 });
    expect("data" in e.error).toBe(true);
    // the same through a verb, and as YAML
    const v = await cli("invoke", id, "file_read", '{"path":"/etc/passwd"}', "--json");
    expect(v.code).toBe(4);
    expect(JSON.parse(v.stdout).error.code).toBe(-32001);
    const y = await cli("invoke", id, "file_read", '{"path":"/etc/passwd"}', "-o", "yaml");
    expect(y.code).toBe(4);
    expect(YAML.parse(y.stdout)).toEqual(JSON.parse(v.stdout));
  });

  test("no such agent carries -32002; aaosctl's own failures carry code null and the exit code", async () => {
    const r = await cli("status", "ag-0000000000000000", "--json");
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: -32002, data: expect.anything(), exit: 1 });
    const u = await cli("status", "--json");
    expect(u.code).toBe(2);
    expect(JSON.parse(u.stdout)).toEqual({
      error: { code: null, message: "status: missing AGENT", data: { hint: "usage: aaosctl status AGENT" }, exit: 2 },
    });
    const bad = await cli("--bogus", "-o", "json");
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatchObject({ code: null, exit: 2 });
    const none = await aaosctl(["--socket", "/nonexistent/aaos.sock", "ps", "--json", "--wait", "1"]);
    expect(none.code).toBe(3);
    expect(JSON.parse(none.stdout).error).toMatchObject({ code: null, exit: 3 });
  });
});

describe("stop", () => {
  test("stopping an agent twice: the second exits 0 and says it was already stopped", async () => {
    const id = await spawnId();
    const first = await cli("stop", id);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`${id} stopped\n`);
    expect(first.stderr).not.toContain("already");
    const again = await cli("stop", id);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`${id} stopped\n`);
    expect(again.stderr).toContain(`${id} was already stopped`);
    const j = await cli("stop", id, "--json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ agent_id: id, state: "stopped", already_stopped: true });
  });

  test("by name: once every agent of that name is stopped, stop NAME is still no error", async () => {
    const ps = JSON.parse((await cli("ps", "--json")).stdout) as { agents: { agent_id: string; state: string }[] };
    for (const a of ps.agents) if (a.state !== "stopped") expect((await cli("stop", a.agent_id)).code).toBe(0);
    const id = await spawnId();
    const first = await cli("stop", "echoer", "--json");
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ agent_id: id, state: "stopped", already_stopped: false });
    const again = await cli("stop", "echoer");
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`${id} was already stopped`);
  });
});
