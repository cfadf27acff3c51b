// kernel/memory: agent memory as a kernel service (docs/memory.md). The
// episodic store (store.ts: bun:sqlite <data>/state/memory.db, FTS5),
// pinned blocks, conversation summaries and the archive of compacted turns
// (compact.ts), metered by quotas and audited. This module is the policy
// around the store: which namespace a caller reaches, the quotas of
// kernel.yaml `memory:`, the audit record of every write and delete (a write
// is acknowledged only once its record is durable; if the record cannot be
// written the write is undone), and the lifetime of an agent's own memory.
//
// Capability checks are the kernel's (kernel.ts, before it calls here): a
// MemoryService method is given the namespaces the caller may reach.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import type { Logger } from "pino";
import type { MemoryConfig } from "../config.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import type { ConversationMessage } from "../llm/providers/types.ts";
import { blockChars, parseDuration } from "../manifest/index.ts";
import type { AuditEventInput } from "../services.ts";
import { renderMessage } from "./compact.ts";
import type { Embed } from "./embeddings.ts";
import { MemoryStore, type MemoryKind, type MemoryRecord, type SearchHit } from "./store.ts";

export { MemoryStore, type MemoryKind, type MemoryRecord, type SearchHit } from "./store.ts";
export {
  chooseCut,
  contextWindowFor,
  estimateTokens,
  fallbackSummary,
  memorySystemPrompt,
  renderMessage,
  summaryPrompt,
  BYTES_PER_TOKEN,
} from "./compact.ts";
export { embeddingsClient, type Embed } from "./embeddings.ts";

/** an agent's own memory: a namespace no capability or tool input can name (the colon) */
export function ownNamespace(agentId: string): string {
  return `agent:${agentId}`;
}

export function isOwnNamespace(ns: string): boolean {
  return ns.startsWith("agent:");
}

/** the agent an own namespace belongs to */
export function ownerOf(ns: string): string | null {
  return isOwnNamespace(ns) ? ns.slice("agent:".length) : null;
}

/** a page of memory.export: at most this much JSONL */
export const EXPORT_PAGE_BYTES = 512 * 1024;

export interface MemoryDeps {
  file: string;
  config: MemoryConfig;
  audit: (e: AuditEventInput) => Promise<{ seq: number }>;
  log: Logger;
  embed?: Embed | undefined;
}

export interface Block {
  label: string;
  limit: number;
  value: string;
}

export class MemoryService {
  private handle: MemoryStore | null = null;
  readonly halfLifeMs: number;

  constructor(private readonly deps: MemoryDeps) {
    this.halfLifeMs = parseDuration(deps.config.recency_half_life)!;
  }

  /** opened on first use: a kernel whose agents never touch memory never creates the file */
  store(): MemoryStore {
    return (this.handle ??= new MemoryStore(this.deps.file));
  }

  close(): void {
    try {
      this.handle?.close();
    } catch (err) {
      this.deps.log.error({ err }, "could not close the memory store");
    }
    this.handle = null;
  }

  private quotaFor(ns: string): { records: number; bytes: number } {
    const q = this.deps.config.quota;
    if (isOwnNamespace(ns)) return q.agent;
    return q.namespaces[ns] ?? q.namespace;
  }

  /** a note, in one namespace; durable and audited when it resolves */
  async add(
    writer: string | null,
    ns: string,
    text: string,
    tags: string[],
  ): Promise<{ id: string; namespace: string | null; bytes: number; sha256: string }> {
    const bytes = Buffer.byteLength(text);
    const max = this.deps.config.max_record_bytes;
    if (bytes > max)
      throw new KernelError(
        ErrorCode.InvalidParams,
        `the text is ${bytes} bytes; one memory record holds at most ${max} (kernel.yaml memory.max_record_bytes)`,
        { bytes, limit: max },
      );
    if (!isOwnNamespace(ns) && this.store().usage(ns).records === 0) {
      const named = this.store()
        .namespaces()
        .filter((n) => !isOwnNamespace(n.namespace)).length;
      const max = this.deps.config.max_namespaces;
      if (named >= max)
        throw new KernelError(
          ErrorCode.QuotaExceeded,
          `quota exceeded: ${named} shared namespaces exist, at most ${max} may (kernel.yaml memory.max_namespaces); "${ns}" would be one more`,
          { namespace: ns, quota: "namespaces", limit: max, used: named },
        );
    }
    const vector = this.deps.embed ? await this.deps.embed(text) : null;
    const quota = this.quotaFor(ns);
    const r = this.store().add(
      { namespace: ns, agent_id: writer, kind: "note", text, tags, ...(vector ? { vector } : {}) },
      quota,
    );
    if ("quota" in r) {
      const whose = isOwnNamespace(ns) ? `the agent's own memory` : `namespace "${ns}"`;
      const key = isOwnNamespace(ns)
        ? "memory.quota.agent"
        : this.deps.config.quota.namespaces[ns]
          ? `memory.quota.namespaces.${ns}`
          : "memory.quota.namespace";
      throw new KernelError(
        ErrorCode.QuotaExceeded,
        r.quota === "records"
          ? `quota exceeded: ${whose} holds ${r.used} records, its limit is ${r.limit} (kernel.yaml ${key}.records); delete some with memory_delete`
          : `quota exceeded: ${whose} would hold ${r.used} bytes, its limit is ${r.limit} (kernel.yaml ${key}.bytes); delete some with memory_delete`,
        { namespace: shown(ns), quota: r.quota, limit: r.limit, used: r.used },
      );
    }
    try {
      await this.deps.audit({
        kind: "memory.store",
        agent_id: writer,
        id: r.id,
        namespace: shown(ns),
        owner: ownerOf(ns),
        bytes: r.bytes,
        sha256: r.sha256,
        tags: r.tags,
      });
    } catch (e) {
      // not acknowledged: not kept
      this.undo(r.id);
      throw notRecorded("memory.store", e);
    }
    return { id: r.id, namespace: shown(ns), bytes: r.bytes, sha256: r.sha256 };
  }

