// Messages between agents, through a host-mode kernel on its unix socket,
// every model answered at once by the local Messages API fixture:
// - the agent_call round trip inside a run (the caller's model asks for
//   agent_call, the recipient's model replies at once): from the caller's
//   tool_use to its tool_result, beside a direct tool.invoke echo measured in
//   the same run, and beside one model call (a one-turn agent.run);
// - inbox throughput: N messages through agent.send (queued, answered by
//   agent.done) beside the same N messages as agent.run calls one after the
//   other, on the same kind of agent, in the same run.
import { rmSync } from "node:fs";
import { startMessagesServer, type Step } from "../test/fixtures/messages-server.ts";
import { startKernel } from "../test/host/harness.ts";
import type { Figure } from "./figure.ts";

const KEY = "sk-ant-bench-not-a-real-key";
const MODEL = "claude-haiku-4-5-20251001";
const CALLS = 300;
const ECHOES = 2_000;
const MESSAGES = 1_000;
/** agent.send requests in flight at once (the inbox holds them all) */
const SEND_IN_FLIGHT = 64;

const manifests = {
  kv: `name: kv
model: ${MODEL}
system_prompt: "KV-STORE"
serves:
  get:
    params: {type: object, properties: {key: {type: string}}, required: [key]}
    result: {type: object, properties: {value: {type: string}}, required: [value]}
`,
  caller: `name: caller
model: ${MODEL}
system_prompt: "CALLER"
capabilities:
  - "call: kv.get"
`,
  plain: `name: plain\nmodel: ${MODEL}\nsystem_prompt: "PLAIN"\n`,
  echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n`,
};

function quantiles(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

const us = (ms: number) => Math.round(ms * 1000);
const round = (v: number) => Math.round(v);

export async function benchIpc(): Promise<Figure[]> {
  const srv = await startMessagesServer({ apiKey: KEY, defaultText: "ok" });
  const k = await startKernel({
    manifests,
    kernelYaml: `limits:\n  max_inbox: ${MESSAGES + 16}\n`,
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url },
  });
  const c = k.client;
  try {
    const spawn = async (name: string) => (await c.call("agent.spawn", { name })).agent_id as string;
    await spawn("kv");
    const [echoer, caller, plain, inboxA, inboxB] = [
      await spawn("echoer"),
      await spawn("caller"),
      await spawn("plain"),
      await spawn("plain"),
      await spawn("plain"),
    ];

    // --- tool.invoke echo, one at a time
    const echo = () => c.call("tool.invoke", { agent_id: echoer, tool: "echo", input: { message: "ping" } });
    for (let i = 0; i < 200; i++) await echo();
    const echoMs: number[] = [];
    for (let i = 0; i < ECHOES; i++) {
      const t0 = performance.now();
      await echo();
      echoMs.push(performance.now() - t0);
    }

    // --- one model call: a one-turn run answered with text at once
    const oneTurn: number[] = [];
    for (let i = 0; i < 30 + CALLS; i++) {
      const t0 = performance.now();
      const r = await c.call("agent.run", { agent_id: plain, message: "hi" });
      if (r.response !== "ok") throw new Error(`unexpected one-turn response ${JSON.stringify(r)}`);
      if (i >= 30) oneTurn.push(performance.now() - t0);
    }

    // --- agent_call inside the caller's run: tool_use → tool_result as the caller's stream shows them
    let useAt = 0;
    let resultAt = 0;
    const off = c.onNotification((n: any) => {
      if (n.method !== "agent.output" || n.params.agent_id !== caller || n.params.tool !== "agent_call") return;
      if (n.params.type === "tool_use") useAt = performance.now();
      if (n.params.type === "tool_result") resultAt = performance.now();
    });
    const steps: Step[] = [
      {
        match: { system: "CALLER", contains: "lookup" },
        content: [{ type: "tool_use", name: "agent_call", input: { to: "kv", method: "get", params: { key: "k" } } }],
      },
      {
        match: { system: "KV-STORE", tool_choice: "any" },
        content: [{ type: "tool_use", name: "reply", input: { value: "v" } }],
      },
      { match: { system: "CALLER", contains: "tool_result" }, text: "v" },
    ];
    const callRt: number[] = [];
    const callRun: number[] = [];
    for (let i = 0; i < 30 + CALLS; i++) {
      srv.script(steps);
      useAt = resultAt = 0;
      const t0 = performance.now();
      const r = await c.call("agent.run", { agent_id: caller, message: "lookup k" });
      const t1 = performance.now();
      const ok = r.tool_calls?.[0]?.ok === true && r.response === "v";
      if (!ok) throw new Error(`agent_call run did not complete: ${JSON.stringify(r)}`);
      if (!useAt || !resultAt) throw new Error("no agent.output tool_use/tool_result for agent_call");
      if (i >= 30) {
        callRt.push(resultAt - useAt);
        callRun.push(t1 - t0);
      }
    }
    off();
    if (srv.pending() !== 0) throw new Error(`${srv.pending()} fixture steps were not used`);

    // --- inbox throughput: N sends (64 requests in flight) until the last agent.done
    for (let i = 0; i < 20; i++) await c.call("agent.run", { agent_id: inboxA, message: "warm" });
    let done = 0;
    let failed = 0;
    let allDone: () => void = () => {};
    const finished = new Promise<void>((r) => (allDone = r));
    const offDone = c.onNotification((n: any) => {
      if (n.method !== "agent.done" || n.params.agent_id !== inboxA) return;
      if (n.params.state !== "done") failed++;
      if (++done === MESSAGES) allDone();
    });
    let sent = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SEND_IN_FLIGHT }, async () => {
        while (sent < MESSAGES) {
          sent++;
          await c.call("agent.send", { agent_id: inboxA, message: "hi" });
        }
      }),
    );
    const queuedMs = performance.now() - t0;
    await finished;
    const sendMs = performance.now() - t0;
    offDone();
    if (failed) throw new Error(`${failed} of ${MESSAGES} sent messages did not end done`);

    // --- the same N as agent.run, one after the other, on a twin agent
    for (let i = 0; i < 20; i++) await c.call("agent.run", { agent_id: inboxB, message: "warm" });
    const t2 = performance.now();
    for (let i = 0; i < MESSAGES; i++) await c.call("agent.run", { agent_id: inboxB, message: "hi" });
    const runMs = performance.now() - t2;

    const e = quantiles(echoMs);
    const rt = quantiles(callRt);
    const one = quantiles(oneTurn);
    const run = quantiles(callRun);
    return [
      {
        name: "agent_call round trip in a run, p50 (tool_use → tool_result; recipient's model replies at once)",
        value: us(rt.p50),
        unit: "µs",
        baseline: { name: "tool.invoke echo p50", value: us(e.p50) },
      },
      {
        name: "agent_call round trip in a run, p99",
        value: us(rt.p99),
        unit: "µs",
        baseline: { name: "tool.invoke echo p99", value: us(e.p99) },
      },
      {
        name: "agent_call round trip in a run, p50",
        value: us(rt.p50),
        unit: "µs",
        baseline: { name: "one model call (one-turn agent.run, fixture model) p50", value: us(one.p50) },
      },
      {
        name: "whole caller run p50 (model → agent_call → recipient's model → reply → model)",
        value: us(run.p50),
        unit: "µs",
        baseline: { name: "one-turn agent.run p50", value: us(one.p50) },
      },
      {
        name: `inbox throughput: ${MESSAGES.toLocaleString("en-US")} agent.send (${SEND_IN_FLIGHT} in flight) to the last agent.done`,
        value: round(MESSAGES / (sendMs / 1000)),
        unit: "messages/s",
        baseline: {
          name: `${MESSAGES.toLocaleString("en-US")} agent.run one after the other`,
          value: round(MESSAGES / (runMs / 1000)),
        },
      },
      {
        name: `agent.send acceptance: ${MESSAGES.toLocaleString("en-US")} queued (audited) before their runs end`,
        value: round(MESSAGES / (queuedMs / 1000)),
        unit: "messages/s",
      },
    ];
  } finally {
    await k.stop();
    rmSync(k.dir, { recursive: true, force: true });
    await srv.stop();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("messages between agents", await benchIpc());
}
