// kernel/approval/index.ts through ApprovalQueue's public API, with a
// recording audit function the test can make fail: every waiter settles
// exactly once, an operator's answer is applied only once it is recorded,
// and pending.json carries what a crash leaves behind to the next boot.
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "aaos-approval-"));
  dirs.push(d);
  return d;
}

/** an audit function that records what it is given, and rejects while failing is set */
function recordingAudit() {
  const records: AuditEventInput[] = [];
  const audit = {
    records,
    failing: false,
    kinds: () => records.map((r) => r.kind),
    fn: async (e: AuditEventInput): Promise<{ seq: number }> => {
      if (audit.failing) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      records.push(e);
      return { seq: records.length };
    },
  };
  return audit;
}

function queue(opts: { dir?: string; timeoutMs?: number } = {}) {
  const audit = recordingAudit();
  const persistErrors: unknown[] = [];
  const requested: ApprovalInfo[] = [];
  const dir = opts.dir ?? dataDir();
  const q = new ApprovalQueue({
    dataDir: dir,
    timeoutMs: opts.timeoutMs ?? 60_000,
    audit: audit.fn,
    onRequested: (info) => requested.push(info),
    onPersistError: (e) => persistErrors.push(e),
  });
  return { q, audit, persistErrors, requested, dir, file: join(dir, "approvals", "pending.json") };
}

/** start a request; resolves its id once it is pending (the waiter's outcome is in `settled`) */
async function ask(q: ApprovalQueue, signal?: AbortSignal) {
  let onPending!: (id: string) => void;
  const pending = new Promise<string>((r) => (onPending = r));
  let settlements = 0;
  const settled = q.request("ag-1", "file_write", { path: "/data/x" }, signal, onPending).then(
    () => {
      settlements++;
      return { ok: true as const };
    },
    (e) => {
      settlements++;
      return { ok: false as const, error: e };
    },
  );
  return { id: await pending, settled, settlements: () => settlements };
}

function pendingFile(file: string): ApprovalInfo[] {
  return JSON.parse(readFileSync(file, "utf8"));
}

test("a request is audited and listed; approve resolves the waiter once approval.decided is recorded", async () => {
  const { q, audit, requested, file } = queue();
  const a = await ask(q);
  expect(audit.kinds()).toEqual(["approval.requested"]);
  expect(q.list().map((i) => i.id)).toEqual([a.id]);
  expect(requested.map((i) => i.id)).toEqual([a.id]);
  expect(pendingFile(file).map((i) => i.id)).toEqual([a.id]);

  expect(await q.respond(a.id, "approve")).toEqual({ id: a.id, decision: "approve" });
  expect(await a.settled).toEqual({ ok: true });
  expect(audit.records.at(-1)).toMatchObject({
    kind: "approval.decided",
    approval_id: a.id,
    decision: "approve",
    tool: "file_write",
  });
  expect(q.list()).toEqual([]);
  expect(pendingFile(file)).toEqual([]);
});

test("deny rejects the waiter with -32003 and the operator's reason", async () => {
  const { q, audit } = queue();
  const a = await ask(q);
  await q.respond(a.id, "deny", "not today");
  const r = await a.settled;
  expect(r.ok).toBe(false);
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(r.ok === false && r.error.data).toMatchObject({ approval_id: a.id, reason: "not today" });
  expect(audit.records.at(-1)).toMatchObject({ kind: "approval.decided", decision: "deny", reason: "not today" });
});

test("responding twice, or to an unknown id, is -32007", async () => {
  const { q } = queue();
  const a = await ask(q);
  await q.respond(a.id, "approve");
  await expect(q.respond(a.id, "deny")).rejects.toMatchObject({ code: ErrorCode.NoSuchApproval });
  await expect(q.respond("apr-unknown", "approve")).rejects.toMatchObject({ code: ErrorCode.NoSuchApproval });
  expect(await a.settled).toEqual({ ok: true });
  expect(a.settlements()).toBe(1);
});

test("a decision that cannot be recorded is -32603 and not applied: the approval stays pending and can be answered later", async () => {
  const { q, audit, file } = queue();
  const a = await ask(q);
  audit.failing = true;
  await expect(q.respond(a.id, "approve")).rejects.toMatchObject({ code: ErrorCode.InternalError, data: { id: a.id } });
  expect(q.list().map((i) => i.id)).toEqual([a.id]);
  expect(pendingFile(file).map((i) => i.id)).toEqual([a.id]);
  expect(a.settlements()).toBe(0);

  audit.failing = false;
  await q.respond(a.id, "deny");
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(audit.kinds()).toEqual(["approval.requested", "approval.decided"]);
  expect(q.list()).toEqual([]);
});

test("the timeout denies with -32003, audited as approval.timeout, and settles once", async () => {
  const { q, audit } = queue({ timeoutMs: 30 });
  const a = await ask(q);
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(audit.records.at(-1)).toMatchObject({ kind: "approval.timeout", approval_id: a.id, decision: "deny" });
  // nothing can settle it again
  await expect(q.respond(a.id, "approve")).rejects.toMatchObject({ code: ErrorCode.NoSuchApproval });
  await Bun.sleep(60);
  expect(a.settlements()).toBe(1);
  expect(audit.kinds().filter((k) => k !== "approval.requested")).toEqual(["approval.timeout"]);
});

