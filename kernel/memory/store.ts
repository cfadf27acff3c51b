// The agents' memory: one bun:sqlite database on the data disk
// (<data>/state/memory.db, kernel-private). It holds the episodic records
// (notes an agent or the operator stored, and the conversation turns that
// compaction moved out of a context window: kind "archive"), each in one
// namespace ("agent:<id>" for an agent's own memory, or a named namespace);
// the pinned blocks of each agent; and the summary of each compacted
// conversation.
//
// Search is lexical first: an FTS5 index (porter stemming, unicode61 with
// diacritics removed) over each record's text and tags, kept in sync with
// the records by triggers (records are never updated, only inserted and
// deleted). The query is reduced to plain words, so no user text can reach
// FTS5's query syntax. Relevance is each candidate's bm25 score over the
// best one's (and, when the caller gives a query vector, its cosine over the
// best cosine among the records in scope with a vector, averaged with it);
// recency then scales it by 1 - RECENCY_WEIGHT + RECENCY_WEIGHT · 0.5^(age /
// half-life): it orders records of near-equal relevance, never lets a fresh
// weak match beat a strong old one.
//
// Durability: WAL with synchronous=FULL, so a statement that returned is on
// disk. Every method is one statement or one transaction; a quota is
// checked in the same transaction as the insert it guards, against a usage
// table kept exact by the same triggers.
//
// Bounds: a search returns at most MAX_K hits from at most max(50, 10·k)
// candidates per ranking, takes at most MAX_QUERY_WORDS words of the query,
// and compares the query vector with at most VECTOR_SCAN of the newest
// vectors in scope; a list returns at most MAX_LIST records. Quotas (the
// caller's) bound the notes; pruneArchive bounds the archives.
import type { Database } from "bun:sqlite";
import { openStateDb } from "../sys/files.ts";
import { createHash, randomBytes } from "node:crypto";

export const MAX_K = 100;
export const MAX_LIST = 1000;
export const MAX_QUERY_WORDS = 32;
export const VECTOR_SCAN = 20_000;
/** the first lexical try reads this many times n of the store's best matches */
const LEXICAL_PROBE = 4;
/** how much recency can move a record: a record of age 0 scores its relevance, an old one (1 - this) of it */
const RECENCY_WEIGHT = 0.2;

export type MemoryKind = "note" | "archive";

export interface MemoryRecord {
  /** "mem-" + 16 hex */
  id: string;
  /** rowid, increasing */
  seq: number;
  /** "agent:ag-..." or a named namespace */
  namespace: string;
  /** who wrote it (null: the operator) */
  agent_id: string | null;
  kind: MemoryKind;
  text: string;
  tags: string[];
  /** ISO */
  created_at: string;
  /** UTF-8 bytes of text */
  bytes: number;
  /** hex of text */
  sha256: string;
}

export interface SearchHit extends MemoryRecord {
  score: number;
}

export interface SearchQuery {
  /** scope (>= 1); the caller has already authorised them */
  namespaces: string[];
  query: string;
  /** 1..100 */
  k: number;
  /** every tag must be present */
  tags?: string[];
  /** epoch ms, created_at >= since */
  since?: number;
  /** default both */
  kinds?: MemoryKind[];
  /** epoch ms, for tests */
  now?: number;
  /** the recency term halves every halfLifeMs */
  halfLifeMs: number;
  /** hybrid when given */
  queryVector?: Float32Array;
}

export interface QuotaRefusal {
  quota: "records" | "bytes";
  limit: number;
  used: number;
}

export interface Quota {
  records: number;
  bytes: number;
}

export interface NewRecord {
  namespace: string;
  agent_id: string | null;
  kind: MemoryKind;
  text: string;
  tags: string[];
  /** epoch ms; default now */
  created_at?: number;
  vector?: Float32Array;
}

export interface ArchiveRow {
  /** "<conv>:<n>": archiving the same key twice adds it once */
  key: string;
  text: string;
  tags: string[];
}

export interface Block {
  label: string;
  limit: number;
  value: string;
}

export interface Summary {
  text: string;
  archived: number;
  updated_at: string;
}