  private undo(id: string): void {
    try {
      this.store().delete(id);
    } catch (err) {
      this.deps.log.error({ err, id }, "could not undo a memory write whose audit record failed");
    }
  }

  get(id: string): MemoryRecord | null {
    return this.store().get(id);
  }

  /** a record the caller may delete (checked by the kernel); audited with its hash */
  async delete(by: string | null, rec: MemoryRecord): Promise<{ id: string; deleted: true }> {
    // recorded first: a delete that cannot be audited does not happen
    try {
      await this.deps.audit({
        kind: "memory.delete",
        agent_id: by,
        id: rec.id,
        namespace: shown(rec.namespace),
        owner: ownerOf(rec.namespace),
        record_kind: rec.kind,
        bytes: rec.bytes,
        sha256: rec.sha256,
      });
    } catch (e) {
      throw notRecorded("memory.delete", e);
    }
    this.store().delete(rec.id);
    return { id: rec.id, deleted: true };
  }

  async search(q: {
    namespaces: string[];
    query: string;
    k: number;
    tags?: string[] | undefined;
    since?: number | undefined;
    kinds?: MemoryKind[] | undefined;
  }): Promise<SearchHit[]> {
    if (q.namespaces.length === 0) return [];
    const queryVector = this.deps.embed ? await this.deps.embed(q.query) : null;
    return this.store().search({
      namespaces: q.namespaces,
      query: q.query,
      k: q.k,
      halfLifeMs: this.halfLifeMs,
      ...(q.tags?.length ? { tags: q.tags } : {}),
      ...(q.since !== undefined ? { since: q.since } : {}),
      ...(q.kinds ? { kinds: q.kinds } : {}),
      ...(queryVector ? { queryVector } : {}),
    });
  }

  // ---- pinned blocks ------------------------------------------------------

  initBlocks(agentId: string, blocks: readonly Block[]): void {
    if (blocks.length > 0) this.store().initBlocks(agentId, [...blocks]);
  }

  blocks(agentId: string): Block[] {
    return this.store().blocks(agentId);
  }

  async setBlock(
    agentId: string,
    label: string,
    value: string,
  ): Promise<{ label: string; chars: number; limit: number }> {
    const s = this.store();
    const cur = s.blocks(agentId).find((b) => b.label === label);
    if (!cur) {
      const labels = s.blocks(agentId).map((b) => b.label);
      throw new KernelError(
        ErrorCode.InvalidParams,
        labels.length
          ? `no pinned block labelled "${label}" (this agent's blocks: ${labels.join(", ")})`
          : `this agent has no pinned blocks (its manifest's memory.blocks lists none)`,
        { label },
      );
    }
    const chars = blockChars(value);
    if (chars > cur.limit)
      throw new KernelError(
        ErrorCode.InvalidParams,
        `block "${label}" holds at most ${cur.limit} characters; the value has ${chars}: shorten it`,
        { label, limit: cur.limit, chars },
      );
    const r = s.setBlock(agentId, label, value);
    try {
      await this.deps.audit({
        kind: "memory.block",
        agent_id: agentId,
        label,
        chars,
        limit: cur.limit,
        sha256: sha256(value),
        previous_sha256: r?.previous_sha256 ?? sha256(cur.value),
      });
    } catch (e) {
      s.setBlock(agentId, label, cur.value);
      throw notRecorded("memory.block", e);
    }
    return { label, chars, limit: cur.limit };
  }

  // ---- compaction ---------------------------------------------------------

  summary(conv: string): string | null {
    return this.store().summary(conv)?.text ?? null;
  }

