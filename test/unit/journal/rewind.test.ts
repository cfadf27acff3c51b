// The journal and the rewind engine on real files: changes recorded as the
// tools record them (pre-image, post-image, write-ahead), then rewound
// newest first; the tree compared byte for byte with a snapshot; conflicts,
// moves, directories, pruned pre-images, and a rewind of the rewind.
import { afterEach, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileState, Journal, type FileState, type PathChange } from "../../../kernel/journal/index.ts";
import { runRewind } from "../../../kernel/journal/rewind.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: { maxBytes?: number; maxPre?: number } = {}) {
  const d = mkdtempSync(join(tmpdir(), "aaos-journal-"));
  dirs.push(d);
  const root = join(d, "files");
  mkdirSync(root);
  const journal = new Journal({
    dir: join(d, "state", "journal"),
    maxBytes: opts.maxBytes ?? 1 << 30,
    maxPreImageBytes: opts.maxPre ?? 1 << 24,
  });
  let callSeq = 0;
  const who = (agentId = "ag-1", lineage = ",ag-1,") => ({ agentId, lineage, tool: "t", callSeq: ++callSeq });
  const stateOf = (p: string): { state: FileState; content: Uint8Array | null } => {
    if (!existsSync(p)) return { state: { kind: "absent" }, content: null };
    const st = statSync(p);
    if (st.isDirectory()) return { state: { kind: "dir", mode: st.mode & 0o7777 }, content: null };
    const c = new Uint8Array(readFileSync(p));
    return { state: fileState(c, st.mode), content: c };
  };
  /** one change as a tool makes it: recorded first, then applied, then settled */
  const change = (p: string, apply: () => void, post: FileState, agent?: [string, string]) => {
    const pre = stateOf(p);
    const seqs = journal.record(who(...(agent ?? [])), [{ path: p, pre: pre.state, preContent: pre.content, post }]);
    apply();
    journal.settle(seqs, true);
  };
  const write = (p: string, text: string, agent?: [string, string]) =>
    change(p, () => writeFileSync(p, text), fileState(new TextEncoder().encode(text), 0o644), agent);
  const snapshot = () => {
    const out: Record<string, string> = {};
    const walk = (dir: string) => {
      for (const n of readdirSync(dir).sort()) {
        const p = join(dir, n);
        if (statSync(p).isDirectory()) {
          out[p + "/"] = "dir";
          walk(p);
        } else out[p] = readFileSync(p, "utf8");
      }
    };
    walk(root);
    return out;
  };
  const rewind = async (
    o: { force?: boolean; dryRun?: boolean; after?: number; agent?: string; children?: boolean } = {},
  ) =>
    runRewind(journal, journal.changesSince(o.agent ?? "ag-1", o.after ?? 0, o.children ?? true), {
      id: "rw-test",
      force: o.force ?? false,
      dryRun: o.dryRun ?? false,
      who: { agentId: o.agent ?? "ag-1", lineage: ",ag-1,", callSeq: 1000 + callSeq },
    });
  return { root, journal, change, write, snapshot, rewind, stateOf, seq: () => callSeq };
}

