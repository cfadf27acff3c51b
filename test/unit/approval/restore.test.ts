// ApprovalQueue.recover(keep) and request(..., {id}): approvals a previous
// run left in pending.json survive a restart, with the same id, for agents
// that will be resumed; the resumed request attaches to them. Real files in
// a temp dir, a recording audit function.
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApprovalQueue } from "../../../kernel/approval/index.ts";
import { ErrorCode } from "../../../kernel/errors.ts";
import type { ApprovalInfo, AuditEventInput } from "../../../kernel/services.ts";

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

const A: ApprovalInfo = {
  id: "apr-1",
  agent_id: "ag-a",
  tool: "file_write",
  input: { path: "/data/a" },
  requested_at: "2026-01-01T00:00:00.000Z",
};
const LEFT: ApprovalInfo[] = [
  A,
  { id: "apr-2", agent_id: "ag-b", tool: "web_fetch", input: {}, requested_at: "2026-01-01T00:00:01.000Z" },
];

/** a data dir whose approvals/pending.json holds what a previous run left */
function leftBehind(entries: unknown[] = LEFT): string {
  const d = mkdtempSync(join(tmpdir(), "aaos-approval-restore-"));
  dirs.push(d);
  mkdirSync(join(d, "approvals"));
  writeFileSync(join(d, "approvals", "pending.json"), JSON.stringify(entries));
  return d;
}

function queue(dir: string, timeoutMs = 60_000) {
  const records: AuditEventInput[] = [];
  const audit = { records, failing: false, kinds: () => records.map((r) => r.kind) };
  const requested: ApprovalInfo[] = [];
  const q = new ApprovalQueue({
    dataDir: dir,
    timeoutMs,
    audit: async (e) => {
      if (audit.failing) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      records.push(e);
      return { seq: records.length };
    },
    onRequested: (info) => requested.push(info),
  });
  const file = join(dir, "approvals", "pending.json");
  return { q, audit, requested, file, onDisk: (): ApprovalInfo[] => JSON.parse(readFileSync(file, "utf8")) };
}

const keepAgent = (agentId: string) => (info: ApprovalInfo) => info.agent_id === agentId;

/** start a request; `pending` resolves with the id onPending was told (never, if it settles at once) */
function ask(q: ApprovalQueue, opts: { agentId?: string; tool?: string; id?: string; signal?: AbortSignal } = {}) {
  let onPending!: (id: string) => void;
  const pending = new Promise<string>((r) => (onPending = r));
  const told: string[] = [];
  let settlements = 0;
  const settled = q
    .request(
      opts.agentId ?? "ag-a",
      opts.tool ?? "file_write",
      { path: "/data/a" },
      opts.signal,
      (id) => {
        told.push(id);
        onPending(id);
      },
      opts.id === undefined ? undefined : { id: opts.id },
    )
    .then(
      () => {
        settlements++;
        return { ok: true as const };
      },
      (e) => {
        settlements++;
        return { ok: false as const, error: e };
      },
    );
  return { pending, settled, told, settlements: () => settlements };
}

test("recover(keep) restores the kept entry with the same id, lists it, keeps it on disk, and cancels the rest", async () => {
  const { q, audit, onDisk, requested } = queue(leftBehind());
  const seen: ApprovalInfo[] = [];
  const cancelled = await q.recover((info) => {
    seen.push(info);
    return info.agent_id === "ag-a";
  });
  expect(cancelled).toBe(1);
  expect(seen).toEqual(LEFT);
  expect(q.list()).toEqual([A]);
  expect(onDisk()).toEqual([A]);
  expect(audit.records).toHaveLength(2);
  expect(audit.records).toContainEqual({
    kind: "approval.restored",
    agent_id: "ag-a",
    approval_id: "apr-1",
    tool: "file_write",
  });
  expect(audit.records).toContainEqual({
    kind: "approval.cancelled",
    agent_id: "ag-b",
    approval_id: "apr-2",
    tool: "web_fetch",
    reason: "kernel restarted",
  });
  expect(requested).toEqual([]); // no new request was made
});

