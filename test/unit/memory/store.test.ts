// The memory store (bun:sqlite, FTS5) on real files: records and quotas,
// search (ranking, stemming, scope, filters, recency, vector fusion, hostile
// query text), archives and their pruning, forgetting an agent, pinned
// blocks, summaries, compaction's single transaction, and a reopen.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  isQuotaRefusal,
  matchExpression,
  MemoryStore,
  queryWords,
  type MemoryRecord,
  type NewRecord,
  type QuotaRefusal,
  type SearchQuery,
} from "../../../kernel/memory/store.ts";

const dirs: string[] = [];
const open: MemoryStore[] = [];
function fresh(): string {
  const d = mkdtempSync(join(tmpdir(), "aaos-memory-"));
  dirs.push(d);
  return join(d, "state", "memory.db");
}
function store(file = fresh()): MemoryStore {
  const s = new MemoryStore(file);
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {}
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
const NOW = Date.parse("2026-03-01T00:00:00.000Z");
const OWN = "agent:ag-1";

function note(text: string, more: Partial<NewRecord> = {}): NewRecord {
  return { namespace: OWN, agent_id: "ag-1", kind: "note", text, tags: [], ...more };
}
function ok(r: MemoryRecord | QuotaRefusal): MemoryRecord {
  if (isQuotaRefusal(r)) throw new Error(`refused: ${JSON.stringify(r)}`);
  return r;
}
function find(s: MemoryStore, query: string, more: Partial<SearchQuery> = {}) {
  return s.search({ namespaces: [OWN], query, k: 10, now: NOW, halfLifeMs: 30 * DAY, ...more });
}

/** what prune and forget report: sha256 over each deleted record's sha256, one per line, oldest first */
const digest = (texts: string[]) =>
  createHash("sha256")
    .update(texts.map((t) => createHash("sha256").update(t).digest("hex") + "\n").join(""))
    .digest("hex");

describe("MemoryStore records", () => {
  test("add, get and delete", () => {
    const s = store();
    const text = "the deploy key rotates every night — über";
    const a = ok(s.add(note(text, { tags: ["ops", "keys"], created_at: NOW }), null));
    expect(a.id).toMatch(/^mem-[0-9a-f]{16}$/);
    expect(a).toMatchObject({
      namespace: OWN,
      agent_id: "ag-1",
      kind: "note",
      text,
      tags: ["ops", "keys"],
      created_at: "2026-03-01T00:00:00.000Z",
      bytes: Buffer.byteLength(text),
      sha256: createHash("sha256").update(text).digest("hex"),
    });
    const b = ok(s.add(note("second", { agent_id: null }), null));
    expect(b.seq).toBeGreaterThan(a.seq);
    expect(b.agent_id).toBeNull();
    expect(s.get(a.id)).toEqual(a);
    expect(s.usage(OWN)).toEqual({ records: 2, bytes: a.bytes + 6 });

    expect(s.delete(a.id)).toEqual(a);
    expect(s.get(a.id)).toBeNull();
    expect(s.delete(a.id)).toBeNull();
    expect(find(s, "deploy key")).toEqual([]); // gone from the index too
    expect(s.usage(OWN)).toEqual({ records: 1, bytes: 6 });
  });

  test("a quota by records refuses the insert past it, in the same transaction", () => {
    const s = store();
    const quota = { records: 2, bytes: 1_000_000 };
    ok(s.add(note("one"), quota));
    ok(s.add(note("two"), quota));
    expect(s.add(note("three"), quota)).toEqual({ quota: "records", limit: 2, used: 2 });
    expect(s.usage(OWN)).toEqual({ records: 2, bytes: 6 });
    // the quota counts the record's kind only: archives do not take a note's room
    expect(s.archive(OWN, "ag-1", [{ key: "c:0", text: "archived", tags: ["archive"] }])).toBe(1);
    expect(s.add(note("three"), { records: 3, bytes: 1_000_000 })).not.toHaveProperty("quota");
    // another namespace has its own count
    ok(s.add(note("elsewhere", { namespace: "team" }), quota));
    // no quota: no limit
    ok(s.add(note("four"), null));
  });

  test("a quota by bytes refuses a record that would overflow it, and nothing is written", () => {
    const s = store();
    const quota = { records: 100, bytes: 10 };
    ok(s.add(note("12345"), quota));
    ok(s.add(note("abcde"), quota)); // exactly full
    expect(s.add(note("x"), quota)).toEqual({ quota: "bytes", limit: 10, used: 10 });
    const t = store();
    expect(t.add(note("ü".repeat(6)), quota)).toEqual({ quota: "bytes", limit: 10, used: 0 }); // 12 UTF-8 bytes
    expect(t.list({ limit: 10 })).toEqual([]);
    expect(t.namespaces()).toEqual([]);
  });

  test("list pages by seq within a bound; namespaces and usage", () => {
    const s = store();
    for (let i = 0; i < 5; i++) ok(s.add(note(`own ${i}`), null));
    ok(s.add(note("team one", { namespace: "team" }), null));
    s.archive(OWN, "ag-1", [{ key: "c:0", text: "turn", tags: ["archive"] }]);
    const page1 = s.list({ namespaces: [OWN], kind: "note", limit: 3 });
    expect(page1.map((r) => r.text)).toEqual(["own 0", "own 1", "own 2"]);
    const page2 = s.list({ namespaces: [OWN], kind: "note", after_seq: page1[2]!.seq, limit: 3 });
    expect(page2.map((r) => r.text)).toEqual(["own 3", "own 4"]);
    expect(s.list({ limit: 100 }).length).toBe(7);
    expect(s.list({ namespaces: ["team"], limit: 100 }).map((r) => r.text)).toEqual(["team one"]);
    expect(s.list({ kind: "archive", limit: 100 }).map((r) => r.text)).toEqual(["turn"]);
    expect(s.list({ limit: 0 })).toEqual([]);
    expect(s.namespaces()).toEqual([
      { namespace: OWN, records: 6, bytes: 5 * 5 + 4 },
      { namespace: "team", records: 1, bytes: 8 },
    ]);
    expect(s.usage(OWN, "note")).toEqual({ records: 5, bytes: 25 });
    expect(s.usage(OWN, "archive")).toEqual({ records: 1, bytes: 4 });
    expect(s.usage("nobody")).toEqual({ records: 0, bytes: 0 });
  });
});

describe("MemoryStore search", () => {
  test("ranks the matching record first and returns no record that does not match", () => {
    const s = store();
    ok(s.add(note("lunch menu for friday", { created_at: NOW }), null));
    const key = ok(s.add(note("the production deploy key is stored in the vault", { created_at: NOW - DAY }), null));
    ok(s.add(note("a deploy happened on monday", { created_at: NOW - 2 * DAY }), null));
    ok(s.add(note("weather is fine", { created_at: NOW }), null));
    const hits = find(s, "where is the deploy key?");
    expect(hits[0]!.id).toBe(key.id);
    expect(hits.map((h) => h.text)).toEqual([
      "the production deploy key is stored in the vault",
      "a deploy happened on monday",
    ]);
    expect(hits[0]!.score).toBeGreaterThan(hits[1]!.score);
    expect(find(s, "the is where of")).toEqual([]); // nothing but stop words
    expect(find(s, "")).toEqual([]);
    expect(find(s, "deploy", { k: 1 }).length).toBe(1);
  });

  test("stemming: rotated finds rotates, diacritics are folded", () => {
    const s = store();
    ok(s.add(note("the key rotates daily"), null));
    ok(s.add(note("Crème brûlée recipe"), null));
    expect(find(s, "rotated").map((h) => h.text)).toEqual(["the key rotates daily"]);
    expect(find(s, "ROTATING keys").map((h) => h.text)).toEqual(["the key rotates daily"]);
    expect(find(s, "creme brulee").map((h) => h.text)).toEqual(["Crème brûlée recipe"]);
  });

  test("scope: a record in another namespace is never returned", () => {
    const s = store();
    ok(s.add(note("secret launch codes", { namespace: "agent:ag-2", agent_id: "ag-2" }), null));
    ok(s.add(note("launch codes for the team", { namespace: "team" }), null));
    ok(s.add(note("my own launch notes"), null));
    for (let i = 0; i < 60; i++) ok(s.add(note(`launch filler ${i}`, { namespace: "other" }), null));
    expect(find(s, "launch codes").map((h) => h.namespace)).toEqual([OWN]);
    const both = find(s, "launch codes", { namespaces: [OWN, "team"] });
    expect(new Set(both.map((h) => h.namespace))).toEqual(new Set([OWN, "team"]));
    expect(find(s, "launch", { namespaces: [] })).toEqual([]);
    expect(find(s, "launch", { namespaces: ["team"], k: 100 }).length).toBe(1);
  });

  test("tags, since and kinds filter the hits", () => {
    const s = store();
    ok(s.add(note("backup plan alpha", { tags: ["ops", "db"], created_at: NOW - 10 * DAY }), null));
    ok(s.add(note("backup plan beta", { tags: ["ops"], created_at: NOW - DAY }), null));
    s.archive(OWN, "ag-1", [{ key: "c:0", text: "user: what is the backup plan?", tags: ["archive", "item:it-1"] }]);
    const texts = (q: Partial<SearchQuery>) =>
      find(s, "backup plan", q)
        .map((h) => h.text)
        .sort();
    expect(texts({}).length).toBe(3);
    expect(texts({ tags: ["ops"] })).toEqual(["backup plan alpha", "backup plan beta"]);
    expect(texts({ tags: ["ops", "db"] })).toEqual(["backup plan alpha"]);
    expect(texts({ tags: ["ops", "nope"] })).toEqual([]);
    expect(texts({ since: NOW - 2 * DAY, kinds: ["note"] })).toEqual(["backup plan beta"]);
    expect(texts({ kinds: ["archive"] })).toEqual(["user: what is the backup plan?"]);
    // tags are indexed too: a word of a tag finds the record
    expect(find(s, "it-1").map((h) => h.kind)).toEqual(["archive"]);
  });

  test("recency breaks ties toward newer", () => {
    const s = store();
    ok(s.add(note("the cache is warm", { created_at: NOW - 90 * DAY }), null));
    ok(s.add(note("the cache is warm", { created_at: NOW - DAY }), null));
    ok(s.add(note("the cache is warm", { created_at: NOW - 30 * DAY }), null));
    const hits = find(s, "cache");
    expect(hits.map((h) => h.created_at)).toEqual(
      [NOW - DAY, NOW - 30 * DAY, NOW - 90 * DAY].map((t) => new Date(t).toISOString()),
    );
    // the half-life: equal relevance (1), a record 30 days old keeps half the recency part (0.2) of a new one
    expect((hits[1]!.score - 0.8) / 0.2).toBeCloseTo(0.5, 5);
    expect(hits[0]!.score).toBeCloseTo(0.8 + 0.2 * 0.5 ** (1 / 30), 5);
    // equal time: the later insert first
    const t = store();
    const a = ok(t.add(note("same words", { created_at: NOW }), null));
    const b = ok(t.add(note("same words", { created_at: NOW }), null));
    expect(find(t, "words").map((h) => h.id)).toEqual([b.id, a.id]);
  });

  test("vector fusion lifts a semantically matching record that shares no word with the query", () => {
    const s = store();
    const v = (...x: number[]) => new Float32Array(x);
    ok(s.add(note("cat report for tuesday", { created_at: NOW, vector: v(0, 0, 1) }), null));
    const kitten = ok(
      s.add(note("a kitten is napping on the sofa", { created_at: NOW, vector: v(0.9, 0.1, 0) }), null),
    );
    ok(s.add(note("quarterly numbers", { created_at: NOW, vector: v(0, 1, 0) }), null));
    ok(s.add(note("no vector here", { created_at: NOW }), null));
    expect(find(s, "cat").map((h) => h.id)).not.toContain(kitten.id);
    const hybrid = find(s, "cat", { queryVector: v(1, 0, 0) });
    expect(hybrid.map((h) => h.id)).toContain(kitten.id);
    // the best word match and the best cosine lead; a record matching neither trails
    expect(
      hybrid
        .slice(0, 2)
        .map((h) => h.text)
        .sort(),
    ).toEqual(["a kitten is napping on the sofa", "cat report for tuesday"]);
    expect(hybrid.map((h) => h.text).indexOf("quarterly numbers")).toBeGreaterThan(1);
    expect(hybrid.every((h) => Number.isFinite(h.score))).toBe(true);
    expect(hybrid.map((h) => h.text)).not.toContain("no vector here");
    // a vector of another length is skipped, not an error
    expect(find(s, "cat", { queryVector: v(1, 0) }).map((h) => h.text)).toEqual(["cat report for tuesday"]);
    // scope holds for vectors too
    ok(s.add(note("kitten elsewhere", { namespace: "team", vector: v(1, 0, 0) }), null));
    expect(find(s, "cat", { queryVector: v(1, 0, 0) }).map((h) => h.namespace)).not.toContain("team");
  });

  test("a small scope inside a large store still gets its best matches, in bm25 order", () => {
    const s = store();
    // 400 strong matches elsewhere: the store's best matches are all out of scope
    for (let i = 0; i < 400; i++) ok(s.add(note(`rotation rotation rotation ${i}`, { namespace: "team" }), null));
    const weak = ok(s.add(note("the key rotation is due, among many other things said here at length"), null));
    const strong = ok(s.add(note("rotation rotation of keys"), null));
    ok(s.add(note("rotation notes", { kind: "archive" }), null));
    const own = find(s, "rotation", { kinds: ["note"] });
    expect(own.map((h) => h.id)).toEqual([strong.id, weak.id]);
    expect(own.every((h) => h.namespace === OWN && h.kind === "note")).toBe(true);
    // both kinds: the archive too; the shared namespace alone: 10 of its 400
    expect(find(s, "rotation").length).toBe(3);
    const team = find(s, "rotation", { namespaces: ["team"] });
    expect(team.length).toBe(10);
    expect(team.every((h) => h.namespace === "team")).toBe(true);
    // both scopes at once: every own record ranks by the same bm25 as the team's
    expect(find(s, "rotation", { namespaces: ["team", OWN], k: 100 }).length).toBe(100);
  });

  test("hostile query text never throws", () => {
    const s = store();
    ok(s.add(note('quoted "words" and (parens) with * stars AND OR NOT NEAR'), null));
    const special = `"'*^():-+{}[]\\/<>|&!~\`@#$%=,.;?` + "\u0000\u200b\ufeff\u0301";
    let q = "";
    for (let i = 0; i < 100; i++) q += special[i % special.length];
    expect(q.length).toBe(100);
    expect(() => find(s, q)).not.toThrow();
    expect(find(s, q)).toEqual([]);
    const nasty = [
      'words"',
      '"words',
      'wo"rds',
      "NEAR(words parens)",
      "words AND",
      "OR OR OR",
      "NOT words",
      "stars*",
      "^words",
      "text:words",
      "{text tags_text}: words",
      "-words",
      "a".repeat(10_000),
      "ü\u0301ber words",
      "😀 words 😀",
      "１２３ words",
    ];
    for (const n of nasty) expect(() => find(s, n)).not.toThrow();
    expect(find(s, 'wo"rds').length).toBe(0); // the quote splits: "wo", "rds"
    expect(find(s, 'words"').length).toBe(1);
    expect(find(s, "NEAR(words parens)").length).toBe(1);
    // random fuzz over the special characters and some words
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = special + "ab AND OR NOT NEAR words ";
    for (let i = 0; i < 300; i++) {
      let f = "";
      for (let j = 0; j < 40; j++) f += alphabet[Math.floor(rnd() * alphabet.length)];
      expect(() => find(s, f)).not.toThrow();
    }
    expect(queryWords('He said "don\'t" — ROTATED!')).toEqual(["said", "don", "t", "rotated"]);
    expect(matchExpression(["a", "b"])).toBe('"a" OR "b"');
  });
});

describe("MemoryStore archives", () => {
  test("archive is idempotent by key", () => {
    const s = store();
    const rows = [
      { key: "ag-1:0", text: "user: hello", tags: ["archive", "item:it-1"] },
      { key: "ag-1:1", text: "assistant: hi there", tags: ["archive", "item:it-1"] },
    ];
    expect(s.archive(OWN, "ag-1", rows)).toBe(2);
    expect(s.archive(OWN, "ag-1", rows)).toBe(0);
    expect(s.archive(OWN, "ag-1", [...rows, { key: "ag-1:2", text: "user: bye", tags: ["archive"] }])).toBe(1);
    const all = s.list({ namespaces: [OWN], limit: 10 });
    expect(all.map((r) => [r.kind, r.text])).toEqual([
      ["archive", "user: hello"],
      ["archive", "assistant: hi there"],
      ["archive", "user: bye"],
    ]);
    expect(find(s, "hello", { kinds: ["archive"] }).length).toBe(1);
  });

  test("pruneArchive deletes the oldest archives until the bytes fit, and nothing else", () => {
    const s = store();
    ok(s.add(note("a note that stays"), null));
    s.archive(
      OWN,
      "ag-1",
      [0, 1, 2, 3, 4].map((i) => ({ key: `c:${i}`, text: `turn ${i} `.padEnd(10, "x"), tags: ["archive"] })),
    );
    s.archive("agent:ag-2", "ag-2", [{ key: "d:0", text: "other agent", tags: ["archive"] }]);
    expect(s.usage(OWN, "archive")).toEqual({ records: 5, bytes: 50 });
    expect(s.pruneArchive(OWN, 50)).toMatchObject({ records: 0, bytes: 0 });
    // the digest of what was pruned: sha256 over each pruned record's sha256, one per line, oldest first
    expect(s.pruneArchive(OWN, 35)).toEqual({
      records: 2,
      bytes: 20,
      sha256: digest(["turn 0 xxxx", "turn 1 xxxx"].map((t) => t.slice(0, 10))),
    });
    expect(s.list({ namespaces: [OWN], kind: "archive", limit: 10 }).map((r) => r.text.slice(0, 6))).toEqual([
      "turn 2",
      "turn 3",
      "turn 4",
    ]);
    expect(find(s, "turn", { kinds: ["archive"] }).length).toBe(3);
    expect(s.pruneArchive(OWN, 0)).toMatchObject({ records: 3, bytes: 30 });
    expect(s.usage(OWN, "note").records).toBe(1);
    expect(s.usage("agent:ag-2").records).toBe(1);
  });

  test("forget deletes an agent's records, blocks and summaries, and nobody else's", () => {
    const s = store();
    ok(s.add(note("mine"), null));
    s.archive(OWN, "ag-1", [{ key: "c:0", text: "turn", tags: ["archive"] }]);
    ok(s.add(note("shared", { namespace: "team" }), null));
    ok(s.add(note("theirs", { namespace: "agent:ag-2", agent_id: "ag-2" }), null));
    s.initBlocks("ag-1", [{ label: "persona", limit: 100, value: "me" }]);
    s.initBlocks("ag-2", [{ label: "persona", limit: 100, value: "them" }]);
    s.setSummary("ag-1", "persistent summary", 4);
    s.compact(OWN, "ag-1", "it-9", [], "an item's summary", 2);
    s.setSummary("ag-2", "their summary", 1);
    expect(s.forget(OWN, "ag-1")).toEqual({ records: 2, bytes: 8, sha256: digest(["mine", "turn"]) });
    expect(s.list({ namespaces: [OWN], limit: 10 })).toEqual([]);
    expect(find(s, "mine turn")).toEqual([]);
    expect(s.blocks("ag-1")).toEqual([]);
    expect(s.summary("ag-1")).toBeNull();
    expect(s.summary("it-9")).toBeNull();
    expect(s.list({ namespaces: ["team"], limit: 10 }).length).toBe(1);
    expect(s.list({ namespaces: ["agent:ag-2"], limit: 10 }).length).toBe(1);
    expect(s.blocks("ag-2")[0]!.value).toBe("them");
    expect(s.summary("ag-2")!.text).toBe("their summary");
    expect(s.namespaces().map((n) => n.namespace)).toEqual(["agent:ag-2", "team"]);
  });
});

describe("MemoryStore blocks and summaries", () => {
  test("blocks: init, order, update; a reinit keeps an existing value", () => {
    const s = store();
    s.initBlocks("ag-1", [
      { label: "persona", limit: 500, value: "I am careful" },
      { label: "human", limit: 200, value: "" },
      { label: "scratch", limit: 50, value: "tmp" },
    ]);
    expect(s.blocks("ag-1")).toEqual([
      { label: "persona", limit: 500, value: "I am careful" },
      { label: "human", limit: 200, value: "" },
      { label: "scratch", limit: 50, value: "tmp" },
    ]);
    expect(s.setBlock("ag-1", "human", "likes tea")).toEqual({
      label: "human",
      limit: 200,
      value: "likes tea",
      previous_sha256: createHash("sha256").update("").digest("hex"),
    });
    expect(s.setBlock("ag-1", "nope", "x")).toBeNull();
    expect(s.setBlock("ag-2", "human", "x")).toBeNull();
    // the manifest changes: reordered, a limit raised, scratch gone, goals new; values kept
    s.initBlocks("ag-1", [
      { label: "goals", limit: 100, value: "ship it" },
      { label: "human", limit: 300, value: "manifest default" },
      { label: "persona", limit: 500, value: "manifest persona" },
    ]);
    expect(s.blocks("ag-1")).toEqual([
      { label: "goals", limit: 100, value: "ship it" },
      { label: "human", limit: 300, value: "likes tea" },
      { label: "persona", limit: 500, value: "I am careful" },
    ]);
    expect(s.blocks("ag-2")).toEqual([]);
  });

  test("summaries", () => {
    const s = store();
    expect(s.summary("ag-1")).toBeNull();
    const before = Date.now();
    s.setSummary("ag-1", "first", 10);
    const a = s.summary("ag-1")!;
    expect(a.text).toBe("first");
    expect(a.archived).toBe(10);
    expect(Date.parse(a.updated_at)).toBeGreaterThanOrEqual(before - 1);
    s.setSummary("ag-1", "second", 25);
    expect(s.summary("ag-1")).toMatchObject({ text: "second", archived: 25 });
  });

  test("compact archives rows and sets the summary in one transaction", () => {
    const s = store();
    const rows = [
      { key: "ag-1:0", text: "user: plan the migration", tags: ["archive", "item:it-1"] },
      { key: "ag-1:1", text: "assistant: here is the plan", tags: ["archive", "item:it-1"] },
    ];
    expect(s.compact(OWN, "ag-1", "ag-1", rows, "we planned the migration", 2)).toBe(2);
    expect(s.summary("ag-1")).toMatchObject({ text: "we planned the migration", archived: 2 });
    // repeated (a crash between the commit and the caller's bookkeeping): idempotent
    expect(s.compact(OWN, "ag-1", "ag-1", rows, "we planned the migration", 2)).toBe(0);
    expect(s.usage(OWN, "archive").records).toBe(2);
    // a failing summary write rolls the archive rows back
    const more = [{ key: "ag-1:2", text: "user: and then?", tags: ["archive"] }];
    expect(() => s.compact(OWN, "ag-1", "ag-1", more, null as unknown as string, 3)).toThrow();
    expect(s.usage(OWN, "archive").records).toBe(2);
    expect(s.summary("ag-1")).toMatchObject({ text: "we planned the migration", archived: 2 });
    expect(find(s, "and then")).toEqual([]);
  });
});

describe("MemoryStore durability", () => {
  test("a store from before scope_text is migrated at open: its records are found in their scope", () => {
    const file = fresh();
    mkdirSync(dirname(file), { recursive: true });
    const old = new Database(file, { create: true });
    old.exec(`
      CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, namespace TEXT NOT NULL, agent_id TEXT,
        kind TEXT NOT NULL, text TEXT NOT NULL, tags TEXT NOT NULL, tags_text TEXT NOT NULL,
        created_at INTEGER NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, vector BLOB, archive_key TEXT UNIQUE);
      CREATE VIRTUAL TABLE records_fts USING fts5(text, tags_text, content='records', content_rowid='seq',
        tokenize='porter unicode61 remove_diacritics 2');
      CREATE TRIGGER records_ai AFTER INSERT ON records BEGIN
        INSERT INTO records_fts (rowid, text, tags_text) VALUES (new.seq, new.text, new.tags_text);
      END;
      INSERT INTO records (id, namespace, agent_id, kind, text, tags, tags_text, created_at, bytes, sha256)
        VALUES ('mem-00000000000000aa', '${OWN}', 'ag-1', 'note', 'the old vault note', '[]', '', ${NOW}, 18, 'x'),
               ('mem-00000000000000bb', 'team', null, 'note', 'the team vault note', '[]', '', ${NOW}, 19, 'y');
    `);
    old.close();
    const s = store(file);
    expect(find(s, "vault").map((h) => h.id)).toEqual(["mem-00000000000000aa"]);
    expect(find(s, "vault", { namespaces: ["team"] }).map((h) => h.id)).toEqual(["mem-00000000000000bb"]);
    // new writes and deletes keep the rebuilt index in step
    const n = ok(s.add(note("a new vault note"), null));
    expect(find(s, "vault").length).toBe(2);
    s.delete(n.id);
    expect(find(s, "vault").map((h) => h.id)).toEqual(["mem-00000000000000aa"]);
  });

  test("everything is still there after a reopen", () => {
    const file = fresh();
    let s = store(file);
    const a = ok(
      s.add(
        note("the vault rotates keys", { tags: ["ops"], created_at: NOW, vector: new Float32Array([1, 2, 3]) }),
        null,
      ),
    );
    ok(s.add(note("team wiki", { namespace: "team", agent_id: null }), null));
    s.archive(OWN, "ag-1", [{ key: "c:0", text: "user: hi", tags: ["archive"] }]);
    s.initBlocks("ag-1", [{ label: "persona", limit: 10, value: "v" }]);
    s.setBlock("ag-1", "persona", "changed");
    s.setSummary("ag-1", "sum", 1);
    s.close();

    s = store(file);
    expect(s.get(a.id)).toEqual(a);
    expect(find(s, "rotated", { queryVector: new Float32Array([1, 2, 3]) }).map((h) => h.id)).toEqual([a.id]);
    expect(s.archive(OWN, "ag-1", [{ key: "c:0", text: "user: hi", tags: ["archive"] }])).toBe(0);
    expect(s.namespaces()).toEqual([
      { namespace: OWN, records: 2, bytes: a.bytes + 8 },
      { namespace: "team", records: 1, bytes: 9 },
    ]);
    expect(s.blocks("ag-1")).toEqual([{ label: "persona", limit: 10, value: "changed" }]);
    expect(s.summary("ag-1")).toMatchObject({ text: "sum", archived: 1 });
    const b = ok(s.add(note("after reopen"), null));
    expect(b.seq).toBeGreaterThan(a.seq);
  });
});