describe("rewind", () => {
  test("create, overwrite, delete, move, mkdir: the tree comes back byte for byte", async () => {
    const t = setup();
    writeFileSync(join(t.root, "a.txt"), "v1");
    writeFileSync(join(t.root, "c.txt"), "gone soon");
    writeFileSync(join(t.root, "e.txt"), "moving");
    const before = t.snapshot();
    t.write(join(t.root, "a.txt"), "v2");
    t.write(join(t.root, "a.txt"), "v3");
    t.change(join(t.root, "d"), () => mkdirSync(join(t.root, "d")), { kind: "dir", mode: 0o755 });
    t.write(join(t.root, "d", "b.txt"), "new");
    t.change(join(t.root, "c.txt"), () => unlinkSync(join(t.root, "c.txt")), { kind: "absent" });
    // a move: the source goes absent, the destination gets it with moved_from
    const e = t.stateOf(join(t.root, "e.txt"));
    const seqs = t.journal.record({ agentId: "ag-1", lineage: ",ag-1,", tool: "file_move", callSeq: 99 }, [
      { path: join(t.root, "e.txt"), pre: e.state, preContent: e.content, post: { kind: "absent" } },
      {
        path: join(t.root, "f.txt"),
        pre: { kind: "absent" },
        preContent: null,
        post: { ...(e.state as FileState & { kind: "file" }), moved_from: join(t.root, "e.txt") },
      },
    ]);
    renameSync(join(t.root, "e.txt"), join(t.root, "f.txt"));
    t.journal.settle(seqs, true);
    expect(t.snapshot()).not.toEqual(before);

    const dry = await t.rewind({ dryRun: true });
    expect(dry.conflicts).toEqual([]);
    expect(t.snapshot()).not.toEqual(before); // a dry run changes nothing
    const r = await t.rewind();
    expect(r.conflicts).toEqual([]);
    expect(r.unrestorable).toEqual([]);
    expect(t.snapshot()).toEqual(before);
    expect(r.restored.map((x) => x.path)).toEqual(dry.restored.map((x) => x.path));
  });

  test("a path changed by someone else is a conflict, left alone with its older changes; force overrides", async () => {
    const t = setup();
    const a = join(t.root, "a.txt");
    const b = join(t.root, "b.txt");
    writeFileSync(a, "orig");
    t.write(a, "agent 1");
    t.write(a, "agent 2");
    t.write(b, "mine");
    writeFileSync(a, "edited outside");
    const r = await t.rewind();
    expect(r.conflicts.map((c) => c.path)).toEqual([a, a]);
    expect(r.conflicts[0]!.reason).toContain("changed since");
    expect(readFileSync(a, "utf8")).toBe("edited outside");
    expect(existsSync(b)).toBe(false);
    const f = await t.rewind({ force: true });
    expect(f.conflicts).toEqual([]);
    expect(readFileSync(a, "utf8")).toBe("orig");
  });

  test("children by lineage; another agent's change is not rewound", async () => {
    const t = setup();
    const mine = join(t.root, "mine.txt");
    const child = join(t.root, "child.txt");
    const other = join(t.root, "other.txt");
    t.write(mine, "1");
    t.write(child, "2", ["ag-2", ",ag-2,ag-1,"]);
    t.write(other, "3", ["ag-3", ",ag-3,"]);
    await t.rewind({ children: false });
    expect([existsSync(mine), existsSync(child), existsSync(other)]).toEqual([false, true, true]);
    await t.rewind();
    expect([existsSync(mine), existsSync(child), existsSync(other)]).toEqual([false, false, true]);
  });

  test("a rewind is journaled: rewinding it (after its seq) puts the agent's changes back", async () => {
    const t = setup();
    const a = join(t.root, "a.txt");
    writeFileSync(a, "orig");
    t.write(a, "changed");
    const at = t.seq();
    t.rewind(); // journaled with callSeq 1000 + at
    expect(readFileSync(a, "utf8")).toBe("orig");
    const undo = await t.rewind({ after: 1000 + at - 1 });
    expect(undo.conflicts).toEqual([]);
    expect(readFileSync(a, "utf8")).toBe("changed");
  });

  test("a pre-image over the limit or pruned is reported unrestorable, with the path's older changes", async () => {
    const t = setup({ maxPre: 10, maxBytes: 0 });
    const a = join(t.root, "a.txt");
    writeFileSync(a, "x".repeat(100));
    t.write(a, "small");
    const r = await t.rewind();
    expect(r.unrestorable.map((u) => u.path)).toEqual([a]);
    expect(r.unrestorable[0]!.reason).toContain("not kept");
    expect(readFileSync(a, "utf8")).toBe("small");
    // pruning: a kept pre-image dropped past max_bytes 0
    const b = join(t.root, "b.txt");
    writeFileSync(b, "old");
    t.write(b, "new");
    expect(t.journal.bytes()).toBeGreaterThan(0);
    expect(t.journal.prune().blobs).toBeGreaterThan(0);
    const p = await t.rewind();
    expect(p.unrestorable.map((u) => u.path)).toContain(b);
    expect(readFileSync(b, "utf8")).toBe("new");
  });

  test("a non-empty directory the agent created is a conflict, not deleted with someone's files", async () => {
    const t = setup();
    const d = join(t.root, "d");
    t.change(d, () => mkdirSync(d), { kind: "dir", mode: 0o755 });
    writeFileSync(join(d, "theirs.txt"), "not the agent's");
    const r = await t.rewind();
    expect(r.conflicts.length + r.restored.length).toBe(1);
    expect(readFileSync(join(d, "theirs.txt"), "utf8")).toBe("not the agent's");
    rmSync(join(d, "theirs.txt"));
    rmdirSync(d);
  });
});

describe("readState", () => {
  test("a file past 1 MiB is hashed and kept whole", async () => {
    const t = setup();
    const { readState } = await import("../../../kernel/journal/index.ts");
    const { openDirNoSymlinks, close } = await import("../../../kernel/sys/openat2.ts");
    const big = new Uint8Array(3 * 1024 * 1024 + 10).map((_, i) => i % 251);
    writeFileSync(join(t.root, "big.bin"), big);
    const fd = openDirNoSymlinks(t.root);
    try {
      const r = readState(fd, "big.bin");
      expect(r.state).toMatchObject({
        kind: "file",
        size: big.length,
        sha256: fileState(big, 0o644).kind === "file" ? (fileState(big, 0o644) as { sha256: string }).sha256 : "",
      });
      expect(Buffer.compare(Buffer.from(r.content!), Buffer.from(big))).toBe(0);
      // over the limit: hashed whole, bytes not kept
      const over = readState(fd, "big.bin", 1024);
      expect(over.content).toBeNull();
      expect(over.state).toEqual(r.state);
    } finally {
      close(fd);
    }
  });
});
