// Agent memory (issue 15), each figure beside a baseline measured in the
// same run:
// - memory_search latency (MemoryStore.search: FTS5 bm25 fused with
//   recency) at 100,000 records, beside a brute-force scan of the same
//   records in JS (lower-case includes of each query word, scored by hits,
//   top k), over the same 200 queries;
// - recall@5 on 30 planted facts hidden among those records, each asked for
//   by a paraphrase that shares a content word (or its stem) but not the
//   phrase, beside whole-query substring matching and beside any-word
//   substring matching newest first;
// - the input tokens of a 200-turn conversation of a persistent agent whose
//   context window (4,000 tokens) forces compaction, beside the same
//   conversation with a window it never reaches, through a host kernel and
//   the Messages API fixture (input_tokens as the fixture counts them: 4
//   bytes a token, summarisation calls included).
// The records are generated from a word list with a seeded PRNG (Zipf-like
// word frequencies, tags, created_at spread over a year), so every run
// measures the same data.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { MemoryStore, queryWords, type NewRecord } from "../kernel/memory/store.ts";
import { startMessagesServer } from "../test/fixtures/messages-server.ts";
import { startKernel } from "../test/host/harness.ts";
import type { Figure } from "./figure.ts";

const RECORDS = 100_000;
const QUERIES = 200;
const WARMUP = 20;
const K = 5;
const TURNS = 200;
const DAY = 86_400_000;
const HALF_LIFE = 30 * DAY;
const NS = "agent:ag-bench0000000000";

/** mulberry32: a small seeded PRNG */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// common words first: the sampler favours the front of the list (Zipf-like)
const WORDS = `
the a to of and in for on with is that at from by this it be as are we will was our not or have has
team meeting project update review deploy build test release server database user customer report data
service issue plan week today tomorrow monday tuesday wednesday thursday friday morning afternoon
new old next last first before after again still please check ask send fix move add remove keep need
email call note ticket bug error log alert config file folder branch commit merge pipeline job queue
cache api key token password account access login session cluster node pod container image network
staging production backup restore migration schema index table query latency memory disk cpu storage
budget invoice cost price order payment vendor contract meeting agenda slide demo roadmap sprint goal
design draft document spec feedback approval decision owner deadline priority risk blocker status
office room floor desk laptop monitor printer wifi badge parking lunch coffee kitchen dinner travel
flight hotel train ticket visa passport trip conference talk workshop training onboarding hiring
interview candidate offer salary review promotion manager lead engineer designer analyst support
sales marketing finance legal security compliance audit policy incident outage postmortem oncall
weekly monthly quarterly daily hourly early late soon quickly slowly carefully always never sometimes
rotate renew expire expires changed moved updated created deleted archived shared pinned scheduled
north south east west london berlin paris tokyo lisbon madrid boston denver seattle austin dublin
alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent
victor walter priya omar chen sofia lukas amara diego yuki noah emma liam mia ethan ava lucas zoe
red blue green yellow black white large small fast slow cheap expensive broken stable flaky secure
version region zone bucket domain certificate dns proxy firewall vpn gateway load balancer endpoint
metric dashboard graph chart threshold limit quota retry timeout failure success warning critical
customer churn revenue growth signup trial plan tier discount refund renewal subscription license
garden plant water ferns dog cat vet doctor dentist appointment school kids birthday gift party
recipe grocery milk bread eggs cheese apple banana rice pasta soup salad pizza sushi tea juice
car bike bus taxi road bridge station airport garage repair insurance rent mortgage tax bank loan
phone tablet charger cable adapter battery speaker camera keyboard mouse headset screen window door
`
  .trim()
  .split(/\s+/);

const TAGS = ["work", "personal", "infra", "finance", "travel", "people", "todo", "idea", "decision", "log"];

