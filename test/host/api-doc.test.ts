// Sends every request example of docs/api.md to a real kernel, in order, and
// checks each reply and notification against the one the page shows: the
// same fields with the same JSON types, and the same values except where a
// value is run-specific (ids, hashes, times, counters). Ids the page shows
// (ag-…, apr-…, msg-…, mem-…) are mapped to the real ones as replies reveal them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { METHOD_NAMES } from "../../kernel/rpc/names.ts";
import { startMessagesServer, type MessagesServer, type Step } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

const DOC = readFileSync(join(import.meta.dir, "../../docs/api.md"), "utf8");
const OUT = "/tmp/aaos-api-doc";
const KEY = "sk-ant-api-doc-test-key";

type Block = { tag: "request" | "response" | "notification"; background: boolean; msg: any };
const blocks: Block[] = [...DOC.matchAll(/```json (request|response|notification)( background)?\n([\s\S]*?)```/g)].map(
  (m) => ({
    tag: m[1] as Block["tag"],
    background: !!m[2],
    msg: JSON.parse(m[3]!),
  }),
);

// the agent of the page's typed-call examples: it serves one method
const FORECASTER = `name: forecaster
model: claude-haiku-4-5-20251001
system_prompt: You forecast the weather.
serves:
  forecast:
    description: the weather for a city
    params:
      type: object
      properties:
        city: {type: string}
        days: {type: integer, minimum: 1}
      required: [city]
      additionalProperties: false
    result:
      type: object
      properties:
        summary: {type: string}
      required: [summary]
`;

// the agent of the page's memory examples: its own memory and the namespace team
const LIBRARIAN = `name: librarian
model: claude-haiku-4-5-20251001
system_prompt: You keep the team's notes.
capabilities:
  - memory_store
  - memory_search
  - "memory_write: team"
  - "memory_read: team"
`;

/** what the model answers to the request of that id on the page */
const STEPS: Record<number, Step[]> = {
  // agent.send: a plain reply
  41: [{ text: "Noted.", usage: { input_tokens: 20, output_tokens: 3 } }],
  // agent.call: the model answers through the reply tool the kernel adds
  43: [
    {
      match: { tool_choice: "any" },
      content: [{ type: "tool_use", name: "reply", input: { summary: "Oslo: snow, -4 °C" } }],
      usage: { input_tokens: 60, output_tokens: 15 },
    },
  ],
  // agent.send that fails: the provider refuses the request (400, not retried)
  47: [{ error: { status: 400, message: "prompt is too long" } }],
};

let k: RunningKernel;
let llm: MessagesServer;
beforeAll(async () => {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  llm = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    manifests: {
      writer: `name: writer\nmodel: claude-haiku-4-5-20251001\nsystem_prompt: You write reports.\ncapabilities:\n  - "file_write: ${OUT}/*"\n  - echo\napproval_required: [file_write]\n`,
      forecaster: FORECASTER,
      librarian: LIBRARIAN,
    },
  });
  // what an agent left in the agents' area, for fs.list and fs.read
  mkdirSync(join(k.dataDir, "files", "reports"), { recursive: true });
  writeFileSync(join(k.dataDir, "files", "reports", "q1.md"), "# Q1\n\nRevenue rose 4%.\n");
  writeFileSync(
    join(k.dataDir, "files", "reports", "chart.png"),
    Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"),
  );
});
afterAll(async () => {
  await k.stop();
  await llm.stop();
  cleanup(k);
  rmSync(OUT, { recursive: true, force: true });
});

const ids = new Map<string, string>();
const RUN_SPECIFIC = new Set([
  "boot_id",
  "uptime_ms",
  "pid",
  "ts",
  "requested_at",
  "hash",
  "prev",
  "head",
  "token",
  "seq",
  "next_seq",
  "call_seq",
  "events",
  "id",
  "version",
  "agents",
  "virtual_tokens",
  "granted",
  "served",
  "entitled",
  "total_tokens",
  "requests",
  "input_tokens",
  "output_tokens",
  "at",
  "created_at",
  "score",
  "jsonl",
  // agent.rewind: a fresh id each call, and the seq of its agent.rewind record
  "rewind_id",
  "audit_seq",
  // system.stats: the machine's own figures
  "rss_bytes",
  "heap_used_bytes",
  "total_bytes",
  "available_bytes",
  "free_bytes",
  "used_bytes",
  "load",
  "now",
]);
/** run-specific values named by where they are rather than by their key alone */
const RUN_SPECIFIC_PATHS = [
  /\.disk\.path$/,
  /\.(lines\[\d+\]|line)\.(level|time|msg)$/,
  // config.get, config.apply: where this kernel's kernel.yaml is
  /^response 18[58]\.result\.path$/,
  // system.info: the fixture Messages API server's address
  /\.inference\.anthropic\.base_url$/,
];

