// aaosctl memory (search, ls, export, rm, namespaces) against a real
// host-mode kernel, each verb run as its own process. Records go in the way
// an agent puts them there: tool.invoke of memory_store on a spawned agent
// holding the tool and `memory_write: team`; no model is called.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";

let k: RunningKernel;
let S: string[];
let keeper: string;
let other: string;
/** id → text of every record stored */
const stored = new Map<string, string>();

const cli = (...args: string[]) => aaosctl([...S, ...args]);

async function store(agentId: string, input: { text: string; tags?: string[]; namespace?: string }) {
  const r = await cli("invoke", agentId, "memory_store", JSON.stringify(input), "--json");
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout).output as { id: string; namespace: string | null };
  expect(out.id).toMatch(/^mem-[0-9a-f]{16}$/);
  stored.set(out.id, input.text);
  return out.id;
}

beforeAll(async () => {
  k = await startKernel({
    kernelYaml: "memory:\n  quota:\n    namespaces:\n      team: {records: 50}\n",
    manifests: {
      keeper: `name: keeper\nmodel: ${MODEL}\ncapabilities:\n  - memory_store\n  - memory_search\n  - "memory_write: team"\n  - "memory_write: bulk"\n`,
      other: `name: other\nmodel: ${MODEL}\ncapabilities:\n  - memory_store\n`,
    },
  });
  S = ["--socket", k.socket];
  const spawn = async (name: string) => {
    const r = await cli("spawn", name, "--json");
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout).agent_id as string;
  };
  keeper = await spawn("keeper");
  other = await spawn("other");
  await store(keeper, { text: "The backup runs nightly at 02:00 from the NAS.\nSecond line.", tags: ["ops"] });
  await store(keeper, { text: "Oslo office opens at nine", tags: ["office"], namespace: "team" });
  await store(keeper, { text: "Deploys happen on Tuesdays", tags: ["ops", "deploy"], namespace: "team" });
  await store(other, { text: "The other agent keeps its own backup notes" });
  for (let i = 0; i < 5; i++) await store(keeper, { text: `filler note number ${i}`, namespace: "team" });
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

describe("memory search", () => {
  test("a table of the best matches: id, own:AGENT or the namespace, kind, created, first line", async () => {
    const r = await cli("memory", "search", "backup");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAMESPACE\s+KIND\s+CREATED\s+SCORE\s+TEXT$/);
    expect(lines.length).toBe(3);
    expect(r.stdout).toMatch(
      new RegExp(
        `^mem-[0-9a-f]{16}\\s+own:${keeper}\\s+note\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\s+[0-9.]+\\s+The backup runs nightly at 02:00 from the NAS\\.$`,
        "m",
      ),
    );
    expect(r.stdout).toContain(`own:${other}`);
    // only the first line of a text
    expect(r.stdout).not.toContain("Second line");
  });

  test("--namespace, --agent (by name), -k, --tag and --json narrow it", async () => {
    const team = await cli("memory", "search", "office", "deploys", "--namespace", "team", "--json");
    expect(team.code).toBe(0);
    const hits = JSON.parse(team.stdout).results as { namespace: string; text: string; score: number }[];
    expect(hits.map((h) => h.text).sort()).toEqual(["Deploys happen on Tuesdays", "Oslo office opens at nine"]);
    expect(hits.every((h) => h.namespace === "team" && typeof h.score === "number")).toBe(true);

    const one = await cli("memory", "search", "office deploys", "--namespace", "team", "-k", "1", "--json");
    expect(JSON.parse(one.stdout).results).toHaveLength(1);

    const tagged = await cli("memory", "search", "office deploys", "--tag", "ops", "-t", "deploy", "--json");
    expect(JSON.parse(tagged.stdout).results.map((h: any) => h.text)).toEqual(["Deploys happen on Tuesdays"]);

    const own = await cli("memory", "search", "backup", "--agent", "other", "--json");
    const ownHits = JSON.parse(own.stdout).results;
    expect(ownHits).toHaveLength(1);
    expect(ownHits[0]).toMatchObject({ namespace: null, owner: other, agent_id: other, kind: "note" });

    const recent = await cli("memory", "search", "backup", "--since", "1h", "--json");
    expect(JSON.parse(recent.stdout).results).toHaveLength(2);
  });

  test("no match: a note on stderr, nothing on stdout, exit 0", async () => {
    const r = await cli("memory", "search", "zeppelin");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("no memory records match");
  });
});

