// aaosctl rewind against a real host-mode kernel, each verb run as its own
// process: an agent writes files through `aaosctl invoke`, a dry run shows
// the plan and changes nothing, the rewind puts the files back, the undo line
// it prints undoes it, and a file changed behind the agent's back is a
// conflict (exit 1) until --force.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";

let k: RunningKernel;
let S: string[];
let files: string;

beforeAll(async () => {
  // spawn_child names a manifest of the config directory; the child itself is spawned from text
  k = await startKernel({ manifests: { helper: `name: helper\nmodel: ${MODEL}\n` } });
  files = join(k.dataDir, "files");
  mkdirSync(files, { recursive: true });
  S = ["--socket", k.socket];
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

const cli = (...args: string[]) => aaosctl([...S, ...args]);

/** a fresh agent that may write under <data>/files/<dir>/ */
async function writer(dir: string): Promise<{ id: string; root: string }> {
  const root = join(files, dir);
  mkdirSync(root, { recursive: true });
  const manifest = `name: ${dir}\nmodel: ${MODEL}\ncapabilities:\n  - "file_write: ${root}/*"\n`;
  const r = await aaosctl([...S, "spawn", "-", "--json"], { stdin: manifest });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return { id: JSON.parse(r.stdout).agent_id, root };
}

async function write(id: string, path: string, content: string) {
  const r = await cli("invoke", id, "file_write", JSON.stringify({ path, content }), "--json");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).output;
}

describe("aaosctl rewind", () => {
  test("dry run, rewind, files back, the undo line redoes them", async () => {
    const { id, root } = await writer("notes");
    const a = join(root, "a.md");
    const b = join(root, "b.md");
    writeFileSync(a, "original a\n");
    const out = await write(id, a, "agent's a\n");
    expect(out.changes).toEqual([
      {
        path: a,
        pre: { kind: "file", sha256: expect.any(String) },
        post: { kind: "file", sha256: expect.any(String) },
      },
    ]);
    await write(id, b, "agent's b\n");

    // the dry run: the plan, nothing changed, exit 0
    const dry = await cli("rewind", "notes", "--dry-run");
    expect(dry.stderr).toBe("");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^dry run rw-\S+: would restore 2 paths$/m);
    expect(dry.stdout).toMatch(/^CHANGE\s+TOOL\s+WOULD BECOME\s+PATH$/m);
    // newest first
    expect(dry.stdout.indexOf(b)).toBeLessThan(dry.stdout.indexOf(a));
    expect(dry.stdout).toMatch(new RegExp(`file_write\\s+absent\\s+${b}`));
    expect(dry.stdout).toMatch(new RegExp(`file_write\\s+file\\s+${a}`));
    expect(dry.stdout).not.toContain("undo:");
    expect(readFileSync(a, "utf8")).toBe("agent's a\n");
    expect(existsSync(b)).toBe(true);

    const dj = await cli("rewind", id, "--dry-run", "--json");
    expect(dj.code).toBe(0);
    const plan = JSON.parse(dj.stdout);
    expect(plan).toMatchObject({ dry_run: true, conflicts: [], unrestorable: [], audit_seq: null });
    expect(plan.restored.map((x: { path: string; to: string }) => [x.path, x.to])).toEqual([
      [b, "absent"],
      [a, "file"],
    ]);

    // the rewind: by id prefix
    const r = await cli("rewind", id.slice(0, 10));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rewind rw-\S+: restored 2 paths$/m);
    expect(r.stdout).toMatch(/^CHANGE\s+TOOL\s+NOW\s+PATH$/m);
    expect(readFileSync(a, "utf8")).toBe("original a\n");
    expect(existsSync(b)).toBe(false);
    const undo = /^undo: aaosctl rewind (\S+) --to (\d+)$/m.exec(r.stdout);
    expect(undo).not.toBeNull();
    expect(undo![1]).toBe(id);

    // the audit log has the rewind (its seq is the undo's --to + 1) and its outcome
    const audit = await cli("audit", "--agent", id, "--kind", "agent.rewind", "--json");
    expect(JSON.parse(audit.stdout).events.at(-1)).toMatchObject({
      kind: "agent.rewind",
      seq: Number(undo![2]) + 1,
      steps: 2,
    });
    const rewound = await cli("audit", "--agent", id, "--kind", "agent.rewound", "--json");
    expect(JSON.parse(rewound.stdout).events.at(-1)).toMatchObject({
      kind: "agent.rewound",
      restored: 2,
      conflicts: 0,
      unrestorable: 0,
    });

    // the rewind's own restorations are journaled after its record: the undo takes them back
    const u = await cli("rewind", undo![1]!, "--to", undo![2]!);
    expect(u.stderr).toBe("");
    expect(u.code).toBe(0);
    expect(u.stdout).toMatch(/restored 2 paths/);
    expect(readFileSync(a, "utf8")).toBe("agent's a\n");
    expect(readFileSync(b, "utf8")).toBe("agent's b\n");
    await cli("stop", id);
  });

  test("a file changed behind the agent's back is a conflict: exit 1, left alone; --force restores it", async () => {
    const { id, root } = await writer("drafts");
    const c = join(root, "c.md");
    const d = join(root, "d.md");
    await write(id, c, "agent's c\n");
    await write(id, d, "agent's d\n");
    writeFileSync(c, "a person's edit\n");

    const dry = await cli("rewind", id, "--dry-run");
    expect(dry.code).toBe(1);
    expect(dry.stdout).toMatch(/would restore 1 path, 1 conflict, 0 unrestorable/);
    expect(dry.stdout).toMatch(/^conflicts \(left alone; --force restores them anyway\):$/m);
    expect(dry.stdout).toMatch(new RegExp(`^#\\d+\\s+${c}\\s+changed since`, "m"));

    const r = await cli("rewind", id);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/restored 1 path, 1 conflict, 0 unrestorable/);
    expect(readFileSync(c, "utf8")).toBe("a person's edit\n");
    expect(existsSync(d)).toBe(false);

    const j = await cli("rewind", id, "--json");
    expect(j.code).toBe(1);
    const res = JSON.parse(j.stdout);
    expect(res.conflicts.map((x: { path: string }) => x.path)).toEqual([c]);

    const f = await cli("rewind", id, "--force");
    expect(f.code).toBe(0);
    expect(existsSync(c)).toBe(false);
    await cli("stop", id);
  });

  test("a child's changes are rewound with its parent's, unless --no-children", async () => {
    const root = join(files, "team");
    mkdirSync(root, { recursive: true });
    const grant = `capabilities:\n  - "file_write: ${root}/*"\n`;
    const parent = `name: lead\nmodel: ${MODEL}\n${grant}spawn_child: [helper]\n`;
    const r = await aaosctl([...S, "spawn", "-", "--json"], { stdin: parent });
    expect(r.code).toBe(0);
    const lead = JSON.parse(r.stdout).agent_id;
    const child = `name: helper\nmodel: ${MODEL}\n${grant}`;
    const sp = await cli("invoke", lead, "spawn_agent", JSON.stringify({ manifest: child }), "--json");
    expect(sp.code).toBe(0);
    const helper = JSON.parse(sp.stdout).output.agent_id;
    const e = join(root, "e.md");
    await write(helper, e, "the helper's e\n");

    const own = await cli("rewind", lead, "--no-children", "--dry-run", "--json");
    expect(own.code).toBe(0);
    expect(JSON.parse(own.stdout).restored).toEqual([]);
    const human = await cli("rewind", lead, "--no-children", "--dry-run");
    expect(human.stdout).toMatch(/would restore 0 paths \(nothing to rewind\)/);

    const all = await cli("rewind", lead);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`file_write\\s+absent\\s+${e}`));
    expect(existsSync(e)).toBe(false);
    await cli("stop", lead);
  });

  test("--help, an unknown agent, a bad --to", async () => {
    const h = await aaosctl(["rewind", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toStartWith("usage: aaosctl rewind AGENT [options]");
    expect(h.stdout).toContain("--dry-run");
    expect(h.stdout).toContain("--no-children");
    expect(h.stdout).toMatch(/Exit 0 when everything was \(or would be\) restored; 1 when there were\s+conflicts/);
    const none = await cli("rewind", "ag-0000000000000000");
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no such agent/);
    const bad = await cli("rewind", "ag-0000000000000000", "--to", "x");
    expect(bad.code).toBe(2);
  });
});