/** the planted facts, each with a paraphrase: a shared content word or stem, never the whole phrase */
const FACTS: [fact: string, query: string][] = [
  ["The staging database password rotates every Tuesday", "when is the staging db password rotated"],
  ["Maria's flight to Lisbon departs at 07:40 from gate B12", "what time does the Lisbon plane leave"],
  ["The office wifi passphrase is written on the whiteboard in room 4", "where is the wifi passphrase kept"],
  ["Our cloud invoice spiked because of an orphaned NAT gateway", "why did the NAT costs go up"],
  ["Grace is allergic to peanuts, order her the sesame-free menu", "what food allergies does Grace have"],
  ["The TLS certificate for api.example.com expires on the 14th of June", "when does the api certificate expire"],
  ["Deploys to production are frozen from December 20 until January 3", "is there a production deploy freeze"],
  ["Priya owns the billing migration and reports to Omar", "who is responsible for billing migrations"],
  ["The Kafka consumer lag alert fires above 50,000 messages", "what threshold triggers the kafka lag alerting"],
  ["Backups of the orders table are kept for 35 days in the cold bucket", "how long are order backups retained"],
  ["The dentist appointment moved to Thursday at 3pm", "when is my dentist visit"],
  ["Use the blue VPN profile when connecting from the Berlin office", "which vpn profile for Berlin"],
  ["The onboarding checklist lives in the HR wiki under People Ops", "where can I find the onboarding checklists"],
  ["Chen prefers async code reviews over pairing sessions", "how does Chen like to review code"],
  ["The rate limit for the public API is 600 requests per minute", "what is the public api request limit"],
  ["The quarterly board deck is due to Sofia two weeks before the meeting", "deadline for the board decks"],
  ["Redis evictions started after the maxmemory setting was lowered to 2gb", "why is redis evicting keys"],
  ["The parking garage code changed to 4471 in March", "what is the new parking code"],
  ["Lukas is on paternity leave until the end of August", "when does Lukas come back from leave"],
  ["The search service times out when the shard count exceeds 64", "search timeouts and shards"],
  ["Water the ferns twice a week, the cactus once a month", "how often should the ferns be watered"],
  ["Amara negotiated a 12 percent discount on the Datadog renewal", "what discount did we get on datadog"],
  ["The legacy cron box in Dublin still runs the payroll export", "which machine runs payroll exports"],
  ["Customer Acme Corp requires SOC2 evidence before renewing", "what does Acme need before renewal"],
  ["The dog's vaccination is due at the vet in October", "when are the vaccinations for the dog"],
  ["Feature flags older than 90 days must be removed from the codebase", "policy for stale feature flag cleanup"],
  ["The Tokyo team standup is at 9am JST, which is midnight UTC", "what time is the Tokyo standup in utc"],
  ["Invoices above 10,000 euros need approval from finance and legal", "who approves large invoices"],
  ["The mobile app crash rate doubled after release 4.2.1", "crash rate increase in the mobile release"],
  ["Zoe's birthday is on the 9th of May, she likes orchids", "what gift for Zoe birthday"],
];

function wordSampler(rand: () => number): () => string {
  // weight 1/(rank+1)^0.9, sampled by binary search over the cumulative weights
  const cum: number[] = [];
  let total = 0;
  for (let i = 0; i < WORDS.length; i++) cum.push((total += 1 / Math.pow(i + 1, 0.9)));
  return () => {
    const x = rand() * total;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return WORDS[lo]!;
  };
}

interface Gen {
  text: string;
  tags: string[];
  created_at: number;
}

function generate(n: number, now: number, rand: () => number): Gen[] {
  const word = wordSampler(rand);
  const out: Gen[] = [];
  for (let i = 0; i < n; i++) {
    const len = 8 + Math.floor(rand() * 20);
    const w: string[] = [];
    for (let j = 0; j < len; j++) {
      const r = rand();
      w.push(r < 0.03 ? String(Math.floor(rand() * 10_000)) : r < 0.05 ? `${word()}-${word()}` : word());
    }
    let text = w.join(" ");
    text = text[0]!.toUpperCase() + text.slice(1) + (rand() < 0.3 ? "?" : ".");
    const tags = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => TAGS[Math.floor(rand() * 10)]!))];
    out.push({ text, tags, created_at: now - Math.floor(rand() * 365 * DAY) });
  }
  return out;
}