describe("memory ls", () => {
  test("every record, oldest first; --namespace narrows it", async () => {
    const r = await cli("memory", "ls", "--json");
    expect(r.code).toBe(0);
    const { records, next_seq } = JSON.parse(r.stdout);
    expect(records.map((x: any) => x.id)).toEqual([...stored.keys()]);
    expect(next_seq).toBeNull();

    const human = await cli("memory", "ls", "--namespace", "team");
    expect(human.code).toBe(0);
    const lines = human.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAMESPACE\s+KIND\s+CREATED\s+TEXT$/);
    expect(lines).toHaveLength(1 + 7);
    expect(lines.slice(1).every((l) => /^mem-\S+\s+team\s+note\s/.test(l))).toBe(true);
  });

  test("--limit stops early and says where to go on; --after goes on from there", async () => {
    const first = await cli("memory", "ls", "--limit", "3");
    expect(first.code).toBe(0);
    expect(first.stdout.trimEnd().split("\n")).toHaveLength(4);
    const m = /more records after seq (\d+): aaosctl memory ls --after (\d+)/.exec(first.stderr);
    expect(m?.[1]).toBe(m?.[2]);
    const rest = await cli("memory", "ls", "--after", m![1]!, "--json");
    const ids = JSON.parse(rest.stdout).records.map((x: any) => x.id);
    expect(ids).toEqual([...stored.keys()].slice(3));

    const j = await cli("memory", "ls", "-n", "2", "--json");
    expect(JSON.parse(j.stdout).next_seq).toEqual(expect.any(Number));
  });

  test("--kind archive: none yet; --agent narrows to one agent's own memory", async () => {
    const archive = await cli("memory", "ls", "--kind", "archive");
    expect(archive.code).toBe(0);
    expect(archive.stdout).toBe("");
    expect(archive.stderr).toContain("no memory records");
    const own = await cli("memory", "ls", "--agent", keeper, "--json");
    expect(JSON.parse(own.stdout).records.map((x: any) => x.owner)).toEqual([keeper]);
  });
});

describe("memory export and namespaces", () => {
  test("export prints one JSON record per line; every record, the count on stderr", async () => {
    const r = await cli("memory", "export");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    const recs = lines.map((l) => JSON.parse(l));
    expect(recs).toHaveLength(stored.size);
    for (const rec of recs) expect(rec.text).toBe(stored.get(rec.id)!);
    expect(r.stderr).toContain(`${stored.size} records exported`);
    // what export writes is what ls shows
    const ls = JSON.parse((await cli("memory", "ls", "--json")).stdout).records;
    expect(recs).toEqual(ls);

    const team = await cli("memory", "export", "--namespace", "team");
    expect(team.stdout.trimEnd().split("\n")).toHaveLength(7);
  });

  test("namespaces: each own memory and shared namespace with its use and quota", async () => {
    const r = await cli("memory", "namespaces");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^NAMESPACE\s+RECORDS\s+BYTES$/m);
    expect(r.stdout).toMatch(/^team\s+7\/50\s+\d+ B\/64 MiB$/m);
    expect(r.stdout).toMatch(new RegExp(`^own:${keeper}\\s+1/10000\\s+\\d+ B/16 MiB$`, "m"));
    const j = JSON.parse((await cli("memory", "namespaces", "--json")).stdout);
    expect(j.namespaces).toContainEqual({
      namespace: "team",
      owner: null,
      records: 7,
      bytes: expect.any(Number),
      quota: { records: 50, bytes: 64 * 1024 * 1024 },
    });
  });
});

