// A provider key replaced with secret.set while it is in use takes effect at
// the next model call: between runs, and within a run (between its calls).
// A real host-mode kernel; the model is the Messages API fixture, which
// accepts one key at a time, so a call made with the old key would fail.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
const OLD = "sk-ant-rotation-old-key-000000000001";
const NEW = "sk-ant-rotation-new-key-000000000002";
const NEWER = "sk-ant-rotation-newer-key-0000000003";

let k: RunningKernel;
let llm: MessagesServer;
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
});

/** the key a recorded request carried: x-api-key, or the Bearer token the SDK sends */
const keyOf = (i: number) => {
  const h = llm.requests.at(i)?.headers ?? {};
  return h["x-api-key"] ?? h["authorization"]?.replace(/^Bearer\s+/i, "");
};

test("secret.set replacing an in-use key: the next call uses the new one, no reboot", async () => {
  llm = await startMessagesServer({ apiKey: OLD });
  k = await startKernel({
    env: { ANTHROPIC_BASE_URL: llm.url },
    kernelYaml:
      "approval:\n  timeout: 60s\ninference:\n  retry:\n    max_retries: 0\n  providers:\n    anthropic:\n      api_key_file: secrets/anthropic_api_key\n",
  });
  await k.client.call("secret.set", { name: "anthropic_api_key", value: OLD });
  const a = await k.client.call<any>("agent.spawn", {
    manifest: `name: rotor\nmodel: ${MODEL}\ncapabilities: [echo]\napproval_required: [echo]\n`,
  });
  llm.script([{ text: "with the old key" }]);
  expect((await k.client.call<any>("agent.run", { agent_id: a.agent_id, message: "one" })).response).toBe(
    "with the old key",
  );
  expect(keyOf(-1)).toBe(OLD);

  // between runs: the provider now takes only NEW
  llm.setApiKey(NEW);
  await k.client.call("secret.set", { name: "anthropic_api_key", value: NEW });
  llm.script([{ text: "with the new key" }]);
  expect((await k.client.call<any>("agent.run", { agent_id: a.agent_id, message: "two" })).response).toBe(
    "with the new key",
  );
  expect(keyOf(-1)).toBe(NEW);

  // within a run: its first call with NEW, then (while it waits for an approval) NEWER set, its next call with NEWER
  const watcher = await k.connect();
  const requested = watcher.client.waitFor("approval.requested", 10_000, (p: any) => p.agent_id === a.agent_id);
  llm.script([
    { content: [{ type: "tool_use", name: "echo", input: { message: "x" } }] },
    { text: "after the rotation", match: { contains: "tool_result" } },
  ]);
  const run = k.client.call<any>("agent.run", { agent_id: a.agent_id, message: "three" });
  const ap = (await requested) as { id: string };
  expect(keyOf(-1)).toBe(NEW);
  llm.setApiKey(NEWER);
  await k.client.call("secret.set", { name: "anthropic_api_key", value: NEWER });
  await k.client.call("approval.respond", { id: ap.id, decision: "approve" });
  expect((await run).response).toBe("after the rotation");
  expect(keyOf(-1)).toBe(NEWER);
  // no call was refused on the way
  expect(llm.requests.filter((r) => r.outcome === "unauthorized")).toEqual([]);
  watcher.client.close();

  // the kernel's log says the key was reloaded, and never shows a key
  await k.stop();
  const log = k.logText();
  expect(log).toContain("key reloaded");
  for (const key of [OLD, NEW, NEWER]) expect(log).not.toContain(key);
});