test("a timeout that cannot be recorded still denies the waiter, and pending.json keeps the request for the next boot", async () => {
  const { q, audit, file } = queue({ timeoutMs: 30 });
  const a = await ask(q);
  audit.failing = true;
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(q.list()).toEqual([]);
  expect(pendingFile(file).map((i) => i.id)).toEqual([a.id]);
});

test("the agent's stop (abort) denies the waiter, audited as approval.cancelled", async () => {
  const { q, audit } = queue();
  const stop = new AbortController();
  const a = await ask(q, stop.signal);
  stop.abort();
  const r = await a.settled;
  expect(r.ok === false && r.error.code).toBe(ErrorCode.ApprovalDenied);
  expect(audit.records.at(-1)).toMatchObject({ kind: "approval.cancelled", approval_id: a.id, decision: "deny" });
  expect(q.list()).toEqual([]);
  expect(a.settlements()).toBe(1);
});

test("a request on an already stopped agent throws the abort's reason and records nothing", async () => {
  const { q, audit } = queue();
  const stop = new AbortController();
  const why = new Error("stopped before asking");
  stop.abort(why);
  await expect(q.request("ag-1", "file_write", {}, stop.signal)).rejects.toBe(why);
  expect(audit.records).toEqual([]);
  expect(q.list()).toEqual([]);
});

test("recover() audits what a previous run left in pending.json as cancelled, then empties it", async () => {
  const dir = dataDir();
  mkdirSync(join(dir, "approvals"));
  const left: ApprovalInfo[] = [
    { id: "apr-1", agent_id: "ag-a", tool: "file_write", input: {}, requested_at: "2026-01-01T00:00:00.000Z" },
    { id: "apr-2", agent_id: "ag-b", tool: "web_fetch", input: {}, requested_at: "2026-01-01T00:00:01.000Z" },
  ];
  writeFileSync(join(dir, "approvals", "pending.json"), JSON.stringify(left));
  const { q, audit, file } = queue({ dir });
  expect(await q.recover()).toBe(2);
  expect(audit.records).toEqual([
    {
      kind: "approval.cancelled",
      agent_id: "ag-a",
      approval_id: "apr-1",
      tool: "file_write",
      reason: "kernel restarted",
    },
    {
      kind: "approval.cancelled",
      agent_id: "ag-b",
      approval_id: "apr-2",
      tool: "web_fetch",
      reason: "kernel restarted",
    },
  ]);
  expect(pendingFile(file)).toEqual([]);
  expect(q.list()).toEqual([]);
});

test("recover() that cannot audit the leftovers rejects and keeps them for the next boot", async () => {
  const dir = dataDir();
  mkdirSync(join(dir, "approvals"));
  const left: ApprovalInfo[] = [
    { id: "apr-1", agent_id: "ag-a", tool: "file_write", input: {}, requested_at: "2026-01-01T00:00:00.000Z" },
  ];
  writeFileSync(join(dir, "approvals", "pending.json"), JSON.stringify(left));
  const first = queue({ dir });
  first.audit.failing = true;
  await expect(first.q.recover()).rejects.toThrow(/ENOSPC/);
  expect(pendingFile(first.file)).toEqual(left);

  const next = queue({ dir });
  expect(await next.q.recover()).toBe(1);
  expect(next.audit.kinds()).toEqual(["approval.cancelled"]);
  expect(pendingFile(next.file)).toEqual([]);
});

test("recover() with no pending.json, or an unreadable one, audits nothing", async () => {
  const none = queue();
  rmSync(none.file, { force: true });
  expect(await none.q.recover()).toBe(0);
  const dir = dataDir();
  mkdirSync(join(dir, "approvals"));
  writeFileSync(join(dir, "approvals", "pending.json"), "{not json");
  const bad = queue({ dir });
  expect(await bad.q.recover()).toBe(0);
  expect(bad.audit.records).toEqual([]);
});

test("pending.json that cannot be written is reported, never thrown into a waiter: every path still settles", async () => {
  // the data directory is a file: approvals/ can be neither made nor written
  const parent = dataDir();
  const notADir = join(parent, "data");
  writeFileSync(notADir, "");
  const { q, persistErrors, file } = queue({ dir: notADir, timeoutMs: 30 });
  expect(persistErrors.length).toBeGreaterThan(0); // the constructor's mkdir

  const approved = await ask(q);
  await q.respond(approved.id, "approve");
  expect(await approved.settled).toEqual({ ok: true });

  const timedOut = await ask(q);
  const t = await timedOut.settled;
  expect(t.ok === false && t.error.code).toBe(ErrorCode.ApprovalDenied);

  const stop = new AbortController();
  const stopped = await ask(q, stop.signal);
  stop.abort();
  const s = await stopped.settled;
  expect(s.ok === false && s.error.code).toBe(ErrorCode.ApprovalDenied);

  expect(persistErrors.length).toBeGreaterThan(3);
  expect(existsSync(file)).toBe(false);
  expect(q.list()).toEqual([]);
});