/** a short English stop list: words that would match nearly everything */
const STOP_WORDS = new Set(
  (
    "a about after all also am an and any are as at be been before being but by can could did do does doing " +
    "for from had has have having he her here hers him his how i if in into is it its itself me more most my " +
    "no nor not of off on once only or other our ours out over own same she should so some such than that the " +
    "their theirs them then there these they this those through to too under until up very was we were what " +
    "when where which while who whom why will with would you your yours"
  ).split(" "),
);

/** the query's words: letters and digits, lower-case, stop words dropped, unique, at most MAX_QUERY_WORDS */
export function queryWords(query: string): string[] {
  const words = new Set<string>();
  for (const w of query
    .normalize("NFC")
    .toLowerCase()
    .match(/[\p{L}\p{N}\p{M}]+/gu) ?? []) {
    if (STOP_WORDS.has(w)) continue;
    words.add(w);
    if (words.size >= MAX_QUERY_WORDS) break;
  }
  return [...words];
}

/** an FTS5 MATCH expression that cannot be a syntax error: each word (letters and digits only) quoted, OR-ed */
export function matchExpression(words: string[]): string {
  return words.map((w) => `"${w.replaceAll('"', "")}"`).join(" OR ");
}

const COLUMNS = "seq, id, namespace, agent_id, kind, text, tags, created_at, bytes, sha256";
const ALL_KINDS: MemoryKind[] = ["note", "archive"];
const SCOPE = `namespace IN (SELECT value FROM json_each($ns)) AND kind IN (SELECT value FROM json_each($kinds))
  AND created_at >= $since
  AND ($tags IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each($tags) t WHERE t.value NOT IN (SELECT value FROM json_each(records.tags))))`;

/**
 * A record's scope as FTS5 tokens: its namespace (digits of a hash: no
 * tokenizer or stemmer changes them, and no text can name them by chance)
 * and its kind. A search puts its scope into the MATCH, so FTS5 ranks only
 * the records in scope (bm25 weighs this column 0).
 */
function namespaceToken(ns: string): string {
  return "n" + BigInt("0x" + createHash("sha256").update(ns).digest("hex").slice(0, 15)).toString();
}

function kindToken(kind: MemoryKind): string {
  return kind === "note" ? "k1" : "k2";
}

function scopeText(ns: string, kind: MemoryKind): string {
  return `${namespaceToken(ns)} ${kindToken(kind)}`;
}

export class MemoryStore {
  private readonly db: Database;
  private readonly q;

