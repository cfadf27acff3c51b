// Agent memory (issue 15) through the real socket of a host-mode kernel, the
// model served by the Messages API fixture: compaction keeps a long
// conversation inside its window (summary + archive, searchable), named
// namespaces are reached only through capabilities, quotas and record sizes
// are enforced, pinned blocks are edited within their limits, a reboot keeps a
// persistent agent's memory and drops a session agent's own, a kill -9 in the
// middle of a compaction loses no turn and duplicates none, every write and
// delete is audited with its hash, and bad inputs get clear errors.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer, type RecordedRequest } from "../fixtures/messages-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

const KEY = "sk-ant-api03-MEMORYTEST-never-in-logs-0a1b2c3d4e";
const MODEL = "claude-haiku-4-5-20251001";
/** a phrase of the summarisation call's system prompt (kernel/memory/compact.ts summaryPrompt) */
const SUMMARISER = "You maintain the running summary";
const BASE_YAML = `inference:
  max_concurrency: 4
  request_timeout_ms: 20000
  retry:
    base_delay_ms: 5
    max_delay_ms: 20
    max_retries: 0
`;

let srv: MessagesServer;
const kernels: RunningKernel[] = [];

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
});
afterAll(async () => {
  for (const k of kernels) await k.stop().catch(() => {});
  for (const d of new Set(kernels.map((k) => k.dir))) cleanup({ dir: d } as RunningKernel);
  await srv.stop();
});
beforeEach(() => srv.reset());