function quantiles(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

const us = (ms: number) => Math.round(ms * 1000);

/** the top k of a scan: by score (higher first), ties newer first */
function topK(items: { i: number; score: number; created_at: number }[], k: number): number[] {
  items.sort((a, b) => b.score - a.score || b.created_at - a.created_at);
  return items.slice(0, k).map((x) => x.i);
}

interface Corpus {
  texts: string[];
  lower: string[];
  created: number[];
}

/** the brute-force baseline: lower-case includes of each query word, scored by how many are found */
function bruteForce(c: Corpus, query: string, k: number): number[] {
  const words = queryWords(query);
  const hits: { i: number; score: number; created_at: number }[] = [];
  for (let i = 0; i < c.lower.length; i++) {
    const t = c.lower[i]!;
    let s = 0;
    for (const w of words) if (t.includes(w)) s++;
    if (s > 0) hits.push({ i, score: s, created_at: c.created[i]! });
  }
  return topK(hits, k);
}

/** whole-query substring, newest first */
function wholeSubstring(c: Corpus, query: string, k: number): number[] {
  const q = query.toLowerCase();
  const hits: { i: number; score: number; created_at: number }[] = [];
  for (let i = 0; i < c.lower.length; i++)
    if (c.lower[i]!.includes(q)) hits.push({ i, score: 0, created_at: c.created[i]! });
  return topK(hits, k);
}

/** any query word (stop words dropped) as a substring, newest first */
function anyWordNewest(c: Corpus, query: string, k: number): number[] {
  const words = queryWords(query);
  const hits: { i: number; score: number; created_at: number }[] = [];
  for (let i = 0; i < c.lower.length; i++) {
    const t = c.lower[i]!;
    if (words.some((w) => t.includes(w))) hits.push({ i, score: 0, created_at: c.created[i]! });
  }
  return topK(hits, k);
}

async function searchFigures(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "aaos-bench-episodic-"));
  const store = new MemoryStore(join(dir, "memory.db"));
  try {
    const now = Date.now();
    const rand = prng(15);
    const gen = generate(RECORDS, now, rand);
    // the facts, at random places among the distractors, with created_at spread the same way
    const factAt = new Map<number, number>(); // position in gen → fact index
    FACTS.forEach(([text], f) => {
      let p: number;
      do p = Math.floor(rand() * (gen.length + 1));
      while (factAt.has(p));
      factAt.set(p, f);
      void text;
    });
    const all: Gen[] = [];
    const factSeq: number[] = [];
    for (let i = 0; i <= gen.length; i++) {
      const f = factAt.get(i);
      if (f !== undefined) {
        factSeq[f] = all.length;
        all.push({ text: FACTS[f]![0], tags: ["fact"], created_at: now - Math.floor(rand() * 365 * DAY) });
      }
      if (i < gen.length) all.push(gen[i]!);
    }

    // MemoryStore.add is one fsync'd transaction per record; the seeding wraps them all in one
    // (bun:sqlite nests add's transaction as a savepoint), so the same code path fills the store
    const db = (store as unknown as { db?: Database }).db;
    const t0 = performance.now();
    const ids: string[] = [];
    const fill = () => {
      for (const g of all) {
        const r = store.add({ namespace: NS, agent_id: null, kind: "note", ...g } as NewRecord, null);
        if ("quota" in r) throw new Error("unexpected quota refusal");
        ids.push(r.id);
      }
    };
    if (db) db.transaction(fill)();
    else fill();
    const seedMs = performance.now() - t0;

    const corpus: Corpus = {
      texts: all.map((g) => g.text),
      lower: all.map((g) => g.text.toLowerCase()),
      created: all.map((g) => g.created_at),
    };

    // --- latency: the same queries through both. Two query sets: words drawn with the corpus's
    // own (Zipf-like) frequencies, so most queries hold a word found in a large share of the
    // records, and words drawn uniformly from the list (rarer words, smaller match sets)
    const qr = prng(1515);
    const zipfWord = wordSampler(qr);
    const uniformWord = () => WORDS[Math.floor(qr() * WORDS.length)]!;
    const makeQueries = (w: () => string) =>
      Array.from({ length: WARMUP + QUERIES }, () => Array.from({ length: 2 + Math.floor(qr() * 3) }, w).join(" "));
    const search = (query: string, halfLifeMs = HALF_LIFE) =>
      store.search({ namespaces: [NS], query, k: K, halfLifeMs, now });
    const time = (queries: string[]) => {
      const storeMs: number[] = [];
      const bruteMs: number[] = [];
      queries.forEach((q, i) => {
        const a = performance.now();
        search(q);
        const b = performance.now();
        bruteForce(corpus, q, K);
        const c = performance.now();
        if (i >= WARMUP) {
          storeMs.push(b - a);
          bruteMs.push(c - b);
        }
      });
      return { s: quantiles(storeMs), b: quantiles(bruteMs) };
    };
    const zipf = time(makeQueries(zipfWord));
    const uniform = time(makeQueries(uniformWord));

    // --- recall@5 on the planted facts
    const idToPos = new Map(ids.map((id, i) => [id, i]));
    let recallStore = 0;
    let recallWhole = 0;
    let recallAny = 0;
    let recallBrute = 0;
    let recallBm25 = 0;
    FACTS.forEach(([, q], f) => {
      const want = factSeq[f]!;
      if (search(q).some((h) => idToPos.get(h.id) === want)) recallStore++;
      if (search(q, 0).some((h) => idToPos.get(h.id) === want)) recallBm25++;
      if (wholeSubstring(corpus, q, K).includes(want)) recallWhole++;
      if (anyWordNewest(corpus, q, K).includes(want)) recallAny++;
      if (bruteForce(corpus, q, K).includes(want)) recallBrute++;
    });

    const n = all.length.toLocaleString("en-US");
    const r = (x: number) => x / FACTS.length;
    return [
      {
        name: `memory_search p50 at ${n} records (MemoryStore.search, FTS5 bm25 + recency, k=${K}, ${QUERIES} queries of 2-4 words at corpus frequency)`,
        value: us(zipf.s.p50),
        unit: "µs",
        baseline: { name: "brute-force JS scan (lower-case includes per word, by hits)", value: us(zipf.b.p50) },
      },
      {
        name: "memory_search p99 (corpus-frequency words)",
        value: us(zipf.s.p99),
        unit: "µs",
        baseline: { name: "brute-force JS scan p99", value: us(zipf.b.p99) },
      },
      {
        name: `memory_search p50 (${QUERIES} queries of 2-4 words drawn uniformly from the word list)`,
        value: us(uniform.s.p50),
        unit: "µs",
        baseline: { name: "brute-force JS scan p50", value: us(uniform.b.p50) },
      },
      {
        name: "memory_search p99 (uniform words)",
        value: us(uniform.s.p99),
        unit: "µs",
        baseline: { name: "brute-force JS scan p99", value: us(uniform.b.p99) },
      },
      {
        name: `recall@${K}, ${FACTS.length} planted facts by paraphrase among ${n}: MemoryStore.search`,
        value: r(recallStore),
        unit: "",
        baseline: { name: "substring of the whole query", value: r(recallWhole) },
      },
      {
        name: `recall@${K}: MemoryStore.search`,
        value: r(recallStore),
        unit: "",
        baseline: { name: "substring of any query word, newest first", value: r(recallAny) },
      },
      {
        name: `recall@${K}: MemoryStore.search`,
        value: r(recallStore),
        unit: "",
        baseline: { name: "brute-force scan above (query words found, ties newest)", value: r(recallBrute) },
      },
      {
        name: `recall@${K}: MemoryStore.search`,
        value: r(recallStore),
        unit: "",
        baseline: {
          name: "MemoryStore.search with the recency term off (halfLifeMs 0: bm25 alone)",
          value: r(recallBm25),
        },
      },
      {
        name: `seeding ${n} records through MemoryStore.add in one transaction`,
        value: Math.round(all.length / (seedMs / 1000)),
        unit: "records/s",
      },
    ];
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const KEY = "sk-ant-bench-not-a-real-key";
const MODEL = "claude-haiku-4-5-20251001";
const WINDOW = 4000;

/** input tokens as the fixture counts them (its roughTokens of the request): 4 bytes a token */
function fixtureInputTokens(body: any): number {
  const s = JSON.stringify({ s: body.system ?? "", m: body.messages, t: body.tools ?? [] });
  return Math.max(1, Math.ceil(Buffer.byteLength(s, "utf8") / 4));
}

async function compactionFigures(): Promise<Figure[]> {
  const reply = "Noted. I will keep that in mind and come back to it when it matters for the next step.";
  const srv = await startMessagesServer({ apiKey: KEY, defaultText: reply });
  const agentYaml = (name: string, window: number) =>
    `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You are a patient assistant."\nlifecycle: persistent\nmemory:\n  context_window: ${window}\n`;
  const k = await startKernel({
    manifests: { compacted: agentYaml("compacted", WINDOW), unbounded: agentYaml("unbounded", 10_000_000) },
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url },
  });
  try {
    const rand = prng(200);
    const word = wordSampler(rand);
    const messages = Array.from({ length: TURNS }, (_, i) => {
      let m = `Turn ${i + 1}:`;
      while (m.length < 300) m += " " + word();
      return m.slice(0, 300);
    });
    const conversation = async (name: string) => {
      srv.reset();
      const { agent_id } = await k.client.call("agent.spawn", { name });
      for (const message of messages) {
        const r = await k.client.call("agent.run", { agent_id, message });
        if (r.response !== reply) throw new Error(`unexpected run result ${JSON.stringify(r).slice(0, 300)}`);
      }
      const tokens = srv.requests.filter((x) => x.route === "messages").map((x) => fixtureInputTokens(x.body));
      const summaries = srv.requests.filter((x) => x.route === "messages" && !x.body.system?.includes?.("patient"));
      return {
        total: tokens.reduce((a, b) => a + b, 0),
        max: Math.max(...tokens),
        requests: tokens.length,
        summaries: summaries.length,
      };
    };
    const withC = await conversation("compacted");
    const without = await conversation("unbounded");
    const under = withC.max < WINDOW;
    return [
      {
        name: `input tokens of a ${TURNS}-turn conversation (~300-byte messages), context_window ${WINDOW.toLocaleString("en-US")}: compacted (${withC.requests} requests, ${withC.summaries} of them summarisation calls)`,
        value: withC.total,
        unit: "tokens",
        baseline: {
          name: `same conversation, context_window 10,000,000 (no compaction, ${without.requests} requests)`,
          value: without.total,
        },
      },
      {
        name: `largest single request with compaction (${under ? "under" : "NOT under"} the ${WINDOW.toLocaleString("en-US")}-token window)`,
        value: withC.max,
        unit: "tokens",
        baseline: { name: "largest single request without compaction", value: without.max },
      },
    ];
  } finally {
    await k.stop();
    rmSync(k.dir, { recursive: true, force: true });
    await srv.stop();
  }
}

export async function benchEpisodic(): Promise<Figure[]> {
  return [...(await searchFigures()), ...(await compactionFigures())];
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("memory", await benchEpisodic());
}
