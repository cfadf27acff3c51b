// Issue 14's proof on the real image: a persistent agent autostarted from
// AAOS-CFG serves a typed method; another persistent agent's model calls it
// (agent_call); the machine reboots while the recipient's model request is
// still pending; after the reboot both agents are back with the same ids
// (the autostarted one not started twice), the recipient answers through
// its reply tool, the caller's agent_call re-attaches by its call key and
// its run completes, and the audit log holds agent.response ok. Memory rides
// along (issue 15): a note stored before the reboot and a pinned block edited
// then are found again after it, by the compiled kernel's FTS5 search on the
// appliance's data disk.
//
// The reboot is system.shutdown {action: "reboot"} (a clean one); with
// AAOS_E2E_IPC_REBOOT=reset it is a hard reset (QMP system_reset) instead,
// the crash path, for a manual run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { cleanupDisks, imageArtifacts, makeDisk } from "../../qemu/disk.ts";

const API_KEY = "sk-ant-e2e-ipc-not-a-real-key";
const MODEL = "claude-haiku-4-5-20251001";
const REBOOT = process.env.AAOS_E2E_IPC_REBOOT === "reset" ? "reset" : "shutdown";

const config = {
  "kernel.yaml": `network:
  mode: dhcp
inference:
  providers:
    anthropic:
      base_url: http://10.0.2.100:8080
      api_key_file: secrets/anthropic_api_key
`,
  "secrets/anthropic_api_key": API_KEY + "\n",
  "manifests/lookup.yaml": `name: lookup
model: ${MODEL}
system_prompt: "You are the key-value store."
lifecycle: persistent
autostart: true
serves:
  lookup:
    description: the value stored under a key
    params:
      type: object
      properties: {key: {type: string}}
      required: [key]
    result:
      type: object
      properties: {value: {type: string}}
      required: [value]
`,
  "manifests/asker.yaml": `name: asker
model: ${MODEL}
system_prompt: "You ask the lookup service."
lifecycle: persistent
capabilities:
  - "call: lookup.lookup"
  - memory_store
  - memory_search
  - memory_block_update
memory:
  blocks:
    - {label: notes, limit: 100, value: "nothing yet"}
`,
};

let server: MessagesServer;
let vm: VM | null = null;
let disk: string;

