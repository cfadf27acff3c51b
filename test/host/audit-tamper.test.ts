// Tampering with the end of the audit log between two kernel runs: editing
// the last records, or deleting the newest segment, is reported by
// audit.verify over the socket (ok: false, for good), and no seq is handed
// out twice. A clean restart reports nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

const ECHOER = "name: echoer\nmodel: claude-haiku-4-5-20251001\ncapabilities: [echo]\n";
const manifests = { echoer: ECHOER };

let k: RunningKernel;
let dir: string;
const auditDir = () => join(dir, "data", "audit");
const segs = () =>
  readdirSync(auditDir())
    .filter((f) => f.endsWith(".jsonl"))
    .sort();
const call = (m: string, p: object = {}) => k.client.call(m, p);
const all = async () => (await call("audit.query", { limit: 1000 })).events as any[];
/** the head the last run left, as its HEAD file says */
const anchored = () => {
  const m = /^aaos-audit-head 1 (\d{20}) ([0-9a-f]{64}) /.exec(readFileSync(join(auditDir(), "HEAD"), "latin1"))!;
  return { seq: Number(m[1]), hash: m[2]! };
};

afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

async function restart() {
  await k.stop();
  k = await startKernel({ dir, manifests });
}

describe("audit tampering between two kernel runs", () => {
  test("a clean restart: verify ok, the anchor is the last record, nothing quarantined or reported", async () => {
    k = await startKernel({ manifests });
    dir = k.dir;
    const a = await call("agent.spawn", { name: "echoer" });
    await call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "before" } });
    await restart();
    const v = await call("audit.verify");
    expect(v).toMatchObject({ ok: true, quarantined: [], tampered: [], unanchored: [] });
    expect(v.broken).toBeUndefined();
    expect(v.anchor.seq).toBeLessThanOrEqual((await call("system.info")).audit_head.seq);
  });

  test("the last records edited while the kernel was down: verify reports it, the seqs are not reused", async () => {
    await k.stop();
    const before = anchored();
    const path = join(auditDir(), segs().at(-1)!);
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    const last = JSON.parse(lines.at(-1)!);
    expect(last).toMatchObject({ seq: before.seq, kind: "system.stop", hash: before.hash });
    lines[lines.length - 1] = lines.at(-1)!.replace('"kind":"system.stop"', '"kind":"system.stip"');
    writeFileSync(path, lines.join("\n") + "\n");

    k = await startKernel({ dir, manifests });
    const v = await call("audit.verify");
    expect(v.ok).toBe(false);
    expect(v.broken.seq).toBe(before.seq);
    expect(v.broken.reason).toMatch(
      /^tampered: the log ends at seq \d+ but its head anchor \(HEAD\) names seq \d+: acknowledged record \d+ was cut, edited or deleted/,
    );
    expect(v.tampered).toEqual([
      {
        record: before.seq + 1,
        anchor: before,
        found: { seq: before.seq - 1, hash: last.prev },
        missing: [before.seq, before.seq],
        reason: expect.any(String),
      },
    ]);
    const file = v.quarantined[0]?.file; // (read before toMatchObject: bun writes its matchers into arrays it matched)
    expect(v.quarantined).toMatchObject([
      {
        segment: segs()[0],
        seqs: [before.seq, before.seq],
        acknowledged: true,
        record: before.seq + 2,
        file: expect.stringMatching(/^quarantine\//),
      },
    ]);
    // what was at the tail is kept for an investigator
    expect(readFileSync(join(auditDir(), file), "utf8")).toContain('"kind":"system.stip"');
    const evs = await all();
    const seqs = evs.map((e) => e.seq);
    expect(seqs).not.toContain(before.seq); // cut, and never handed out again
    expect(evs.find((e) => e.seq === before.seq + 1)).toMatchObject({ kind: "audit.tampered" });
    expect(evs.find((e) => e.kind === "system.boot" && e.seq > before.seq)).toBeDefined();
    expect((await call("system.info")).degraded).toBeNull();
  });

  test("the newest segment deleted while the kernel was down: reported too, numbering continues after the anchor", async () => {
    await k.stop();
    const before = anchored();
    const files = segs();
    expect(files.length).toBe(2); // the first run's, and the one that started after the cut
    unlinkSync(join(auditDir(), files.at(-1)!));

    k = await startKernel({ dir, manifests });
    const v = await call("audit.verify");
    expect(v.ok).toBe(false);
    const t = v.tampered.at(-1);
    expect(t).toMatchObject({ anchor: before, record: before.seq + 1 });
    expect(t.missing[1]).toBe(before.seq);
    expect(v.broken.reason).toMatch(/^tampered: /);
    const evs = await all();
    const first = evs.find((e) => e.seq > t.found.seq)!;
    expect(first).toMatchObject({ seq: before.seq + 1, kind: "audit.tampered" });
    // seqs strictly increase and none of the deleted ones comes back
    for (const e of evs) expect(e.seq <= t.found.seq || e.seq > before.seq).toBe(true);
    const a = await call("agent.spawn", { name: "echoer" });
    expect(a.agent_id).toMatch(/^ag-/);
    expect((await call("system.info")).audit_head.seq).toBeGreaterThan(before.seq + 1);

    // and it stays reported: a clean restart adds no report and does not clear it
    await restart();
    const v2 = await call("audit.verify");
    expect(v2).toMatchObject({ ok: false, broken: v.broken });
    expect(v2.tampered).toEqual(v.tampered);
  });
});