  constructor(readonly file: string) {
    this.db = openStateDb(file);
    // a store from before scope_text: the FTS table and its triggers are made again, then rebuilt
    const old = this.db.query(`PRAGMA table_info(records)`).all() as { name: string }[];
    const migrate = old.length > 0 && !old.some((c) => c.name === "scope_text");
    if (migrate) {
      this.db.transaction(() => {
        this.db.exec(`ALTER TABLE records ADD COLUMN scope_text TEXT NOT NULL DEFAULT ''`);
        const set = this.db.query(`UPDATE records SET scope_text = $t WHERE seq = $seq`);
        for (const r of this.db.query(`SELECT seq, namespace, kind FROM records`).all() as {
          seq: number;
          namespace: string;
          kind: MemoryKind;
        }[])
          set.run({ seq: r.seq, t: scopeText(r.namespace, r.kind) });
        this.db.exec(
          `DROP TRIGGER IF EXISTS records_ai; DROP TRIGGER IF EXISTS records_ad; DROP TABLE IF EXISTS records_fts;`,
        );
      })();
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, namespace TEXT NOT NULL, agent_id TEXT,
        kind TEXT NOT NULL, text TEXT NOT NULL, tags TEXT NOT NULL, tags_text TEXT NOT NULL,
        created_at INTEGER NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, vector BLOB,
        archive_key TEXT UNIQUE, scope_text TEXT NOT NULL DEFAULT '');
      CREATE INDEX IF NOT EXISTS records_scope ON records (namespace, kind, seq);
      CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(
        text, tags_text, scope_text, content='records', content_rowid='seq',
        tokenize='porter unicode61 remove_diacritics 2');
      CREATE TABLE IF NOT EXISTS usage (
        namespace TEXT NOT NULL, kind TEXT NOT NULL, records INTEGER NOT NULL, bytes INTEGER NOT NULL,
        PRIMARY KEY (namespace, kind)) WITHOUT ROWID;
      CREATE TRIGGER IF NOT EXISTS records_ai AFTER INSERT ON records BEGIN
        INSERT INTO records_fts (rowid, text, tags_text, scope_text)
          VALUES (new.seq, new.text, new.tags_text, new.scope_text);
        INSERT OR IGNORE INTO usage (namespace, kind, records, bytes) VALUES (new.namespace, new.kind, 0, 0);
        UPDATE usage SET records = records + 1, bytes = bytes + new.bytes
          WHERE namespace = new.namespace AND kind = new.kind;
      END;
      CREATE TRIGGER IF NOT EXISTS records_ad AFTER DELETE ON records BEGIN
        INSERT INTO records_fts (records_fts, rowid, text, tags_text, scope_text)
          VALUES ('delete', old.seq, old.text, old.tags_text, old.scope_text);
        UPDATE usage SET records = records - 1, bytes = bytes - old.bytes
          WHERE namespace = old.namespace AND kind = old.kind;
      END;
      CREATE TABLE IF NOT EXISTS blocks (
        agent_id TEXT NOT NULL, label TEXT NOT NULL, position INTEGER NOT NULL, lim INTEGER NOT NULL,
        value TEXT NOT NULL, PRIMARY KEY (agent_id, label));
      CREATE TABLE IF NOT EXISTS summaries (
        conv TEXT PRIMARY KEY, agent_id TEXT, text TEXT NOT NULL, archived INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS summaries_agent ON summaries (agent_id);
    `);
    if (migrate) this.db.exec(`INSERT INTO records_fts (records_fts) VALUES ('rebuild')`);
    const db = this.db;
    this.q = {
      insert: db.query(
        `INSERT INTO records
           (id, namespace, agent_id, kind, text, tags, tags_text, created_at, bytes, sha256, vector, scope_text)
         VALUES ($id, $namespace, $agent_id, $kind, $text, $tags, $tags_text, $created_at, $bytes, $sha256, $vector,
           $scope_text)`,
      ),
      insertArchive: db.query(
        `INSERT OR IGNORE INTO records
           (id, namespace, agent_id, kind, text, tags, tags_text, created_at, bytes, sha256, archive_key, scope_text)
         VALUES ($id, $namespace, $agent_id, 'archive', $text, $tags, $tags_text, $created_at, $bytes, $sha256, $key,
           $scope_text)`,
      ),
      get: db.query(`SELECT ${COLUMNS} FROM records WHERE id = $id`),
      bySeq: db.query(`SELECT ${COLUMNS} FROM records WHERE seq = $seq`),
      del: db.query(`DELETE FROM records WHERE id = $id`),
      // first try: the best matches of the whole store, their scope checked after (fast when most of the
      // store is in scope: the usual case for a shared namespace)
      lexicalAll: db.query(
        `SELECT f.seq AS seq, records.created_at AS created_at, records.namespace AS namespace,
           records.kind AS kind, f.s AS s FROM (
           SELECT rowid AS seq, bm25(records_fts, 1.0, 1.0, 0.0) AS s FROM records_fts
           WHERE records_fts MATCH $m ORDER BY s LIMIT $n) AS f
         JOIN records ON records.seq = f.seq ORDER BY f.s`,
      ),
      // else: the scope (namespaces, kinds) in the MATCH itself (scope_text tokens), so FTS5 ranks only what is
      // in scope (fast when the scope is a small part of the store), and records are read only for the top n
      lexical: db.query(
        `SELECT f.seq AS seq, records.created_at AS created_at, f.s AS s FROM (
           SELECT rowid AS seq, bm25(records_fts, 1.0, 1.0, 0.0) AS s FROM records_fts
           WHERE records_fts MATCH $m ORDER BY s LIMIT $n) AS f
         JOIN records ON records.seq = f.seq ORDER BY f.s`,
      ),
      // with since or tags: those filters on the records too
      lexicalFiltered: db.query(
        `SELECT records.seq AS seq, records.created_at AS created_at, bm25(records_fts, 1.0, 1.0, 0.0) AS s
         FROM records_fts JOIN records ON records.seq = records_fts.rowid
         WHERE records_fts MATCH $m AND ${SCOPE}
         ORDER BY s LIMIT $n`,
      ),
      vectors: db.query(
        `SELECT seq, created_at, vector FROM records WHERE vector IS NOT NULL AND ${SCOPE}
         ORDER BY seq DESC LIMIT ${VECTOR_SCAN}`,
      ),
      list: db.query(
        `SELECT ${COLUMNS} FROM records
         WHERE seq > $after AND ($ns IS NULL OR namespace IN (SELECT value FROM json_each($ns)))
           AND ($kind IS NULL OR kind = $kind)
         ORDER BY seq LIMIT $limit`,
      ),
      usage: db.query(
        `SELECT COALESCE(SUM(records), 0) AS records, COALESCE(SUM(bytes), 0) AS bytes FROM usage
         WHERE namespace = $ns AND ($kind IS NULL OR kind = $kind)`,
      ),
      namespaces: db.query(
        `SELECT namespace, SUM(records) AS records, SUM(bytes) AS bytes FROM usage
         GROUP BY namespace HAVING SUM(records) > 0 ORDER BY namespace`,
      ),
      oldestArchives: db.query(
        `SELECT seq, bytes, sha256 FROM records WHERE namespace = $ns AND kind = 'archive' ORDER BY seq`,
      ),
      delArchivesUpTo: db.query(`DELETE FROM records WHERE namespace = $ns AND kind = 'archive' AND seq <= $seq`),
      delNamespace: db.query(`DELETE FROM records WHERE namespace = $ns`),
      namespaceHashes: db.query(`SELECT sha256 FROM records WHERE namespace = $ns ORDER BY seq`),
      upsertBlock: db.query(
        `INSERT INTO blocks (agent_id, label, position, lim, value) VALUES ($agent_id, $label, $position, $lim, $value)
         ON CONFLICT (agent_id, label) DO UPDATE SET position = excluded.position, lim = excluded.lim`,
      ),
      blockLabels: db.query(`SELECT label FROM blocks WHERE agent_id = $agent_id`),
      delBlock: db.query(`DELETE FROM blocks WHERE agent_id = $agent_id AND label = $label`),
      blocks: db.query(`SELECT label, lim, value FROM blocks WHERE agent_id = $agent_id ORDER BY position, label`),
      block: db.query(`SELECT label, lim, value FROM blocks WHERE agent_id = $agent_id AND label = $label`),
      setBlock: db.query(`UPDATE blocks SET value = $value WHERE agent_id = $agent_id AND label = $label`),
      delBlocks: db.query(`DELETE FROM blocks WHERE agent_id = $agent_id`),
      summary: db.query(`SELECT text, archived, updated_at FROM summaries WHERE conv = $conv`),
      setSummary: db.query(
        `INSERT INTO summaries (conv, agent_id, text, archived, updated_at)
         VALUES ($conv, $agent_id, $text, $archived, $updated_at)
         ON CONFLICT (conv) DO UPDATE SET agent_id = COALESCE(excluded.agent_id, agent_id),
           text = excluded.text, archived = excluded.archived, updated_at = excluded.updated_at`,
      ),
      delSummaries: db.query(`DELETE FROM summaries WHERE conv = $agent_id OR agent_id = $agent_id`),
    };
  }

  close(): void {
    this.db.close();
  }

  // ---- records -----------------------------------------------------------

  /**
   * One transaction; the quota (of the record's namespace and kind) is checked
   * inside it: returns the record, or the refusal (nothing written).
   */
  add(r: NewRecord, quota: Quota | null): MemoryRecord | QuotaRefusal {
    return this.db.transaction((): MemoryRecord | QuotaRefusal => {
      const bytes = Buffer.byteLength(r.text, "utf8");
      if (quota) {
        const used = this.usage(r.namespace, r.kind);
        if (used.records + 1 > quota.records) return { quota: "records", limit: quota.records, used: used.records };
        if (used.bytes + bytes > quota.bytes) return { quota: "bytes", limit: quota.bytes, used: used.bytes };
      }
      const id = newId();
      this.q.insert.run({
        id,
        namespace: r.namespace,
        agent_id: r.agent_id,
        kind: r.kind,
        text: r.text,
        tags: JSON.stringify(r.tags),
        tags_text: r.tags.join(" "),
        scope_text: scopeText(r.namespace, r.kind),
        created_at: r.created_at ?? Date.now(),
        bytes,
        sha256: sha256(r.text),
        vector: r.vector ? new Uint8Array(r.vector.buffer, r.vector.byteOffset, r.vector.byteLength) : null,
      });
      return this.get(id)!;
    })();
  }

  /** archives several turns in one transaction, idempotent by key; returns how many were added */
  archive(namespace: string, agent_id: string, rows: ArchiveRow[]): number {
    return this.db.transaction(() => this.archiveRows(namespace, agent_id, rows))();
  }

  private archiveRows(namespace: string, agent_id: string, rows: ArchiveRow[]): number {
    const now = Date.now();
    let added = 0;
    for (const row of rows) {
      const res = this.q.insertArchive.run({
        id: newId(),
        namespace,
        agent_id,
        text: row.text,
        tags: JSON.stringify(row.tags),
        tags_text: row.tags.join(" "),
        scope_text: scopeText(namespace, "archive"),
        created_at: now,
        bytes: Buffer.byteLength(row.text, "utf8"),
        sha256: sha256(row.text),
        key: row.key,
      });
      added += res.changes;
    }
    return added;
  }

  get(id: string): MemoryRecord | null {
    const r = this.q.get.get({ id }) as Row | null;
    return r ? toRecord(r) : null;
  }

  /** returns the deleted record, or null when there was none */
  delete(id: string): MemoryRecord | null {
    return this.db.transaction(() => {
      const r = this.get(id);
      if (r) this.q.del.run({ id });
      return r;
    })();
  }

  search(q: SearchQuery): SearchHit[] {
    const words = queryWords(q.query);
    if (words.length === 0 || q.namespaces.length === 0) return [];
    const k = Math.min(MAX_K, Math.max(1, Math.floor(q.k) || 1));
    const n = Math.max(50, 10 * k);
    const now = q.now ?? Date.now();
    const scope = {
      ns: JSON.stringify(q.namespaces),
      kinds: JSON.stringify(q.kinds && q.kinds.length > 0 ? q.kinds : ALL_KINDS),
      since: q.since ?? Number.MIN_SAFE_INTEGER,
      tags: q.tags && q.tags.length > 0 ? JSON.stringify(q.tags) : null,
    };
    /** seq → relevance in [0, 1] (each ranking's score over its best, averaged over the rankings) and created_at */
    const fused = new Map<number, { score: number; created_at: number }>();
    let rankings = 0;
    /** best first; v: higher is better, > 0 */
    const fuse = (ranked: { seq: number; created_at: number; v: number }[]) => {
      rankings++;
      const best = ranked[0]?.v ?? 0;
      if (!(best > 0)) return;
      for (const c of ranked) {
        const f = fused.get(c.seq) ?? { score: 0, created_at: c.created_at };
        f.score += Math.max(0, c.v) / best;
        fused.set(c.seq, f);
      }
    };

    const lexical = this.lexical(q, words, scope, n);
    // bm25() is negative, lower is better
    fuse(lexical.map((r) => ({ seq: r.seq, created_at: r.created_at, v: -r.s })));

    if (q.queryVector && q.queryVector.length > 0) {
      const qv = q.queryVector;
      const qn = norm(qv);
      const cands: { seq: number; created_at: number; v: number }[] = [];
      if (qn > 0) {
        for (const r of this.q.vectors.iterate(scope) as Iterable<{
          seq: number;
          created_at: number;
          vector: Uint8Array;
        }>) {
          const v = toVector(r.vector);
          if (v.length !== qv.length) continue;
          const vn = norm(v);
          if (vn === 0) continue;
          let dot = 0;
          for (let i = 0; i < v.length; i++) dot += v[i]! * qv[i]!;
          cands.push({ seq: r.seq, created_at: r.created_at, v: dot / (vn * qn) });
        }
      }
      cands.sort((a, b) => b.v - a.v);
      fuse(cands.slice(0, n));
    }

    const half = q.halfLifeMs;
    const scored = [...fused.entries()].map(([seq, f]) => {
      const age = Math.max(0, now - f.created_at);
      const recency = half > 0 ? Math.pow(0.5, age / half) : 0;
      // relevance first; recency moves a record by at most RECENCY_WEIGHT of its relevance
      const relevance = f.score / Math.max(1, rankings);
      return { seq, created_at: f.created_at, score: relevance * (1 - RECENCY_WEIGHT + RECENCY_WEIGHT * recency) };
    });
    scored.sort((a, b) => b.score - a.score || b.created_at - a.created_at || b.seq - a.seq);
    const hits: SearchHit[] = [];
    for (const s of scored.slice(0, k)) {
      const r = this.q.bySeq.get({ seq: s.seq }) as Row | null;
      if (r) hits.push({ ...toRecord(r), score: s.score });
    }
    return hits;
  }

  /**
   * The n best bm25 matches in scope, best first. Exact either way: when the
   * store's best LEXICAL_PROBE·n matches hold n in scope (or are all there
   * is), no record in scope outside them can rank above those n.
   */
  private lexical(
    q: SearchQuery,
    words: string[],
    scope: { ns: string; kinds: string; since: number; tags: string | null },
    n: number,
  ): { seq: number; created_at: number; s: number }[] {
    const text = `{text tags_text} : (${matchExpression(words)})`;
    if (scope.tags !== null || q.since !== undefined)
      return this.q.lexicalFiltered.all({ ...scope, m: text, n }) as never;
    const kinds = q.kinds && q.kinds.length > 0 ? q.kinds : ALL_KINDS;
    const probe = LEXICAL_PROBE * n;
    const all = this.q.lexicalAll.all({ m: text, n: probe }) as {
      seq: number;
      created_at: number;
      namespace: string;
      kind: MemoryKind;
      s: number;
    }[];
    const ns = new Set(q.namespaces);
    const inScope = all.filter((r) => ns.has(r.namespace) && kinds.includes(r.kind));
    if (inScope.length >= n || all.length < probe) return inScope.slice(0, n);
    const m = `(${text}) AND scope_text : (${q.namespaces.map(namespaceToken).join(" OR ")}) AND scope_text : (${kinds.map(kindToken).join(" OR ")})`;
    return this.q.lexical.all({ m, n }) as never;
  }

  /** oldest first from after_seq; limit at most MAX_LIST */
  list(q: { namespaces?: string[]; kind?: MemoryKind; after_seq?: number; limit: number }): MemoryRecord[] {
    const limit = Math.min(MAX_LIST, Math.max(0, Math.floor(q.limit) || 0));
    if (limit === 0) return [];
    const rows = this.q.list.all({
      after: q.after_seq ?? 0,
      ns: q.namespaces ? JSON.stringify(q.namespaces) : null,
      kind: q.kind ?? null,
      limit,
    }) as Row[];
    return rows.map(toRecord);
  }

  usage(namespace: string, kind?: MemoryKind): { records: number; bytes: number } {
    const r = this.q.usage.get({ ns: namespace, kind: kind ?? null }) as { records: number; bytes: number };
    return { records: r.records, bytes: r.bytes };
  }

  /** every namespace that holds a record (agents' own included) */
  namespaces(): { namespace: string; records: number; bytes: number }[] {
    return this.q.namespaces.all() as { namespace: string; records: number; bytes: number }[];
  }

  /** deletes the oldest archives of a namespace until its archive bytes <= maxBytes; returns what it pruned */
  pruneArchive(namespace: string, maxBytes: number): { records: number; bytes: number; sha256: string } {
    return this.db.transaction(() => {
      const used = this.usage(namespace, "archive");
      let excess = used.bytes - Math.max(0, maxBytes);
      const digest = createHash("sha256");
      if (excess <= 0) return { records: 0, bytes: 0, sha256: digest.digest("hex") };
      let records = 0;
      let bytes = 0;
      let last = 0;
      for (const r of this.q.oldestArchives.iterate({ ns: namespace }) as Iterable<{
        seq: number;
        bytes: number;
        sha256: string;
      }>) {
        if (excess <= 0) break;
        records++;
        bytes += r.bytes;
        excess -= r.bytes;
        last = r.seq;
        digest.update(r.sha256 + "\n");
      }
      if (records > 0) this.q.delArchivesUpTo.run({ ns: namespace, seq: last });
      return { records, bytes, sha256: digest.digest("hex") };
    })();
  }

  /** everything of one agent: its namespace's records, its blocks, its summaries; returns the records deleted */
  forget(namespace: string, agentId: string): { records: number; bytes: number; sha256: string } {
    return this.db.transaction(() => {
      const digest = createHash("sha256");
      for (const r of this.q.namespaceHashes.iterate({ ns: namespace }) as Iterable<{ sha256: string }>)
        digest.update(r.sha256 + "\n");
      const used = { ...this.usage(namespace), sha256: digest.digest("hex") };
      this.q.delNamespace.run({ ns: namespace });
      this.q.delBlocks.run({ agent_id: agentId });
      this.q.delSummaries.run({ agent_id: agentId });
      return used;
    })();
  }

  // ---- pinned blocks -----------------------------------------------------

  /**
   * The manifest's blocks: a new label gets its value, an existing one keeps
   * its value (limit and position updated), a label no longer listed is dropped.
   */
  initBlocks(agentId: string, blocks: Block[]): void {
    this.db.transaction(() => {
      const keep = new Set(blocks.map((b) => b.label));
      for (const r of this.q.blockLabels.all({ agent_id: agentId }) as { label: string }[]) {
        if (!keep.has(r.label)) this.q.delBlock.run({ agent_id: agentId, label: r.label });
      }
      blocks.forEach((b, position) =>
        this.q.upsertBlock.run({ agent_id: agentId, label: b.label, position, lim: b.limit, value: b.value }),
      );
    })();
  }

  /** in manifest order */
  blocks(agentId: string): Block[] {
    return (this.q.blocks.all({ agent_id: agentId }) as { label: string; lim: number; value: string }[]).map((r) => ({
      label: r.label,
      limit: r.lim,
      value: r.value,
    }));
  }

  /** null when the agent has no such block; the caller checks the value against the limit */
  setBlock(
    agentId: string,
    label: string,
    value: string,
  ): { label: string; limit: number; value: string; previous_sha256: string } | null {
    return this.db.transaction(() => {
      const r = this.q.block.get({ agent_id: agentId, label }) as { label: string; lim: number; value: string } | null;
      if (!r) return null;
      this.q.setBlock.run({ agent_id: agentId, label, value });
      return { label, limit: r.lim, value, previous_sha256: sha256(r.value) };
    })();
  }

  // ---- conversation summaries --------------------------------------------

  summary(conv: string): Summary | null {
    const r = this.q.summary.get({ conv }) as { text: string; archived: number; updated_at: number } | null;
    return r ? { text: r.text, archived: r.archived, updated_at: new Date(r.updated_at).toISOString() } : null;
  }

  /** agentId (optional): the agent the conversation belongs to, so that forget() finds it */
  setSummary(conv: string, text: string, archived: number, agentId?: string): void {
    this.q.setSummary.run({ conv, agent_id: agentId ?? null, text, archived, updated_at: Date.now() });
  }

  /** one transaction: archive rows (idempotent) + summary; returns how many rows were added */
  compact(
    namespace: string,
    agent_id: string,
    conv: string,
    rows: ArchiveRow[],
    summaryText: string,
    archivedTotal: number,
  ): number {
    return this.db.transaction(() => {
      const added = this.archiveRows(namespace, agent_id, rows);
      this.setSummary(conv, summaryText, archivedTotal, agent_id);
      return added;
    })();
  }
}

export function isQuotaRefusal(r: MemoryRecord | QuotaRefusal): r is QuotaRefusal {
  return "quota" in r;
}

interface Row {
  seq: number;
  id: string;
  namespace: string;
  agent_id: string | null;
  kind: MemoryKind;
  text: string;
  tags: string;
  created_at: number;
  bytes: number;
  sha256: string;
}

function toRecord(r: Row): MemoryRecord {
  return {
    id: r.id,
    seq: r.seq,
    namespace: r.namespace,
    agent_id: r.agent_id ?? null,
    kind: r.kind,
    text: r.text,
    tags: JSON.parse(r.tags),
    created_at: new Date(r.created_at).toISOString(),
    bytes: r.bytes,
    sha256: r.sha256,
  };
}

function newId(): string {
  return "mem-" + randomBytes(8).toString("hex");
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

function toVector(blob: Uint8Array): Float32Array {
  const copy = blob.slice(0, blob.byteLength - (blob.byteLength % 4)); // aligned, own buffer
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}