describe("memory rm", () => {
  test("rm deletes a record: search no longer finds it; it is audited", async () => {
    const id = await store(keeper, { text: "temporary zanzibar fact", namespace: "team" });
    expect(JSON.parse((await cli("memory", "search", "zanzibar", "--json")).stdout).results).toHaveLength(1);
    const r = await cli("memory", "rm", id);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`deleted ${id}\n`);
    stored.delete(id);
    expect(JSON.parse((await cli("memory", "search", "zanzibar", "--json")).stdout).results).toEqual([]);
    const audit = JSON.parse((await cli("audit", "--kind", "memory.delete", "--json")).stdout).events;
    expect(audit).toContainEqual(
      expect.objectContaining({ kind: "memory.delete", id, agent_id: null, namespace: "team" }),
    );
  });

  test("an unknown id: a clear message naming it, exit 1; --json: the error object", async () => {
    const r = await cli("memory", "rm", "mem-0000000000000000");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('error: Invalid params: no memory record "mem-0000000000000000" (-32602)');
    const j = await cli("memory", "rm", "mem-0000000000000000", "--json");
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout).error).toMatchObject({ code: -32602 });
  });
});

describe("paging", () => {
  test("ls follows memory.list past 1,000 records; export follows memory.export past 512 KiB", async () => {
    const put = async (text: string) => {
      const r = await k.client.call<{ output: { id: string } }>("tool.invoke", {
        agent_id: keeper,
        tool: "memory_store",
        input: { text, namespace: "bulk" },
      });
      stored.set(r.output.id, text);
    };
    for (let i = 0; i < 1010; i += 50)
      await Promise.all(Array.from({ length: Math.min(50, 1010 - i) }, (_, j) => put(`bulk note ${i + j}`)));
    // 40 records of 15,000 bytes: more than one export page
    await Promise.all(Array.from({ length: 40 }, (_, i) => put(`${i} `.padEnd(15_000, "x"))));

    // aaosctl as its own process, into a pipe: megabytes of output arrive whole before it exits
    const ls = await cli("memory", "ls", "--namespace", "bulk", "--limit", "5000", "--json");
    expect(ls.code).toBe(0);
    const { records, next_seq } = JSON.parse(ls.stdout);
    expect(records).toHaveLength(1050);
    expect(next_seq).toBeNull();
    const seqs = records.map((r: any) => r.seq);
    expect(seqs).toEqual([...seqs].sort((a: number, b: number) => a - b));
    expect(new Set(seqs).size).toBe(1050);
    // the default stops at 100 and says so
    const human = await cli("memory", "ls", "--namespace", "bulk");
    expect(human.stdout.trimEnd().split("\n")).toHaveLength(101);
    expect(human.stderr).toContain(`more records after seq ${seqs[99]}`);

    const page = await k.client.call<{ next_seq: number | null }>("memory.export", { namespace: "bulk" });
    expect(page.next_seq).not.toBeNull();
    const ex = await cli("memory", "export", "--namespace", "bulk");
    expect(ex.code).toBe(0);
    const lines = ex.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1050);
    expect(lines).toEqual(records);
    const all = await cli("memory", "export");
    expect(all.stdout.trimEnd().split("\n")).toHaveLength(stored.size);
  });
});

describe("usage errors (exit 2) and kernel refusals", () => {
  test("a missing or extra argument, an option of another action, a bad value", async () => {
    for (const args of [
      ["memory"],
      ["memory", "find", "x"],
      ["memory", "search"],
      ["memory", "rm"],
      ["memory", "rm", "a", "b"],
      ["memory", "ls", "extra"],
      ["memory", "ls", "--tag", "ops"],
      ["memory", "rm", "mem-1", "--namespace", "team"],
      ["memory", "search", "x", "--kind", "note"],
      ["memory", "ls", "--kind", "notes"],
      ["memory", "search", "x", "-k", "0"],
      ["memory", "ls", "--limit", "many"],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toStartWith("error: ");
    }
  });

  test("an unknown agent is the kernel's -32002; a bad namespace name its -32602", async () => {
    const r = await cli("memory", "search", "x", "--agent", "ag-ffffffffffffffff");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(-32002)");
    const ns = await cli("memory", "ls", "--namespace", "Bad Name");
    expect(ns.code).toBe(1);
    expect(ns.stderr).toContain("(-32602)");
  });

  test("help names every action and the methods", async () => {
    const r = await cli("memory", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("usage: aaosctl memory search|ls|export|rm|namespaces [QUERY|ID...] [options]");
    expect(r.stdout).toContain("calls: memory.search, memory.list, memory.export, memory.delete, memory.namespaces");
  });
});
