// aaosctl audit at scale against a real host-mode kernel, each verb run as
// its own process: --tail N (the newest, paging back from the head), audit
// export (every record as JSONL through a pipe), --limit past one query's
// 1000, and the record kinds in audit --help. The log is filled the way an
// operator fills it: tool.invoke of echo on a spawned agent, two records
// (tool.call, tool.result) a call; no model is called.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { AUDIT_KINDS } from "../../kernel/audit/kinds.ts";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl, CliProcess, MAIN } from "./run-cli.ts";

setDefaultTimeout(60_000);

const MODEL = "claude-haiku-4-5-20251001";
const CALLS = 2000;

let k: RunningKernel;
let S: string[];
let agent: string;
let head: number;

type Ev = { seq: number; kind: string; agent_id: string | null; [k: string]: unknown };

const cli = (...args: string[]) => aaosctl([...S, ...args], { timeoutMs: 60_000 });

async function headSeq(): Promise<number> {
  const info = await k.client.call<{ audit_head: { seq: number } }>("system.info", {});
  return info.audit_head.seq;
}

/** the seq of each printed event line: "  123  2025-… agent.spawn …" */
function seqsOf(stdout: string): number[] {
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

beforeAll(async () => {
  k = await startKernel({
    manifests: { echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities:\n  - echo\n` },
  });
  S = ["--socket", k.socket];
  const r = await cli("spawn", "echoer", "--json");
  expect(r.code).toBe(0);
  agent = JSON.parse(r.stdout).agent_id;
  for (let i = 0; i < CALLS; i += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, CALLS - i) }, (_, j) =>
        k.client.call("tool.invoke", { agent_id: agent, tool: "echo", input: { message: `m${i + j}` } }),
      ),
    );
  head = await headSeq();
  expect(head).toBeGreaterThan(2 * CALLS);
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

describe("audit --tail", () => {
  test("--tail 5 prints exactly the 5 newest records, oldest first", async () => {
    const r = await cli("audit", "--tail", "5");
    expect(r.code).toBe(0);
    expect(seqsOf(r.stdout)).toEqual([head - 4, head - 3, head - 2, head - 1, head]);
    const j = JSON.parse((await cli("audit", "--tail", "5", "--json")).stdout) as { events: Ev[]; next_seq: number };
    expect(j.events.map((e) => e.seq)).toEqual([head - 4, head - 3, head - 2, head - 1, head]);
    expect(j.next_seq).toBe(head + 1);
  });

  test("--tail 1500 --kind tool.result: 1500 tool.result records ending at the newest, paging back past 1000", async () => {
    const r = await cli("audit", "--tail", "1500", "--kind", "tool.result", "--json");
    expect(r.code).toBe(0);
    const { events } = JSON.parse(r.stdout) as { events: Ev[] };
    expect(events.length).toBe(1500);
    expect(events.every((e) => e.kind === "tool.result")).toBe(true);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    // the newest tool.result is the last one, and none newer was left out
    const newest = await k.client.call<{ events: Ev[] }>("audit.query", {
      kind: "tool.result",
      since_seq: seqs.at(-1)!,
    });
    expect(newest.events.map((e) => e.seq)).toEqual([seqs.at(-1)!]);
    // and none between the first and the last was skipped
    const between = await k.client.call<{ events: Ev[] }>("audit.query", {
      kind: "tool.result",
      since_seq: seqs[0]!,
      limit: 1000,
    });
    expect(between.events.map((e) => e.seq)).toEqual(seqs.slice(0, 1000));
    // in text: one line each
    const t = await cli("audit", "--tail", "1500", "--kind", "tool.result", "--agent", agent);
    expect(t.code).toBe(0);
    expect(seqsOf(t.stdout)).toEqual(seqs);
  });

  test("--tail more than the log holds gives all of it; a filter with few matches pages back to seq 1", async () => {
    const spawns = JSON.parse((await cli("audit", "--tail", "10", "--kind", "agent.spawn", "--json")).stdout);
    expect(spawns.events.map((e: Ev) => e.kind)).toEqual(["agent.spawn"]);
    const boot = JSON.parse((await cli("audit", "--tail", "3", "--kind", "system.*", "--json")).stdout);
    expect(boot.events.length).toBeGreaterThan(0);
    expect(boot.events.every((e: Ev) => e.kind.startsWith("system."))).toBe(true);
  });

  test("--tail N --follow: the N newest, then what is logged after", async () => {
    const now = await headSeq();
    const follow = new CliProcess([...S, "audit", "--tail", "2", "--follow", "--interval", "100", "--json"]);
    await follow.waitFor(`"seq":${now}`);
    await k.client.call("tool.invoke", { agent_id: agent, tool: "echo", input: { message: "after the tail" } });
    await follow.waitFor(`"seq":${now + 2}`); // its tool.result
    follow.signal("SIGINT");
    expect(await follow.exited).toBe(0);
    const seqs = follow.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).seq);
    expect(seqs.slice(0, 2)).toEqual([now - 1, now]);
    expect(seqs.slice(2)).toEqual([now + 1, now + 2]);
  });

  test("a bad --tail value is a usage error (exit 2)", async () => {
    for (const bad of ["0", "-3", "abc", "100001", "2.5"]) {
      const r = await cli("audit", "--tail", bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("--tail");
    }
    const mix = await cli("audit", "--tail", "5", "--limit", "5");
    expect(mix.code).toBe(2);
  });
});

describe("audit --limit past 1000", () => {
  test("--limit 2500 pages internally: the oldest 2500, from seq 1", async () => {
    const r = await cli("audit", "--limit", "2500", "--json");
    expect(r.code).toBe(0);
    const { events, next_seq } = JSON.parse(r.stdout) as { events: Ev[]; next_seq: number };
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(next_seq).toBe(2501);
    const t = await cli("audit", "--limit", "1200", "--since", "100");
    expect(t.code).toBe(0);
    expect(seqsOf(t.stdout)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 100));
    expect(t.stderr).toContain("--since 1300");
  });
});

describe("audit export", () => {
  test("every record as JSONL through a pipe: count = head, seqs 1..head in order, nothing else on stdout", async () => {
    const now = await headSeq();
    // as a shell pipeline would: aaosctl's stdout is a pipe read slowly by another process
    const proc = Bun.spawn(
      ["sh", "-c", `"$0" "$1" --socket "$2" audit export | (sleep 1; cat)`, process.execPath, MAIN, k.socket],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect(code).toBe(0);
    const lines = out.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBe(now);
    const seqs = lines.map((l) => (JSON.parse(l) as Ev).seq);
    expect(seqs).toEqual(Array.from({ length: now }, (_, i) => i + 1));
    const first = JSON.parse(lines[0]!);
    expect(typeof first.hash).toBe("string");
    expect(err).toContain(`${now} audit records exported`);
    expect(out.length).toBeGreaterThan(200_000);
  });

  test("--kind tool.* --since N: only tool records from seq N", async () => {
    const since = 1000;
    const r = await cli("audit", "export", "--kind", "tool.*", "--since", String(since));
    expect(r.code).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Ev);
    expect(events.length).toBeGreaterThan(1000);
    expect(events.every((e) => e.kind === "tool.call" || e.kind === "tool.result")).toBe(true);
    expect(events[0]!.seq).toBeGreaterThanOrEqual(since);
    expect(events.some((e) => e.kind === "tool.call") && events.some((e) => e.kind === "tool.result")).toBe(true);
    // the same set as the kernel gives, page by page
    const all: Ev[] = [];
    for (let s = since; ;) {
      const p = await k.client.call<{ events: Ev[]; next_seq: number }>("audit.query", {
        kind: "tool.*",
        since_seq: s,
        limit: 1000,
      });
      all.push(...p.events);
      if (p.events.length < 1000) break;
      s = p.next_seq;
    }
    expect(events.map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    expect(r.stderr).toContain(`${events.length} audit records exported`);
  });

  test("--agent filters; an unknown kind exports nothing and says which kinds exist", async () => {
    const mine = await cli("audit", "export", "--agent", agent, "--kind", "agent.spawn");
    expect(
      mine.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).kind),
    ).toEqual(["agent.spawn"]);
    const none = await cli("audit", "export", "--kind", "tool.invoke");
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("");
    expect(none.stderr).toContain("0 audit records exported");
    expect(none.stderr).toContain('no record kind is named "tool.invoke"');
    const bad = await cli("audit", "export", "--tail", "5");
    expect(bad.code).toBe(2);
  });
});

describe("audit --help", () => {
  test("lists every record kind, grouped by what PREFIX.* matches; the examples match real kinds", async () => {
    const r = await aaosctl(["audit", "--help"]);
    expect(r.code).toBe(0);
    for (const kind of AUDIT_KINDS)
      expect(r.stdout).toMatch(new RegExp(`(^|\\s)${kind.replace(".", "\\.")}(\\s|$)`, "m"));
    for (const kind of ["agent.spawn", "memory.store", "web.login"]) expect(r.stdout).toContain(kind);
    expect(r.stdout).toMatch(/^ {2}tool\.\* +tool\.call tool\.result$/m);
    expect(r.stdout).not.toContain("tool.invoke");
    expect(r.stdout).toContain("--kind tool.*");
    expect(r.stdout).toContain("usage: aaosctl audit [verify|export] [options]");
    for (const line of r.stdout.split("\n").filter((l) => /^ {2}\w+\.\* /.test(l)))
      expect(line.length).toBeLessThanOrEqual(78);
  });
});
