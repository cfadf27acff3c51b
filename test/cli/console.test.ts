// aaosctl console as a person uses it: a real pseudo-terminal, keys typed,
// the screen read back. Against a real host-mode kernel.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { MAIN } from "./run-cli.ts";
import { Keys, Terminal } from "./terminal.ts";

setDefaultTimeout(30_000);

const KEY = "sk-ant-api03-CONSOLETEST-000000000000";
const MODEL = "claude-haiku-4-5-20251001";

let k: RunningKernel;
let llm: MessagesServer;
let home: string;
let term: Terminal;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "aaosctl-console-"));
  llm = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({
    kernelYaml: "approval:\n  timeout: 60s\n",
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    manifests: {
      echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n`,
      careful: `name: careful\nmodel: ${MODEL}\ncapabilities: [echo]\napproval_required: [echo]\n`,
    },
  });
  term = new Terminal([process.execPath, MAIN, "--socket", k.socket, "console"], {
    env: { AAOSCTL_HISTORY: join(home, "history") },
  });
  await term.waitFor("aaos>");
});
afterAll(async () => {
  term?.kill();
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
  rmSync(home, { recursive: true, force: true });
});

/** wait until the screen shows `needle` at least n times */
const shown = (needle: string, n: number) => term.waitFor((t) => t.split(needle).length - 1 >= n);
/** wait for a fresh prompt with nothing typed after it */
const prompt = () => term.waitFor(() => term.screen.cursorLine() === "aaos>");

describe("aaosctl console", () => {
  test("greets with the kernel's version, mode and boot id", async () => {
    const text = await term.waitFor("Tab completes");
    expect(text).toContain(`host mode, boot ${k.ready.boot_id}`);
    // which model provider this kernel reaches, and where its key came from
    expect(text).toContain(`model: Anthropic at ${llm.url} (key: $ANTHROPIC_API_KEY)`);
    expect(text).not.toContain("no model provider");
    expect(term.screen.cursorLine()).toBe("aaos>");
  });

  test("a verb runs and its table is on the screen", async () => {
    term.line("spawn echoer");
    await term.waitFor(/spawned echoer ag-[0-9a-f]+/);
    term.line("ps");
    const text = await term.waitFor(/AGENT ID\s+NAME\s+STATE\s+PARENT\s+MODEL\n(ag-\S+)\s+echoer\s+ready/);
    expect(text).toContain(MODEL);
    await prompt();
  });

  test("Tab completes verbs, method names and agent ids", async () => {
    term.type("statu" + Keys.tab);
    await term.waitFor(() => term.screen.cursorLine() === "aaos> status");
    const { agents } = await k.client.call("agent.list");
    const id = agents[0].agent_id as string;
    term.type(" ag" + Keys.tab);
    await term.waitFor(() => term.screen.cursorLine() === `aaos> status ${id}`);
    term.type(Keys.enter);
    await term.waitFor(new RegExp(`agent:\\s+${id}\\ncapabilities|agent:\\s+${id}`));
    await prompt();
    term.type("call system.pi" + Keys.tab);
    await term.waitFor(() => term.screen.cursorLine() === "aaos> call system.ping");
    term.type(Keys.enter);
    await term.waitFor('"pong": true');
    await prompt();
  });

  test("two Tabs list the choices", async () => {
    term.type("call agent.s" + Keys.tab);
    await Bun.sleep(200);
    term.type(Keys.tab);
    await term.waitFor(
      /agent\.spawn\s+agent\.spawn_and_run\s+agent\.status|agent\.spawn\s+agent\.spawn_and_run\n?\s*agent\.status/,
    );
    term.type(Keys.ctrlC);
    await prompt();
  });

  test("an approval request shows the moment it arrives, without losing what is being typed", async () => {
    const { agent_id } = await k.client.call("agent.spawn", { name: "careful" });
    term.type("pin");
    await term.waitFor(() => term.screen.cursorLine() === "aaos> pin");
    const invoked = k.client.call("tool.invoke", { agent_id, tool: "echo", input: { message: "may I?" } });
    const text = await term.waitFor(`agent ${agent_id} wants echo`);
    const apId = /approval requested (\S+):/.exec(text)![1]!;
    expect(text).toContain('input {"message":"may I?"}');
    // the prompt and the half-typed word are drawn again below the banner
    await term.waitFor(() => term.screen.cursorLine() === "aaos> pin" && term.screen.text().endsWith("aaos> pin"));
    term.type("g" + Keys.enter);
    await term.waitFor(/pong in [\d.]+ ms/);
    await prompt();
    term.type("approve " + Keys.tab);
    await term.waitFor(() => term.screen.cursorLine() === `aaos> approve ${apId}`);
    term.type(Keys.enter);
    await term.waitFor(`approved ${apId}`);
    expect(await invoked).toEqual({ output: { message: "may I?" } });
    await prompt();
  });

  test("run streams the agent's words and tool calls", async () => {
    const { agent_id } = await k.client.call("agent.spawn", { name: "echoer" });
    llm.script([
      {
        content: [
          { type: "text", text: "Let me check." },
          { type: "tool_use", name: "echo", input: { message: "hi" } },
        ],
      },
      { text: "Checked.", match: { contains: "tool_result" } },
    ]);
    term.line(`run ${agent_id} check please`);
    const text = await term.waitFor("── end_turn");
    expect(text).toContain('Let me check.\n  ▸ echo {"message":"hi"}\n  ✓ echo {"message":"hi"}\nChecked.\n');
    await prompt();
  });

  test("Ctrl-C stops waiting for a verb and gives the prompt back", async () => {
    const { agent_id } = await k.client.call("agent.spawn", { name: "careful" });
    term.line(`invoke ${agent_id} echo '{"message":"wait"}'`);
    const text = await term.waitFor(`agent ${agent_id} wants echo`);
    const apId = [...text.matchAll(/approval requested (\S+):/g)].at(-1)![1]!;
    term.type(Keys.ctrlC);
    await term.waitFor("interrupted");
    await prompt();
    term.line(`deny ${apId} --reason "not now"`);
    await term.waitFor(`denied ${apId} (not now)`);
    await prompt();
  });

  test("a run waiting for an approval: approvals and approve typed in place, the run's output goes on", async () => {
    const { agent_id } = await k.client.call("agent.spawn", { name: "careful" });
    llm.script([
      {
        content: [
          { type: "text", text: "I will echo." },
          { type: "tool_use", name: "echo", input: { message: "live" } },
        ],
      },
      { text: "Echoed after the approval.", match: { contains: "tool_result" } },
    ]);
    const before = term.count("approval requested ");
    const ends = term.count("── end_turn");
    term.line(`run ${agent_id} echo live`);
    await shown("approval requested ", before + 1);
    const text = await term.waitFor("waits for approval");
    const apId = [...text.matchAll(/approval requested (\S+):/g)].at(-1)![1]!;
    // typing while the run waits: a prompt that names the verb, and the line stays as typed
    term.type("approvals");
    await term.waitFor(() => term.screen.cursorLine() === "aaos (run)> approvals");
    term.type(Keys.enter);
    await term.waitFor(new RegExp(`ID\\s+AGENT\\s+TOOL[^\\n]*\\n${apId}\\s+${agent_id}\\s+echo`));
    // a verb that would wait too is refused while the run holds the console
    term.line("spawn echoer");
    await term.waitFor("run is still running: meanwhile approve, deny, approvals");
    term.line(`approve ${apId}`);
    await term.waitFor(`approved ${apId}`);
    const after = await shown("── end_turn", ends + 1);
    // the rest of the run came after the approval, on the same screen
    expect(after.slice(after.lastIndexOf(`approved ${apId}`))).toContain(
      '✓ echo {"message":"live"}\nEchoed after the approval.',
    );
    await prompt();
  });

  test("an invoke waiting for an approval is denied in place, with a reason", async () => {
    const { agent_id } = await k.client.call("agent.spawn", { name: "careful" });
    const before = term.count("approval requested ");
    term.line(`invoke ${agent_id} echo '{"message":"no"}'`);
    const text = await shown("approval requested ", before + 1);
    const apId = [...text.matchAll(/approval requested (\S+):/g)].at(-1)![1]!;
    term.line(`deny ${apId} --reason "not today"`);
    await term.waitFor(`denied ${apId} (not today)`);
    // the invoke itself ends with the person's refusal, and the prompt is back
    await term.waitFor(/approval denied[^\n]*not today[^\n]*\(-32003\)/);
    await prompt();
  });

  test("mistakes are reported and the console carries on", async () => {
    term.line("stauts");
    await term.waitFor('unknown verb "stauts"; did you mean status?');
    await prompt();
    term.line("status ag-0000000000000000");
    await term.waitFor("(-32002)");
    await prompt();
  });

  test("↑ recalls the last line; the history is kept on disk", async () => {
    term.type(Keys.up);
    await term.waitFor(() => term.screen.cursorLine() === "aaos> status ag-0000000000000000");
    term.type(Keys.ctrlU);
    await prompt();
    const hist = readFileSync(join(home, "history"), "utf8").split("\n");
    expect(hist).toContain("ps");
    expect(hist).toContain("stauts");
  });

  test("shutdown: the kernel goes away and the console leaves cleanly", async () => {
    term.line("shutdown");
    await term.waitFor("powering off");
    await term.waitFor("the kernel closed the connection");
    expect(await term.exited).toBe(0);
  });
});

describe("aaosctl console, the line lost", () => {
  test("when the kernel dies under it, the console says so and exits 3", async () => {
    const k2 = await startKernel({});
    const t = new Terminal([process.execPath, MAIN, "--socket", k2.socket, "console"], {
      env: { AAOSCTL_HISTORY: join(home, "history2") },
    });
    try {
      await t.waitFor("aaos>");
      k2.proc.kill("SIGKILL");
      await t.waitFor("connection closed");
      const code = await t.exited;
      expect(t.screen.text()).not.toContain("error");
      expect(code).toBe(3);
    } finally {
      t.kill();
      await k2.stop();
      cleanup(k2);
    }
  });

  test("lines piped in (no terminal) run in order, and the end of the input leaves", async () => {
    const k4 = await startKernel({});
    try {
      const p = Bun.spawn([process.execPath, MAIN, "--socket", k4.socket, "console"], {
        stdin: new Blob(["ping\nexit\n"]),
        stdout: "pipe",
        env: { ...process.env, AAOSCTL_HISTORY: join(home, "history4") },
      });
      const code = await Promise.race([p.exited, Bun.sleep(20_000).then(() => "hung")]);
      if (code === "hung") p.kill();
      expect(code).toBe(0);
      expect(await new Response(p.stdout).text()).toMatch(/Tab completes[\s\S]*\npong in /);
    } finally {
      await k4.stop();
      cleanup(k4);
    }
  });

  test("commands piped in from a shell, no exit: answered, and the end of the input leaves", async () => {
    const k5 = await startKernel({});
    try {
      const p = Bun.spawn(
        ["sh", "-c", `printf 'ping\\ninfo\\n' | "$0" "$1" --socket "$2" console`, process.execPath, MAIN, k5.socket],
        {
          stdout: "pipe",
          stderr: "pipe",
          env: { ...process.env, AAOSCTL_HISTORY: join(home, "history5") },
        },
      );
      const code = await Promise.race([p.exited, Bun.sleep(20_000).then(() => "hung")]);
      if (code === "hung") p.kill();
      expect(code).toBe(0);
      const out = await new Response(p.stdout).text();
      expect(out).toMatch(/\npong in [\d.]+ ms/);
      expect(out).toContain(`boot_id:           ${(await k5.client.call("system.info")).boot_id}`);
      expect(out).not.toContain("aaos>");
    } finally {
      await k5.stop();
      cleanup(k5);
    }
  });

  test("Ctrl-D leaves with status 0", async () => {
    const k3 = await startKernel({});
    const t = new Terminal([process.execPath, MAIN, "--socket", k3.socket, "console"], {
      env: { AAOSCTL_HISTORY: join(home, "history3") },
    });
    try {
      await t.waitFor("aaos>");
      // no key anywhere: the greeting says so, and how to set one
      expect(t.screen.text().replaceAll("\n", "")).toContain(
        "no model provider configured: name a key file in kernel.yaml: inference.providers.anthropic.api_key_file (docs/inference.md)",
      );
      t.type(Keys.ctrlD);
      expect(await t.exited).toBe(0);
    } finally {
      t.kill();
      await k3.stop();
      cleanup(k3);
    }
  });
});