test("a restored entry survives a second restart too, still with the same id", async () => {
  const dir = leftBehind();
  const first = queue(dir);
  await first.q.recover(keepAgent("ag-a"));
  const second = queue(dir);
  expect(await second.q.recover(keepAgent("ag-a"))).toBe(0);
  expect(second.q.list()).toEqual([A]);
  expect(second.audit.kinds()).toEqual(["approval.restored"]);
});

test("a request attaching to a restored id is told that id, records no second request, and resolves on approve", async () => {
  const { q, audit, onDisk, requested } = queue(leftBehind());
  await q.recover(keepAgent("ag-a"));
  const a = ask(q, { id: "apr-1" });
  expect(await a.pending).toBe("apr-1");
  expect(a.told).toEqual(["apr-1"]);
  expect(audit.kinds()).not.toContain("approval.requested");
  expect(requested).toEqual([]);
  expect(q.list().map((i) => i.id)).toEqual(["apr-1"]);

  expect(await q.respond("apr-1", "approve")).toEqual({ id: "apr-1", decision: "approve" });
  expect(await a.settled).toEqual({ ok: true });
  expect(audit.records.at(-1)).toMatchObject({
    kind: "approval.decided",
    agent_id: "ag-a",
    approval_id: "apr-1",
    tool: "file_write",
    decision: "approve",
  });
  expect(q.list()).toEqual([]);
  expect(onDisk()).toEqual([]);
  expect(a.settlements()).toBe(1);
});

test("an attached restored entry denied by the operator rejects with -32003 as today", async () => {
  const { q } = queue(leftBehind());
  await q.recover(keepAgent("ag-a"));
  const a = ask(q, { id: "apr-1" });
  await a.pending;
  await q.respond("apr-1", "deny", "not today");
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(r.ok === false && r.error.data).toMatchObject({ approval_id: "apr-1", reason: "not today" });
});

test("a decision made before anyone attached is kept: the attaching request settles at once with it", async () => {
  const { q, audit, onDisk } = queue(leftBehind([A, { ...A, id: "apr-3" }]));
  await q.recover(keepAgent("ag-a"));

  await q.respond("apr-1", "approve");
  await q.respond("apr-3", "deny", "no");
  expect(audit.records.filter((r) => r.kind === "approval.decided").map((r) => r.approval_id)).toEqual([
    "apr-1",
    "apr-3",
  ]);
  expect(q.list()).toEqual([]);
  expect(onDisk()).toEqual([]);
  await expect(q.respond("apr-1", "deny")).rejects.toMatchObject({ code: ErrorCode.NoSuchApproval });

  const approved = ask(q, { id: "apr-1" });
  expect(await approved.settled).toEqual({ ok: true });
  const denied = ask(q, { id: "apr-3" });
  const r = await denied.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(r.ok === false && r.error.data).toMatchObject({ approval_id: "apr-3", reason: "no" });
  expect(approved.told).toEqual([]);
  expect(denied.told).toEqual([]);
  expect(audit.kinds()).not.toContain("approval.requested");

  // the kept decision is given once: asking again with that id is a new request
  const again = ask(q, { id: "apr-1" });
  const fresh = await again.pending;
  expect(fresh).not.toBe("apr-1");
  expect(audit.records.at(-1)).toMatchObject({ kind: "approval.requested", approval_id: fresh });
});

test("entries keep does not accept, or recover() without keep, are cancelled as before", async () => {
  const none = queue(leftBehind());
  expect(await none.q.recover(() => false)).toBe(2);
  expect(none.audit.kinds()).toEqual(["approval.cancelled", "approval.cancelled"]);
  expect(none.q.list()).toEqual([]);
  expect(none.onDisk()).toEqual([]);

  const noKeep = queue(leftBehind());
  expect(await noKeep.q.recover()).toBe(2);
  expect(noKeep.audit.kinds()).toEqual(["approval.cancelled", "approval.cancelled"]);
  expect(noKeep.onDisk()).toEqual([]);

  // a cancelled id is unknown: asking with it is a new request
  const a = ask(noKeep.q, { id: "apr-1" });
  expect(await a.pending).not.toBe("apr-1");
});