beforeAll(async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image (make test-e2e does)`);
  server = await startMessagesServer({ port: 0, hostname: "127.0.0.1", apiKey: API_KEY });
  disk = makeDisk(config);
});

afterAll(async () => {
  vm?.kill();
  await server?.stop();
  cleanupDisks();
});

const isLookup = (r: { body: any }) => JSON.stringify(r.body.system ?? "").includes("key-value store");

async function until<T>(what: string, get: () => Promise<T | null | undefined>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(200);
  }
}

test(`agent_call to an autostarted persistent agent survives a reboot mid-request (${REBOOT})`, async () => {
  vm = await bootVM({
    image: disk,
    kernel: imageArtifacts().bzImage,
    rpc: "hvc0",
    guestfwd: [{ guestAddr: "10.0.2.100", guestPort: 8080, hostPort: server.port }],
  });
  const ready1 = await vm.waitForReady();

  // the recipient was autostarted from its manifest on AAOS-CFG
  const list1 = (await vm.call("agent.list")).agents as any[];
  const lookups1 = list1.filter((a) => a.name === "lookup");
  expect(lookups1.length).toBe(1);
  const lookupId = lookups1[0].agent_id as string;
  const st = await vm.call("agent.status", { agent_id: lookupId });
  expect({ lifecycle: st.lifecycle, serves: st.serves }).toEqual({ lifecycle: "persistent", serves: ["lookup"] });

  // the caller's model asks for agent_call; the recipient's model request hangs
  server.script([
    {
      match: { system: "You ask", contains: "ask-lookup" },
      content: [
        { type: "tool_use", name: "agent_call", input: { to: "lookup", method: "lookup", params: { key: "colour" } } },
      ],
    },
    { match: { system: "key-value store", tool_choice: "any" }, hang: true },
  ]);
  const { agent_id: askerId } = await vm.call("agent.spawn", { name: "asker" });
  const note = await vm.call("tool.invoke", {
    agent_id: askerId,
    tool: "memory_store",
    input: { text: "The operator asked about the colour of the sky before the reboot", tags: ["e2e"] },
  });
  expect(note.output.id).toMatch(/^mem-/);
  await vm.call("tool.invoke", {
    agent_id: askerId,
    tool: "memory_block_update",
    input: { label: "notes", value: "asked about colours" },
  });
  const sent = await vm.call("agent.send", { agent_id: askerId, message: "ask-lookup: what is the colour?" });
  expect(sent.agent_id).toBe(askerId);
  await until("the recipient's model request", async () => server.requests.find((r) => isLookup(r)) ?? null);
  const pending = server.requests.find((r) => isLookup(r))!;
  expect(JSON.stringify(pending.body.messages)).toContain("colour");
  expect(pending.body.tools.map((t: any) => t.name)).toContain("reply");
  const busy = await vm.call("agent.status", { agent_id: lookupId });
  expect(busy.inbox.current).toMatch(/^call-/);
  const callId = busy.inbox.current as string;
  expect((await vm.call("agent.result", { agent_id: askerId, message_id: sent.message_id })).state).toBe("running");

  // --- reboot with the request in flight
  if (REBOOT === "reset") await vm.qmp("system_reset");
  else expect(await vm.call("system.shutdown", { action: "reboot" })).toEqual({ ok: true });
  // after the reboot: the recipient answers through its reply tool, then the caller's model ends its run
  server.script([
    {
      match: { system: "key-value store", tool_choice: "any" },
      content: [{ type: "tool_use", name: "reply", input: { value: "blue" } }],
    },
    { match: { system: "You ask", contains: "tool_result" }, text: "The colour is blue." },
  ]);
  const ready2 = await vm.waitForReady();
  expect(ready2.params.boot_id).not.toBe(ready1.params.boot_id);

  // both agents resumed with their ids; the autostarted one is not started a second time
  const list2 = (await vm.call("agent.list")).agents as any[];
  expect(list2.filter((a) => a.name === "lookup").map((a) => a.agent_id)).toEqual([lookupId]);
  expect(list2.filter((a) => a.name === "asker").map((a) => a.agent_id)).toEqual([askerId]);

  // the caller's run completes with the recipient's answer
  const done = await until("the caller's run", async () => {
    const r = await vm!.call("agent.result", { agent_id: askerId, message_id: sent.message_id });
    return r.state === "queued" || r.state === "running" ? null : r;
  });
  expect(done).toMatchObject({ state: "done", response: "The colour is blue." });
  const answered = await vm.call("agent.result", { agent_id: lookupId, message_id: callId });
  expect(answered).toMatchObject({ state: "done", result: { value: "blue" } });

  const responses = (await vm.call("audit.query", { kind: "agent.response", limit: 100 })).events as any[];
  expect(responses.filter((e) => e.ok).map((e) => [e.agent_id, e.to, e.method, e.call_id])).toEqual([
    [lookupId, askerId, "lookup", callId],
  ]);
  const resumed = (await vm.call("audit.query", { kind: "agent.resume", limit: 100 })).events as any[];
  expect(resumed.filter((e) => e.ok).map((e) => e.agent_id)).toEqual(expect.arrayContaining([lookupId, askerId]));
  // the recipient's request reached the model twice (before and after the reboot), the caller's model twice
  expect(server.requests.filter(isLookup).map((r) => r.outcome)).toEqual(["hang", "ok"]);
  const askerRequests = server.requests.filter((r) => !isLookup(r));
  expect(askerRequests.length).toBe(2);
  // what the caller's model was given back: the recipient's answer, not an error
  const results = (askerRequests[1]!.body.messages as any[])
    .flatMap((m) => (Array.isArray(m.content) ? m.content : []))
    .filter((b: any) => b.type === "tool_result");
  expect(results.map((b: any) => [b.is_error ?? false, b.content])).toEqual([
    [false, JSON.stringify({ value: "blue" })],
  ]);
  // memory: the note is found by a paraphrase (stemmed words), the edited block reached the model after the reboot
  const found = await vm.call("tool.invoke", {
    agent_id: askerId,
    tool: "memory_search",
    input: { query: "colours asked by the operator", tags: ["e2e"] },
  });
  expect(found.output.results.map((r: any) => r.id)).toEqual([note.output.id]);
  expect(JSON.stringify(askerRequests[1]!.body.system)).toContain("asked about colours");
  const ns = (await vm.call("memory.namespaces")).namespaces as any[];
  expect(ns.find((n) => n.owner === askerId)?.records).toBe(1);
  expect((await vm.call("audit.verify")).ok).toBe(true);
}, 600_000);