async function boot(opts: { dir?: string; manifests?: Record<string, string>; kernelYaml?: string } = {}) {
  const k = await startKernel({
    kernelYaml: opts.kernelYaml ?? BASE_YAML,
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
    await Bun.sleep(20);
  }
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const systemOf = (r: RecordedRequest): string =>
  typeof r.body.system === "string" ? r.body.system : JSON.stringify(r.body.system ?? "");
const isSummariser = (r: RecordedRequest) => systemOf(r).includes(SUMMARISER);
/** the agent's own model requests (not the summarisation calls), recognised by a phrase of its system prompt */
const agentRequests = (phrase: string) => srv.requests.filter((r) => !isSummariser(r) && systemOf(r).includes(phrase));
const summaryBlock = (text: string) => `<conversation_summary>\n${text}\n</conversation_summary>`;
const summaries = (n: number, text: string) =>
  Array.from({ length: n }, () => ({ match: { system: SUMMARISER }, text }));

async function audit(k: RunningKernel, q: { kind?: string; agent_id?: string }) {
  return (await k.client.call("audit.query", { ...q, limit: 1000 })).events as any[];
}
const invoke = (k: RunningKernel, agent_id: string, tool: string, input: object) =>
  k.client.call("tool.invoke", { agent_id, tool, input }) as Promise<any>;

// ---------------------------------------------------------------------------
// kernel A: compaction, namespaces, blocks, then a reboot

describe("kernel A: compaction, namespaces, blocks, reboot", () => {
  let kA: RunningKernel;
  const manifestsA: Record<string, string> = {
    talker: `name: talker
model: ${MODEL}
system_prompt: "TALKER-SYS: you listen."
lifecycle: persistent
capabilities: [memory_search]
memory:
  context_window: 4000
  blocks:
    - {label: persona, limit: 200, value: "PERSONA-TALKER: a patient listener"}
`,
    // spawn_child lists name agents the kernel knows
    ...Object.fromEntries(["childa", "childb", "childc"].map((n) => [n, `name: ${n}\nmodel: ${MODEL}\n`])),
  };
  beforeAll(async () => {
    kA = await boot({ manifests: manifestsA });
  });

  const word = (i: number) => `kw${i}zq`;
  let talker = "";

  test("a 200-turn conversation stays under its window: summary, pinned block, archive found by search", async () => {
    const SUMMARY = "SUMMARY-TALK-7Q: the user listed numbered words";
    srv.script(summaries(400, SUMMARY));
    ({ agent_id: talker } = await kA.client.call("agent.spawn", { name: "talker" }));
    for (let i = 0; i < 200; i++) {
      const r: any = await kA.client.call("agent.run", {
        agent_id: talker,
        message: `turn ${i}: please remember the word ${word(i)}; ` + "and some filler to make it longer. ".repeat(3),
      });
      expect(r.stop_reason).toBe("end_turn");
    }
    const window = 4000;
    const own = agentRequests("TALKER-SYS");
    expect(own.length).toBe(200);
    const summarised = srv.requests.filter(isSummariser);
    expect(summarised.length).toBeGreaterThan(0);
    let largest = 0;
    for (const r of srv.requests) {
      const est = Math.ceil(Buffer.byteLength(JSON.stringify(r.body)) / 3);
      largest = Math.max(largest, est);
      expect(est).toBeLessThan(window);
    }
    // the later requests: the pinned block and the scripted summary in the system prompt, early turns gone
    for (const r of own.slice(-20)) {
      const sys = systemOf(r);
      expect(sys).toContain("PERSONA-TALKER: a patient listener");
      expect(sys).toContain('<block label="persona"');
      expect(sys).toContain(summaryBlock(SUMMARY));
      expect(JSON.stringify(r.body.messages)).not.toContain(word(3) + ";");
    }
    // the last request still holds the newest message
    expect(JSON.stringify(own[own.length - 1]!.body.messages)).toContain(word(199));

    // an early message's unique word is in the archive: operator search and the agent's own tool
    const op: any = await kA.client.call("memory.search", { query: word(3), agent_id: talker });
    expect(op.results.length).toBeGreaterThan(0);
    expect(op.results[0]).toMatchObject({ kind: "archive", owner: talker, namespace: null });
    expect(op.results[0].text).toContain(`the word ${word(3)};`);
    const tool = await invoke(kA, talker, "memory_search", { query: word(3), k: 3 });
    expect(tool.output.results.some((h: any) => h.text.includes(`the word ${word(3)};`))).toBe(true);

    const compacts = await audit(kA, { kind: "memory.compact", agent_id: talker });
    expect(compacts.length).toBeGreaterThan(0);
    expect(compacts.length).toBe(summarised.length);
    for (const e of compacts) {
      expect(e).toMatchObject({ kind: "memory.compact", agent_id: talker, window, summarized: true });
      expect(e.archived_messages).toBeGreaterThan(0);
      expect(e.tokens_after).toBeLessThan(e.tokens_before);
    }
    console.log(
      `200 turns: ${srv.requests.length} requests, ${compacts.length} compactions, largest ~${largest} tokens (window ${window})`,
    );
  }, 60_000);

  test("namespaces: a child reaches team only with memory_read: team; own memory stays private", async () => {
    const { agent_id: lead } = await kA.client.call("agent.spawn", {
      manifest: `name: lead
model: ${MODEL}
capabilities: ["memory_read: team", "memory_write: team", memory_search, memory_store, memory_delete]
spawn_child: [childa, childb, childc]
`,
    });
    const team = await invoke(kA, lead, "memory_store", {
      text: "TEAMFACT the launch code is orchid77",
      namespace: "team",
      tags: ["fact"],
    });
    expect(team.output).toMatchObject({ namespace: "team", sha256: sha256("TEAMFACT the launch code is orchid77") });
    const mine = await invoke(kA, lead, "memory_store", { text: "PARENTOWN the secret is walrus42" });
    expect(mine.output.namespace).toBeNull();

    const a = await invoke(kA, lead, "spawn_agent", {
      manifest: `name: childa\nmodel: ${MODEL}\ncapabilities: ["memory_read: team", memory_delete]\n`,
    });
    expect(a.output.capabilities).toContain("memory_read: team");
    const b = await invoke(kA, lead, "spawn_agent", {
      manifest: `name: childb\nmodel: ${MODEL}\ncapabilities: [memory_search, memory_delete]\n`,
    });
    expect(b.output.capabilities.some((c: string) => c.includes("memory_read"))).toBe(false);
    const A = a.output.agent_id as string;
    const B = b.output.agent_id as string;

    // B holds the tool but not the namespace
    const denied = await rpcError(invoke(kA, B, "memory_search", { query: "orchid77", namespace: "team" }), -32001);
    expect(denied.message).toContain("team");
    const denials = await audit(kA, { kind: "capability.denied", agent_id: B });
    expect(denials.some((e) => e.tool === "memory_search")).toBe(true);

    // A finds what the parent stored in team
    const found = await invoke(kA, A, "memory_search", { query: "orchid77", namespace: "team" });
    expect(found.output.results.map((h: any) => h.id)).toContain(team.output.id);
    expect(found.output.results[0]).toMatchObject({
      namespace: "team",
      kind: "note",
      text: expect.stringContaining("orchid77"),
    });
    // the operator sees who wrote it
    const opTeam: any = await kA.client.call("memory.search", { query: "orchid77", namespace: "team" });
    expect(opTeam.results[0]).toMatchObject({ id: team.output.id, agent_id: lead, namespace: "team" });

    // the parent's own memory is nobody else's: not found, not deletable, not even said to exist
    const ownSearch = await invoke(kA, A, "memory_search", { query: "walrus42" });
    expect(ownSearch.output.results).toEqual([]);
    for (const child of [A, B]) {
      const e = await rpcError(invoke(kA, child, "memory_delete", { id: mine.output.id }), -32602);
      expect(e.message).toContain("no memory record");
    }

    // a child asking for more than its parent holds is refused at spawn
    const refused = await rpcError(
      invoke(kA, lead, "spawn_agent", {
        manifest: `name: childc\nmodel: ${MODEL}\ncapabilities: ["memory_write: other"]\n`,
      }),
      -32001,
    );
    expect(JSON.stringify(refused.data ?? refused.message)).toContain("other");

    // the operator reaches all: an agent's own memory too
    const op: any = await kA.client.call("memory.search", { query: "walrus42" });
    expect(op.results.map((h: any) => h.id)).toContain(mine.output.id);
    expect(await kA.client.call("memory.delete", { id: mine.output.id })).toEqual({
      id: mine.output.id,
      deleted: true,
    });
    const gone: any = await kA.client.call("memory.search", { query: "walrus42" });
    expect(gone.results).toEqual([]);
  }, 30_000);

  test("blocks: an update within the limit shows in the next request; over the limit, unknown labels refused", async () => {
    const { agent_id } = await kA.client.call("agent.spawn", {
      manifest: `name: blocky
model: ${MODEL}
system_prompt: "BLOCKY-SYS"
capabilities: [memory_block_update]
memory:
  blocks:
    - {label: persona, limit: 40, value: "BLOCK-V1 first"}
    - {label: notes, limit: 100}
`,
    });
    await kA.client.call("agent.run", { agent_id, message: "hello" });
    let sys = systemOf(agentRequests("BLOCKY-SYS").at(-1)!);
    expect(sys).toContain('<block label="persona" chars="14/40">BLOCK-V1 first</block>');
    expect(sys).toContain('<block label="notes" chars="0/100">');

    const up = await invoke(kA, agent_id, "memory_block_update", { label: "persona", value: "BLOCK-V2 updated" });
    expect(up.output).toEqual({ label: "persona", chars: 16, limit: 40 });
    await kA.client.call("agent.run", { agent_id, message: "hello again" });
    sys = systemOf(agentRequests("BLOCKY-SYS").at(-1)!);
    expect(sys).toContain('<block label="persona" chars="16/40">BLOCK-V2 updated</block>');
    expect(sys).not.toContain("BLOCK-V1");

    const over = await rpcError(
      invoke(kA, agent_id, "memory_block_update", { label: "persona", value: "x".repeat(41) }),
      -32602,
    );
    expect(over.message).toContain("40");
    const unknown = await rpcError(
      invoke(kA, agent_id, "memory_block_update", { label: "mood", value: "happy" }),
      -32602,
    );
    expect(unknown.message).toContain("mood");
    expect(unknown.message).toContain("persona");
    expect(unknown.message).toContain("notes");

    const blocks = await audit(kA, { kind: "memory.block", agent_id });
    expect(blocks.length).toBe(1);
    expect(blocks[0]).toMatchObject({
      label: "persona",
      chars: 16,
      limit: 40,
      sha256: sha256("BLOCK-V2 updated"),
      previous_sha256: sha256("BLOCK-V1 first"),
    });
  }, 30_000);

  test("a reboot keeps notes, blocks, summary and archives; a session agent's own notes go, a namespace's stay", async () => {
    const SUMMARY = "SUMMARY-KEEPER-5: the user counted things";
    srv.script(summaries(100, SUMMARY));
    const { agent_id: keeper } = await kA.client.call("agent.spawn", {
      manifest: `name: keeper
model: ${MODEL}
system_prompt: "KEEPER-SYS"
lifecycle: persistent
capabilities: [memory_store, memory_search, memory_block_update]
memory:
  context_window: 2000
  blocks:
    - {label: persona, limit: 100, value: "KEEPER-V1"}
`,
    });
    for (let i = 0; i < 40; i++) {
      await kA.client.call("agent.run", {
        agent_id: keeper,
        message: `keeper turn ${i} ` + "counting sheep. ".repeat(12),
      });
      if ((await audit(kA, { kind: "memory.compact", agent_id: keeper })).length >= 2) break;
    }
    expect((await audit(kA, { kind: "memory.compact", agent_id: keeper })).length).toBeGreaterThanOrEqual(2);
    const note = await invoke(kA, keeper, "memory_store", { text: "KEEPNOTE the boat is blue", tags: ["boat"] });
    await invoke(kA, keeper, "memory_block_update", { label: "persona", value: "KEEPER-V2 edited" });
    await kA.client.call("agent.run", { agent_id: keeper, message: "one more before the reboot" });
    const lastBefore = systemOf(agentRequests("KEEPER-SYS").at(-1)!);
    expect(lastBefore).toContain(summaryBlock(SUMMARY));
    expect(lastBefore).toContain("KEEPER-V2 edited");
    const archivesBefore = (
      (await kA.client.call("memory.list", { agent_id: keeper, kind: "archive", limit: 1000 })) as any
    ).records.map((r: any) => r.id);
    expect(archivesBefore.length).toBeGreaterThan(0);

    const { agent_id: visitor } = await kA.client.call("agent.spawn", {
      manifest: `name: visitor\nmodel: ${MODEL}\ncapabilities: [memory_store, "memory_write: shared5"]\n`,
    });
    const vOwn = await invoke(kA, visitor, "memory_store", { text: "VISITNOTE mine only pumpkin" });
    const vShared = await invoke(kA, visitor, "memory_store", {
      text: "VISITSHARED for everyone pumpkin",
      namespace: "shared5",
    });

    await kA.stop();
    srv.reset();
    srv.script(summaries(100, SUMMARY));
    kA = await boot({ dir: kA.dir, manifests: manifestsA });

    // the persistent agent's note, block, archives
    const notes: any = await kA.client.call("memory.list", { agent_id: keeper, kind: "note" });
    expect(notes.records.map((r: any) => r.id)).toEqual([note.output.id]);
    expect(notes.records[0].text).toBe("KEEPNOTE the boat is blue");
    const archivesAfter = (
      (await kA.client.call("memory.list", { agent_id: keeper, kind: "archive", limit: 1000 })) as any
    ).records.map((r: any) => r.id);
    expect(archivesAfter).toEqual(archivesBefore);
    const found = await invoke(kA, keeper, "memory_search", { query: "boat" });
    expect(found.output.results.map((h: any) => h.id)).toContain(note.output.id);

    // the next request after the restart: the same summary, the edited block
    await kA.client.call("agent.run", { agent_id: keeper, message: "after the reboot" });
    const firstAfter = systemOf(agentRequests("KEEPER-SYS")[0]!);
    expect(firstAfter).toContain(summaryBlock(SUMMARY));
    expect(firstAfter).toContain('<block label="persona" chars="16/100">KEEPER-V2 edited</block>');

    // the session agent's own note is forgotten (audited); the named namespace's note stays
    const search: any = await kA.client.call("memory.search", { query: "pumpkin" });
    expect(search.results.map((h: any) => h.id)).toEqual([vShared.output.id]);
    expect(search.results.map((h: any) => h.id)).not.toContain(vOwn.output.id);
    const forgot = await audit(kA, { kind: "memory.forget", agent_id: visitor });
    expect(forgot.length).toBe(1);
    expect(forgot[0]).toMatchObject({ records: 1 });
    const ns: any = await kA.client.call("memory.namespaces", {});
    expect(ns.namespaces.some((n: any) => n.owner === visitor)).toBe(false);
    expect(ns.namespaces.find((n: any) => n.namespace === "shared5")).toMatchObject({ records: 1 });
    // the talker of the first test kept its archive too
    if (talker) {
      const t: any = await kA.client.call("memory.search", { query: word(3), agent_id: talker });
      expect(t.results.some((h: any) => h.text.includes(`the word ${word(3)};`))).toBe(true);
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------
// kill -9 during a compaction

test("kill -9 during a compaction loses no turn and duplicates none", async () => {
  const k1 = await boot({
    manifests: {
      crasher: `name: crasher
model: ${MODEL}
system_prompt: "CRASHER-SYS"
lifecycle: persistent
memory:
  context_window: 1024
`,
    },
  });
  const { agent_id } = await k1.client.call("agent.spawn", { name: "crasher" });
  srv.script([{ match: { system: SUMMARISER }, hang: true }]);
  const sent: string[] = [];
  let inflight = "";
  const hung = () => srv.requests.some((r) => isSummariser(r) && r.outcome === "hang");
  for (let i = 0; i < 60 && !hung(); i++) {
    const text = `crash turn ${i} word cw${i}q ` + "with padding words here. ".repeat(8);
    sent.push(text);
    const { message_id } = await k1.client.call("agent.send", { agent_id, message: text });
    inflight = message_id;
    await until(`message ${i} done or the summary hanging`, async () => {
      if (hung()) return true;
      const r = await k1.client.call("agent.result", { agent_id, message_id });
      return r.state === "done";
    });
  }
  expect(hung()).toBe(true);
  // the compaction is under way: the summarisation request is open
  await crash(k1);

  srv.script([{ match: { system: SUMMARISER }, text: "SUMMARY-REDO-6: counted turns" }]);
  const k2 = await boot({ dir: k1.dir });
  const r: any = await until("the interrupted message finished after the restart", async () => {
    const r = await k2.client.call("agent.result", { agent_id, message_id: inflight });
    return r.state === "queued" || r.state === "running" ? null : r;
  });
  expect(r.state).toBe("done");
  const final = "the final message fm1q";
  await k2.client.call("agent.run", { agent_id, message: final });

  const last = agentRequests("CRASHER-SYS").at(-1)!;
  expect(systemOf(last)).toContain(summaryBlock("SUMMARY-REDO-6: counted turns"));
  const lastMessages = JSON.stringify(last.body.messages);
  expect(lastMessages).toContain(final);
  const archive: any[] = ((await k2.client.call("memory.list", { agent_id, kind: "archive", limit: 1000 })) as any)
    .records;
  expect(archive.length).toBeGreaterThan(0);
  const where: string[] = [];
  for (const text of sent) {
    const inLast = lastMessages.includes(text);
    const archived = archive.filter((a) => a.text.includes(text)).length;
    where.push(`${inLast ? "L" : ""}${archived}`);
    expect(archived).toBeLessThanOrEqual(1);
    // nor twice in the conversation (the resumed run did not add its message again)
    expect(lastMessages.split(text).length - 1).toBeLessThanOrEqual(1);
    expect(inLast || archived === 1).toBe(true);
  }
  // archived turns are gone from the conversation
  for (const text of sent) if (archive.some((a) => a.text.includes(text))) expect(lastMessages).not.toContain(text);
  const compacts = await audit(k2, { kind: "memory.compact", agent_id });
  expect(compacts.length).toBeGreaterThan(0);
  console.log(`kill -9: ${sent.length} messages before the crash; where each is: ${where.join(" ")}`);
}, 60_000);

// ---------------------------------------------------------------------------
// kernel B: quotas, audit, export, bad inputs

describe("kernel B: quotas, audit hashes, export, bad inputs", () => {
  let kB: RunningKernel;
  const noter = (name: string) =>
    `name: ${name}\nmodel: ${MODEL}\ncapabilities: [memory_store, memory_search, memory_delete, "memory_write: team", "memory_read: team"]\n`;
  beforeAll(async () => {
    kB = await boot({
      kernelYaml:
        BASE_YAML +
        `memory:
  quota:
    agent: {records: 3, bytes: 100000}
    namespaces: {team: {records: 100, bytes: 200}}
  max_record_bytes: 1000
  max_namespaces: 3
`,
    });
  });

  test("quotas: records and bytes refused with -32010 naming the limit; an oversized text -32602; delete frees", async () => {
    const { agent_id } = await kB.client.call("agent.spawn", { manifest: noter("quotaer") });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await invoke(kB, agent_id, "memory_store", { text: `note ${i}` })).output.id);
    const full = await rpcError(invoke(kB, agent_id, "memory_store", { text: "note 3" }), -32010);
    expect(full.message).toContain("memory.quota.agent.records");
    expect(full.message).toContain("3");
    expect(full.data).toMatchObject({ quota: "records", limit: 3 });

    const big = await rpcError(
      invoke(kB, agent_id, "memory_store", { text: "t".repeat(201), namespace: "team" }),
      -32010,
    );
    expect(big.message).toContain("bytes");
    expect(big.message).toContain("200");
    expect(big.data).toMatchObject({ namespace: "team", quota: "bytes", limit: 200 });
    // the limit comes from the team override: the message names that key
    expect(big.message).toContain("memory.quota.namespaces.team.bytes");

    const huge = await rpcError(invoke(kB, agent_id, "memory_store", { text: "h".repeat(1001) }), -32602);
    expect(huge.message).toContain("1000");
    expect(huge.message).toContain("1001");

    await invoke(kB, agent_id, "memory_delete", { id: ids[0] });
    const again = await invoke(kB, agent_id, "memory_store", { text: "note 3" });
    expect(again.output.id).toMatch(/^mem-[0-9a-f]{16}$/);
    // the small team note fits
    await invoke(kB, agent_id, "memory_store", { text: "a small team note", namespace: "team" });
  }, 30_000);

  test("every write and delete is audited with its hash; export holds every record; namespaces show quotas", async () => {
    const { agent_id } = await kB.client.call("agent.spawn", { manifest: noter("auditor") });
    const text = "AUDITED note: the café opens at 8 ☕";
    const st = await invoke(kB, agent_id, "memory_store", { text, tags: ["cafe"] });
    expect(st.output.sha256).toBe(sha256(text));
    expect(st.output.bytes).toBe(Buffer.byteLength(text));
    const teamText = "TEAM audited";
    const tm = await invoke(kB, agent_id, "memory_store", { text: teamText, namespace: "team" });

    const stores = await audit(kB, { kind: "memory.store", agent_id });
    const s1 = stores.find((e) => e.id === st.output.id);
    expect(s1).toMatchObject({
      sha256: sha256(text),
      bytes: Buffer.byteLength(text),
      namespace: null,
      owner: agent_id,
    });
    expect(stores.find((e) => e.id === tm.output.id)).toMatchObject({ sha256: sha256(teamText), namespace: "team" });

    await invoke(kB, agent_id, "memory_delete", { id: st.output.id });
    const dels = await audit(kB, { kind: "memory.delete", agent_id });
    expect(dels.find((e) => e.id === st.output.id)).toMatchObject({ sha256: sha256(text), record_kind: "note" });
    // the operator's delete is audited too (agent_id null)
    await kB.client.call("memory.delete", { id: tm.output.id });
    const opDel = (await audit(kB, { kind: "memory.delete" })).find((e) => e.id === tm.output.id);
    expect(opDel).toMatchObject({ sha256: sha256(teamText), namespace: "team" });
    expect(opDel.agent_id ?? null).toBeNull();

    // export: JSONL that parses and holds every record memory.list knows
    const kept = await invoke(kB, agent_id, "memory_store", { text: "kept for the export" });
    const listed: any = await kB.client.call("memory.list", { limit: 1000 });
    const exp: any = await kB.client.call("memory.export", {});
    expect(exp.next_seq).toBeNull();
    const lines = (exp.jsonl as string).split("\n").filter((l) => l.length > 0);
    expect(lines.length).toBe(exp.records);
    const rows = lines.map((l) => JSON.parse(l));
    expect(rows.map((r) => r.id).sort()).toEqual(listed.records.map((r: any) => r.id).sort());
    const row = rows.find((r) => r.id === kept.output.id);
    expect(row).toMatchObject({ text: "kept for the export", owner: agent_id, sha256: sha256("kept for the export") });
    expect(rows.some((r) => r.id === st.output.id)).toBe(false);

    // namespaces: counts and quotas
    const ns: any = await kB.client.call("memory.namespaces", {});
    const mine = ns.namespaces.find((n: any) => n.owner === agent_id);
    expect(mine).toMatchObject({
      namespace: null,
      records: 1,
      bytes: Buffer.byteLength("kept for the export"),
      quota: { records: 3, bytes: 100000 },
    });
    const team = ns.namespaces.find((n: any) => n.namespace === "team");
    const teamRecords = listed.records.filter((r: any) => r.namespace === "team");
    expect(team).toMatchObject({
      records: teamRecords.length,
      bytes: teamRecords.reduce((s: number, r: any) => s + r.bytes, 0),
      quota: { records: 100, bytes: 200 },
    });
  }, 30_000);

  test("bad inputs get clear errors", async () => {
    const { agent_id } = await kB.client.call("agent.spawn", { manifest: noter("badder") });
    const k0 = await rpcError(invoke(kB, agent_id, "memory_search", { query: "x", k: 0 }), -32602);
    expect(k0.message).toContain("k");
    const since = await rpcError(invoke(kB, agent_id, "memory_search", { query: "x", since: "yesterday-ish" }), -32602);
    expect(since.message).toContain("yesterday-ish");
    const ns = await rpcError(invoke(kB, agent_id, "memory_search", { query: "x", namespace: "Bad Name" }), -32602);
    expect(ns.message).toContain("namespace");
    const lim = await rpcError(kB.client.call("memory.list", { limit: 5000 }), -32602);
    expect(lim.message).toContain("limit");
    const unk = await rpcError(kB.client.call("memory.delete", { id: "mem-0000000000000000" }), -32602);
    expect(unk.message).toContain("no memory record");
    expect(unk.message).toContain("mem-0000000000000000");
    for (const e of [k0, since, ns, lim, unk]) console.log(`  ${e.code} ${e.message}`);
  }, 30_000);

  test("the memory store is kernel-private: a file grant over everything cannot read, list or write it", async () => {
    const { agent_id } = await kB.client.call("agent.spawn", {
      manifest: `name: snooper\nmodel: ${MODEL}\ncapabilities: ["file_read: /*", "file_write: /*"]\n`,
    });
    const db = join(kB.dataDir, "state", "memory.db");
    expect(existsSync(db)).toBe(true);
    for (const [tool, input] of [
      ["file_read", { path: db }],
      ["file_write", { path: db, content: "x" }],
      ["file_read", { path: `${db}-wal` }],
    ] as const) {
      const e = await rpcError(invoke(kB, agent_id, tool, input), -32001);
      expect(e.message).toContain("kernel-private");
    }
    const listed = await invoke(kB, agent_id, "file_list", { path: join(kB.dataDir, "state") }).catch((e) => e);
    expect(JSON.stringify(listed)).not.toContain('memory.db"');
  }, 30_000);

  test("shared namespaces are bounded in number: one more than memory.max_namespaces is -32010", async () => {
    const { agent_id } = await kB.client.call("agent.spawn", {
      manifest: `name: spreader\nmodel: ${MODEL}\ncapabilities: ["memory_write: *"]\n`,
    });
    // team exists already; two more reach max_namespaces (3); writing into an existing one still works
    await invoke(kB, agent_id, "memory_store", { text: "one", namespace: "extra-1" });
    await invoke(kB, agent_id, "memory_store", { text: "two", namespace: "extra-2" });
    await invoke(kB, agent_id, "memory_store", { text: "three", namespace: "extra-1" });
    const over = await rpcError(invoke(kB, agent_id, "memory_store", { text: "four", namespace: "extra-3" }), -32010);
    expect(over.message).toContain("memory.max_namespaces");
    expect(over.data).toMatchObject({ namespace: "extra-3", quota: "namespaces", limit: 3, used: 3 });
    // its own memory is not a shared namespace: not counted
    expect((await invoke(kB, agent_id, "memory_store", { text: "mine" })).output.id).toMatch(/^mem-/);
  }, 30_000);
});