test("an entry whose waiter was settled but whose outcome went unrecorded is cancelled, never restored", async () => {
  const dir = leftBehind([]);
  const before = queue(dir, 20);
  const a = ask(before.q, { agentId: "ag-a" });
  const id = await a.pending;
  before.audit.failing = true; // the timeout cannot be recorded
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(before.onDisk().map((i) => i.id)).toEqual([id]);

  const after = queue(dir);
  expect(await after.q.recover(() => true)).toBe(1);
  expect(after.audit.records).toEqual([
    { kind: "approval.cancelled", agent_id: "ag-a", approval_id: id, tool: "file_write", reason: "kernel restarted" },
  ]);
  expect(after.q.list()).toEqual([]);
});

test("a restored entry nobody attaches to times out, audited, and leaves pending.json", async () => {
  const { q, audit, onDisk } = queue(leftBehind(), 30);
  await q.recover(keepAgent("ag-a"));
  expect(q.list().map((i) => i.id)).toEqual(["apr-1"]);
  await Bun.sleep(80);
  expect(audit.records.at(-1)).toMatchObject({
    kind: "approval.timeout",
    agent_id: "ag-a",
    approval_id: "apr-1",
    decision: "deny",
  });
  expect(q.list()).toEqual([]);
  expect(onDisk()).toEqual([]);
  await expect(q.respond("apr-1", "approve")).rejects.toMatchObject({ code: ErrorCode.NoSuchApproval });
});

test("the timeout of a restored entry counts from recover and denies the attached waiter", async () => {
  const { q, audit } = queue(leftBehind(), 200);
  await q.recover(keepAgent("ag-a"));
  await Bun.sleep(150);
  const a = ask(q, { id: "apr-1" });
  expect(await a.pending).toBe("apr-1");
  const started = Date.now();
  const r = await a.settled;
  expect(Date.now() - started).toBeLessThan(150); // about 50 ms left, not a fresh 200 ms from the attach
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(audit.kinds().filter((k) => k === "approval.timeout")).toHaveLength(1);
});

test("the attached waiter's stop cancels the restored entry as today", async () => {
  const { q, audit, onDisk } = queue(leftBehind());
  await q.recover(keepAgent("ag-a"));
  const stop = new AbortController();
  const a = ask(q, { id: "apr-1", signal: stop.signal });
  await a.pending;
  stop.abort();
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(audit.records.at(-1)).toMatchObject({ kind: "approval.cancelled", approval_id: "apr-1", decision: "deny" });
  expect(q.list()).toEqual([]);
  expect(onDisk()).toEqual([]);
  expect(a.settlements()).toBe(1);
});

test("an unknown id, or one of another agent or tool, or one already attached, makes a new request", async () => {
  const { q, audit, requested } = queue(leftBehind());
  await q.recover(keepAgent("ag-a"));
  const base = audit.records.length;

  const unknown = ask(q, { id: "apr-nope" });
  const otherAgent = ask(q, { id: "apr-1", agentId: "ag-z" });
  const otherTool = ask(q, { id: "apr-1", tool: "web_fetch" });
  const ids = await Promise.all([unknown.pending, otherAgent.pending, otherTool.pending]);
  for (const id of ids) expect(id).toMatch(/^apr-[0-9a-f]{16}$/);
  expect(new Set(ids).size).toBe(3);
  expect(
    audit.records
      .slice(base)
      .filter((r) => r.kind === "approval.requested")
      .map((r) => r.approval_id)
      .sort(),
  ).toEqual([...ids].sort());
  expect(requested.map((i) => i.id).sort()).toEqual([...ids].sort());

  const first = ask(q, { id: "apr-1" });
  expect(await first.pending).toBe("apr-1");
  const second = ask(q, { id: "apr-1" });
  expect(await second.pending).not.toBe("apr-1");

  expect(q.list().map((i) => i.id)).toContain("apr-1");
  expect(q.list()).toHaveLength(5);
});

test("recover(keep) that cannot record approval.restored rejects, restores nothing, and keeps the file", async () => {
  const dir = leftBehind();
  const first = queue(dir);
  first.audit.failing = true;
  await expect(first.q.recover(keepAgent("ag-a"))).rejects.toThrow(/ENOSPC/);
  expect(first.q.list()).toEqual([]);
  expect(first.onDisk()).toEqual(LEFT);

  const next = queue(dir);
  expect(await next.q.recover(keepAgent("ag-a"))).toBe(1);
  expect(next.q.list()).toEqual([A]);
});
