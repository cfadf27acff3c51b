// Issue 15, hybrid memory search through a real kernel on a real unix
// socket: kernel.yaml `memory.embeddings: "openai:local/embed-1"` names an
// OpenAI-compatible endpoint served by the fixture, whose vectors put
// synonyms near each other. A query that shares no word with a note (only
// synonyms) finds it with embeddings and not without them; the fixture saw
// the embeddings requests, with the endpoint's key; and when the endpoint
// fails (an error reply, or a closed port) memory_store still stores and
// memory_search still answers by words.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

const KEY = "sk-local-embeddings-test-key";
const MANIFEST = `name: rememberer
model: claude-haiku-4-5-20251001
capabilities: [memory_store, memory_search]
`;

/** the note the paraphrase must find, and notes around it */
const TARGET = "The staging database password rotates every Tuesday";
const NOTES = [
  "Lunch with the design team moved to the Italian place on Fifth Street",
  "The VPN credential for contractors lives in the team vault, ask Priya",
  "Quarterly report draft is due to finance before the end of March",
  TARGET,
  "Kubernetes cluster upgrade scheduled after the holiday freeze",
  "The coffee machine on the third floor needs descaling again",
  "Marketing wants the new logo in the footer of every email template",
  "Remember to water the ferns near the window on Fridays",
  "Alice prefers code reviews in the morning, before standups",
  "The conference badge pickup opens at eight in the lobby",
];
/** shares no word (and no stem) with TARGET; its words are TARGET's synonyms in the fixture's table */
const PARAPHRASE = "preprod datastore credential renewed";

function kernelYaml(baseUrl: string, embeddings: boolean): string {
  return [
    "inference:",
    "  retry:",
    "    max_retries: 0",
    "  providers:",
    "    openai_compatible:",
    "      - name: local",
    `        base_url: ${baseUrl}`,
    "        api_key_file: keys/local.key",
    "        models: []",
    ...(embeddings ? ["memory:", '  embeddings: "openai:local/embed-1"'] : []),
    "",
  ].join("\n");
}

async function boot(baseUrl: string, embeddings: boolean): Promise<{ k: RunningKernel; agent: string }> {
  const dir = mkdtempSync(join(tmpdir(), "aaos-embed-"));
  mkdirSync(join(dir, "config", "keys"), { recursive: true });
  writeFileSync(join(dir, "config", "keys", "local.key"), KEY + "\n");
  const k = await startKernel({
    dir,
    kernelYaml: kernelYaml(baseUrl, embeddings),
    manifests: { rememberer: MANIFEST },
  });
  const s = await k.client.call("agent.spawn", { name: "rememberer" });
  return { k, agent: s.agent_id as string };
}

const invoke = (k: RunningKernel, agent_id: string, tool: string, input: object): Promise<any> =>
  k.client.call("tool.invoke", { agent_id, tool, input }).then((r: any) => r.output);

async function storeAll(k: RunningKernel, agent: string): Promise<void> {
  for (const text of NOTES) {
    const r = await invoke(k, agent, "memory_store", { text, tags: ["note"] });
    expect(r.id).toMatch(/^mem-[0-9a-f]{16}$/);
  }
}

const texts = (r: any): string[] => r.results.map((h: any) => h.text);

let srv: MessagesServer;
beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
});
afterAll(async () => {
  await srv.stop();
});

describe("memory search with embeddings", () => {
  let k: RunningKernel;
  let agent: string;
  beforeAll(async () => {
    srv.reset();
    ({ k, agent } = await boot(`${srv.url}/v1`, true));
  });
  afterAll(async () => {
    await k.stop();
    cleanup(k);
  });

  test("a paraphrase that shares no word with the note finds it", async () => {
    await storeAll(k, agent);
    const r = await invoke(k, agent, "memory_search", { query: PARAPHRASE, k: 3 });
    // in the top 3 of 10 (a note sharing the word "credential" may rank above it: lexical + vector)
    expect(texts(r)).toContain(TARGET);
  });

  test("the fixture saw one embeddings request per note and per query, with the endpoint's key", () => {
    const emb = srv.requests.filter((r) => r.route === "embeddings");
    expect(emb.length).toBe(NOTES.length + 1);
    for (const r of emb) {
      expect(r.outcome).toBe("ok");
      expect(r.body.model).toBe("embed-1");
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
    }
    const inputs = emb.map((r) => JSON.stringify(r.body.input));
    expect(inputs).toContain(JSON.stringify([TARGET]));
    expect(inputs).toContain(JSON.stringify([PARAPHRASE]));
    // no model was called: tool.invoke runs the tool alone
    expect(srv.requests.filter((r) => r.route !== "embeddings")).toEqual([]);
  });

  test("an embeddings endpoint that fails: the note is stored, search answers by words", async () => {
    srv.script([
      { match: { route: "embeddings" }, error: { status: 500, message: "embedding model down" } },
      { match: { route: "embeddings" }, error: { status: 503 } },
    ]);
    const note = "The zeppelin hangar key hangs behind the blue door";
    const st = await invoke(k, agent, "memory_store", { text: note });
    expect(st.id).toMatch(/^mem-/);
    const r = await invoke(k, agent, "memory_search", { query: "zeppelin hangar" });
    expect(texts(r)[0]).toBe(note);
    expect(srv.pending()).toBe(0);
    expect(
      srv.requests
        .filter((x) => x.route === "embeddings")
        .slice(-2)
        .map((x) => x.outcome),
    ).toEqual(["error 500", "error 503"]);
  });
});

describe("memory search without embeddings", () => {
  test("the same paraphrase does not find the note (words only)", async () => {
    srv.reset();
    const { k, agent } = await boot(`${srv.url}/v1`, false);
    try {
      await storeAll(k, agent);
      const r = await invoke(k, agent, "memory_search", { query: PARAPHRASE, k: 10 });
      expect(texts(r)).not.toContain(TARGET);
      // the words still work
      const w = await invoke(k, agent, "memory_search", { query: "staging password", k: 3 });
      expect(texts(w)[0]).toBe(TARGET);
      expect(srv.requests.filter((x) => x.route === "embeddings")).toEqual([]);
    } finally {
      await k.stop();
      cleanup(k);
    }
  });
});

describe("an embeddings endpoint on a closed port", () => {
  test("memory_store stores and memory_search answers by words, no error", async () => {
    // a port that was just free: nothing listens on it
    const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const port = probe.port;
    await probe.stop(true);
    const { k, agent } = await boot(`http://127.0.0.1:${port}/v1`, true);
    try {
      await storeAll(k, agent);
      const w = await invoke(k, agent, "memory_search", { query: "staging password", k: 3 });
      expect(texts(w)[0]).toBe(TARGET);
      const p = await invoke(k, agent, "memory_search", { query: PARAPHRASE, k: 10 });
      expect(texts(p)).not.toContain(TARGET);
      expect(k.logText()).toContain("embeddings unavailable");
    } finally {
      await k.stop();
      cleanup(k);
    }
  });
});
