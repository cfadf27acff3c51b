// The kernel's memory must not grow with the log: the log keeps the head,
// the open segment and the appends in flight, nothing per record.
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { AuditLog } from "../../../kernel/audit/index.ts";
import { tempDir } from "./temp-dirs.ts";

const t = tempDir();
afterAll(() => t.cleanup());

function structure(log: AuditLog): Record<string, number> {
  // every array, map and set the instance holds, by size
  const sizes: Record<string, number> = {};
  for (const [k, v] of Object.entries(log as unknown as Record<string, unknown>)) {
    if (Array.isArray(v)) sizes[k] = v.length;
    else if (v instanceof Map || v instanceof Set) sizes[k] = v.size;
    else if (v && typeof v === "object" && !(v instanceof Promise)) {
      for (const [k2, v2] of Object.entries(v)) {
        if (Array.isArray(v2)) sizes[`${k}.${k2}`] = v2.length;
        else if (v2 instanceof Map || v2 instanceof Set) sizes[`${k}.${k2}`] = v2.size;
      }
    }
  }
  return sizes;
}

test("200k records with small segments: no per-record state, bounded RSS, query and verify stream", async () => {
  const N = 200_000;
  const WAVE = 2_000;
  const log = await AuditLog.open(t.dir, { segmentRecords: 1_000, registerEnvSecrets: false });
  log.registerSecret("a-registered-secret");
  // ~0.5 KB per record, a distinct string each time: ~90 MB if records were kept
  const payload = (i: number) => String(i).padEnd(400, "p");
  const wave = async (from: number) => {
    const ps = [];
    for (let i = 0; i < WAVE; i++)
      ps.push(
        log.append({
          kind: i % 2 ? "tool.call" : "tool.result",
          agent_id: `agent-${i % 16}`,
          i: from + i,
          payload: payload(from + i),
        }),
      );
    await Promise.all(ps);
  };
  for (let i = 0; i < 20_000; i += WAVE) await wave(i); // warm up
  Bun.gc(true);
  const rss0 = process.memoryUsage().rss;
  const before = structure(log);
  for (let i = 20_000; i < N; i += WAVE) await wave(i);
  Bun.gc(true);
  const rss1 = process.memoryUsage().rss;

  expect(log.head().seq).toBe(N);
  expect(readdirSync(t.dir).filter((n) => n.endsWith(".jsonl"))).toHaveLength(N / 1_000);
  // structure: no collection grew with the log
  const after = structure(log);
  expect(after).toEqual(before);
  for (const size of Object.values(after)) expect(size).toBeLessThanOrEqual(1);
  expect(log.memoryState()).toMatchObject({ queued: 0, secrets: 1, segment_records: 1_000 });
  // and the process did not keep 180k records (~90 MB) around
  if (process.env.AUDIT_MEM_DEBUG) console.log({ rss0, grew: rss1 - rss0, structure: after });
  expect(rss1 - rss0).toBeLessThan(48 * 1024 * 1024);

  // query deep into the log and verify the whole chain, streaming
  const q = await log.query({ since_seq: 150_001, agent_id: "agent-3", limit: 3 });
  expect(q.events.map((e) => e.i)).toEqual([150_003, 150_019, 150_035]);
  const v = await log.verify();
  expect(v).toMatchObject({ ok: true, events: N, head: log.head().hash });
  Bun.gc(true);
  expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 1024 * 1024);
  await log.close();
}, 120_000);