  /**
   * The first step of a compaction: the archived messages (keyed by their
   * ordinal in the conversation, so doing it again after a crash adds
   * nothing twice) and the new summary, in one transaction. The caller then
   * removes the messages from the conversation; a crash between the two
   * leaves them in both places, never in neither.
   */
  archive(
    agentId: string,
    conv: string,
    first: number,
    msgs: ConversationMessage[],
    itemOf: (i: number) => string,
    summary: string,
  ): { added: number; sha256: string } {
    const rows = msgs.map((m, i) => ({
      key: `${conv}:${first + i}`,
      text: renderMessage(m),
      tags: ["archive", `item:${itemOf(i)}`],
    }));
    const added = this.store().compact(ownNamespace(agentId), agentId, conv, rows, summary, first + msgs.length);
    // the audit's hash of what was archived: sha256 over each archived text's sha256, one per line
    const digest = createHash("sha256");
    for (const r of rows) digest.update(sha256(r.text) + "\n");
    return { added, sha256: digest.digest("hex") };
  }

  /** past memory.archive_bytes the oldest archived turns of the agent go, audited */
  async pruneArchive(agentId: string): Promise<void> {
    const ns = ownNamespace(agentId);
    const pruned = this.store().pruneArchive(ns, this.deps.config.archive_bytes);
    if (pruned.records === 0) return;
    await this.deps
      .audit({
        kind: "memory.prune",
        agent_id: agentId,
        records: pruned.records,
        bytes: pruned.bytes,
        // sha256 over the pruned records' sha256s (one per line, oldest first)
        sha256: pruned.sha256,
        limit: this.deps.config.archive_bytes,
      })
      .catch((err) => this.deps.log.error({ err, agent_id: agentId }, "memory.prune was not recorded"));
  }

  // ---- lifetime -----------------------------------------------------------

  /** everything of one agent: its own records, blocks and summaries (the kernel no longer knows the agent) */
  forget(agentId: string, why: string): void {
    if (!this.handle && !storeExists(this.deps.file)) return;
    let r: { records: number; bytes: number; sha256: string };
    try {
      r = this.store().forget(ownNamespace(agentId), agentId);
    } catch (err) {
      this.deps.log.error({ err, agent_id: agentId }, "could not forget an agent's memory");
      return;
    }
    if (r.records === 0) return;
    this.deps
      .audit({
        kind: "memory.forget",
        agent_id: agentId,
        records: r.records,
        bytes: r.bytes,
        // sha256 over the forgotten records' sha256s (one per line, oldest first)
        sha256: r.sha256,
        reason: why,
      })
      .catch((err) => this.deps.log.error({ err, agent_id: agentId }, "memory.forget was not recorded"));
  }

  /** at boot: the own memory of every agent that is not resumed (a session agent of an earlier boot) */
  sweep(keep: ReadonlySet<string>): void {
    if (!storeExists(this.deps.file)) return;
    for (const n of this.store().namespaces()) {
      const owner = ownerOf(n.namespace);
      if (owner !== null && !keep.has(owner)) this.forget(owner, "not resumed at boot");
    }
  }

  // ---- the operator's reads -------------------------------------------------

  list(q: {
    namespaces?: string[] | undefined;
    kind?: MemoryKind | undefined;
    after_seq?: number | undefined;
    limit: number;
  }) {
    if (!storeExists(this.deps.file) && !this.handle) return { records: [], next_seq: null };
    const records = this.store().list(q);
    return {
      records: records.map(wire),
      next_seq: records.length === q.limit ? records[records.length - 1]!.seq : null,
    };
  }

  export(q: { namespaces?: string[] | undefined; after_seq?: number | undefined }) {
    if (!storeExists(this.deps.file) && !this.handle) return { jsonl: "", records: 0, next_seq: null };
    let jsonl = "";
    let count = 0;
    let after = q.after_seq;
    while (true) {
      const page = this.store().list({ ...q, ...(after === undefined ? {} : { after_seq: after }), limit: 200 });
      for (const r of page) {
        const line = JSON.stringify(wire(r)) + "\n";
        if (count > 0 && jsonl.length + line.length > EXPORT_PAGE_BYTES)
          return { jsonl, records: count, next_seq: after! };
        jsonl += line;
        count++;
        after = r.seq;
      }
      if (page.length < 200) return { jsonl, records: count, next_seq: null };
    }
  }

  namespaces() {
    if (!storeExists(this.deps.file) && !this.handle) return [];
    return this.store()
      .namespaces()
      .map((n) => ({
        ...n,
        namespace: shown(n.namespace),
        owner: ownerOf(n.namespace),
        quota: this.quotaFor(n.namespace),
      }));
  }
}

function storeExists(file: string): boolean {
  return existsSync(file);
}

/** an own namespace is shown as null with its owner beside it; a named one by its name */
function shown(ns: string): string | null {
  return isOwnNamespace(ns) ? null : ns;
}

/** a record as the API shows it */
export function wire(r: MemoryRecord | SearchHit) {
  return { ...r, namespace: shown(r.namespace), owner: ownerOf(r.namespace) };
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

function notRecorded(kind: string, cause: unknown): KernelError {
  return new KernelError(
    ErrorCode.InternalError,
    `${kind} could not be recorded in the audit log (${(cause as Error)?.message ?? String(cause)}); nothing was changed`,
  );
}