/** doc value vs real value: same shape; equal values where they are not run-specific */
function compare(doc: any, real: any, path: string, key = ""): void {
  if (typeof doc === "string" && /^(ag|apr|msg|mem)-[0-9a-f]{16}$/.test(doc) && typeof real === "string") {
    if (!ids.has(doc)) ids.set(doc, real);
    expect(real, path).toBe(ids.get(doc)!);
    return;
  }
  expect(Array.isArray(real) ? "array" : real === null ? "null" : typeof real, path).toBe(
    Array.isArray(doc) ? "array" : doc === null ? "null" : typeof doc,
  );
  if (Array.isArray(doc)) {
    if (doc.length) expect(real.length, `${path} is empty`).toBeGreaterThan(0);
    doc.forEach((d, i) => i < real.length && compare(d, real[i], `${path}[${i}]`, key));
    return;
  }
  if (doc && typeof doc === "object") {
    for (const kk of Object.keys(doc)) {
      expect(Object.keys(real), `${path} lacks ${kk}`).toContain(kk);
      compare(doc[kk], real[kk], `${path}.${kk}`, kk);
    }
    return;
  }
  if (RUN_SPECIFIC.has(key) || key === "id" || /^toolu_/.test(String(doc))) return;
  if (RUN_SPECIFIC_PATHS.some((re) => re.test(path))) return;
  if (key === "message" && typeof doc === "string") {
    let d = doc;
    for (const [from, to] of ids) d = d.replaceAll(from, to);
    return expect(real.split(" (")[0], path).toBe(d.split(" (")[0]);
  }
  expect(real, path).toEqual(doc);
}

function realize(msg: any): any {
  let text = JSON.stringify(msg);
  for (const [d, r] of ids) text = text.replaceAll(d, r);
  return JSON.parse(text);
}

test("every example of docs/api.md holds against a running kernel", async () => {
  expect(blocks.filter((b) => b.tag === "request").length).toBeGreaterThanOrEqual(20);
  const documented = new Set(blocks.filter((b) => b.tag === "request").map((b) => b.msg.method));
  for (const m of METHOD_NAMES) {
    expect(documented, `docs/api.md has no example of ${m}`).toContain(m);
  }

  const notes: any[] = [];
  k.client.onNotification((n) => notes.push({ jsonrpc: "2.0", method: n.method, params: n.params }));
  notes.push({ jsonrpc: "2.0", method: "system.ready", params: k.ready });
  const used = new Set<any>();
  const replies = new Map<unknown, Promise<any>>();
  const send = (msg: any) =>
    k.client.call(msg.method, msg.params).then(
      (result) => ({ jsonrpc: "2.0", id: msg.id, result }),
      (e) => ({
        jsonrpc: "2.0",
        id: msg.id,
        error:
          e.data === undefined
            ? { code: e.code, message: e.message }
            : { code: e.code, message: e.message, data: e.data },
      }),
    );

  for (const b of blocks) {
    if (b.tag === "request") {
      const msg = realize(b.msg);
      if (msg.method === "agent.run")
        llm.script([
          {
            content: [{ type: "tool_use", name: "echo", input: { message: "hi" } }],
            usage: { input_tokens: 50, output_tokens: 20 },
          },
          { text: "Done: echoed hi.", usage: { input_tokens: 80, output_tokens: 10 } },
        ]);
      if (msg.method === "agent.spawn_and_run")
        llm.script([{ text: "Hello, operator.", usage: { input_tokens: 12, output_tokens: 5 } }]);
      if (STEPS[b.msg.id]) llm.script(STEPS[b.msg.id]!);
      const p = send(msg);
      replies.set(b.msg.id, p);
      if (b.background) await Bun.sleep(200);
      else await p;
      // system.logs follow: a second connection opens meanwhile, which the kernel logs
      if (msg.method === "system.logs" && msg.params.follow) (await k.connect()).client.close();
    } else if (b.tag === "response") {
      const real = await replies.get(b.msg.id);
      expect(real, `no request with id ${b.msg.id} before its response`).toBeDefined();
      compare(b.msg, real, `response ${b.msg.id}`);
    } else {
      const want = b.msg;
      // the first notification not matched yet of that method, type and message
      // (agent.send's arrive after its reply: waited for, up to 5 s)
      const fits = (n: any) =>
        !used.has(n) &&
        n.method === want.method &&
        (want.params.type === undefined || n.params.type === want.params.type) &&
        (want.params.message_id === undefined || n.params.message_id === ids.get(want.params.message_id));
      let match = notes.find(fits);
      for (let t = 0; !match && t < 250; t++) {
        await Bun.sleep(20);
        match = notes.find(fits);
      }
      expect(match, `no ${want.method} ${want.params.type ?? ""} notification arrived`).toBeDefined();
      used.add(match);
      compare(want, match, `notification ${want.method}`);
    }
  }
  expect(readFileSync(join(OUT, "report.md"), "utf8")).toBe("# Report\n");
  await k.proc.exited;
  expect(k.proc.exitCode).toBe(0);
}, 30_000);
