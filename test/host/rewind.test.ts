// Reversibility through the real socket of a host-mode kernel: agents change
// files through the file tools (tool.invoke, no model), agent.rewind puts the
// pre-images back. The tree under <data>/files is compared byte for byte (and
// mode for mode) with node:fs snapshots taken before; hashes in the audit are
// recomputed with node:crypto from the bytes on disk. Crashes are SIGKILL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

const KEY = "sk-ant-api03-REWINDTEST-never-in-logs-5e6f7a8b9c";
const MODEL = "claude-haiku-4-5-20251001";
const KERNEL_YAML = `approval:\n  timeout: 5s\ninference:\n  retry:\n    max_retries: 0\n`;

let srv: MessagesServer;
let k: RunningKernel;
const others: RunningKernel[] = [];

beforeAll(async () => {
  srv = await startMessagesServer({ apiKey: KEY });
  k = await boot();
});
afterAll(async () => {
  for (const x of [k, ...others]) await x?.stop().catch(() => {});
  for (const d of new Set([k, ...others].filter(Boolean).map((x) => x.dir))) cleanup({ dir: d } as RunningKernel);
  await srv.stop();
});

async function boot(opts: { dir?: string; kernelYaml?: string } = {}) {
  return startKernel({
    kernelYaml: opts.kernelYaml ?? KERNEL_YAML,
    ...(opts.dir ? { dir: opts.dir } : {}),
    // spawn_child names must be manifests the kernel knows
    manifests: { t3child: `name: t3child\nmodel: ${MODEL}\n` },
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url },
  });
}

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** every entry beneath root: type, permission bits, and a file's bytes */
type Entry = { type: "file" | "dir" | "other"; mode: number; bytes?: string };
function snapshot(root: string): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out[r] = { type: "dir", mode };
        walk(p, r);
      } else if (st.isFile()) out[r] = { type: "file", mode, bytes: readFileSync(p).toString("base64") };
      else out[r] = { type: "other", mode };
    }
  };
  if (existsSync(root)) walk(root, "");
  return out;
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

function clientOf(kk: RunningKernel) {
  const call = (m: string, p: object = {}) => kk.client.call(m, p) as Promise<any>;
  const invoke = (agent_id: string, tool: string, input: object) =>
    call("tool.invoke", { agent_id, tool, input }) as Promise<any>;
  const rewind = (agent_id: string, p: object = {}) => call("agent.rewind", { agent_id, ...p });
  const audit = async (agent_id: string) => (await call("audit.query", { agent_id, limit: 1000 })).events as any[];
  const spawn = async (name: string, caps: string[], extra = "") =>
    (
      await call("agent.spawn", {
        manifest: `name: ${name}\nmodel: ${MODEL}\ncapabilities:\n${caps.map((c) => `  - "${c}"`).join("\n")}\n${extra}`,
      })
    ).agent_id as string;
  return { call, invoke, rewind, audit, spawn };
}

/** a fresh directory under <data>/files for one test */
function area(kk: RunningKernel, name: string): string {
  const d = join(kk.dataDir, "files", name);
  mkdirSync(d, { recursive: true });
  return d;
}

// a `file_write:` grant implies every reversible file tool (kernel/caps/grammar.ts IMPLIED_TOOLS); naming them
// as tools as well changes nothing
const FILE_TOOLS = ["tool: file_delete", "tool: file_move", "tool: dir_create"];
const grants = (kk: RunningKernel) => [
  `file_write: ${kk.dataDir}/files/*`,
  `file_read: ${kk.dataDir}/files/*`,
  ...FILE_TOOLS,
];

describe("rewind puts back every change an agent made", () => {
  test("create, overwrite, append, delete, move, mkdir → dry run lists, rewind restores the tree byte for byte", async () => {
    const { invoke, rewind, audit, spawn } = clientOf(k);
    const root = area(k, "t1");
    writeFileSync(join(root, "over.txt"), "the original\n");
    chmodSync(join(root, "over.txt"), 0o640);
    writeFileSync(join(root, "app.txt"), "line one\n");
    writeFileSync(join(root, "del.txt"), "delete me\n");
    chmodSync(join(root, "del.txt"), 0o600);
    writeFileSync(join(root, "mv-src.txt"), "moving house\n");
    mkdirSync(join(root, "tree/inner"), { recursive: true });
    writeFileSync(join(root, "tree/inner/leaf.txt"), "a leaf\n");
    writeFileSync(join(root, "victim.txt"), "overwritten by a move\n");
    writeFileSync(join(root, "mover.txt"), "moves over the victim\n");
    mkdirSync(join(root, "empty"));
    chmodSync(join(root, "empty"), 0o750);
    writeFileSync(join(root, "keep.txt"), "untouched\n");
    const before = snapshot(root);
    const id = await spawn("t1", grants(k));

    const outs: any[] = [];
    outs.push(await invoke(id, "file_write", { path: `${root}/new/deep/n.txt`, content: "brand new\n" }));
    outs.push(await invoke(id, "file_write", { path: `${root}/over.txt`, content: "replaced\n" }));
    outs.push(await invoke(id, "file_write", { path: `${root}/app.txt`, content: "line two\n", append: true }));
    outs.push(await invoke(id, "file_delete", { path: `${root}/del.txt` }));
    outs.push(await invoke(id, "file_delete", { path: `${root}/empty` }));
    outs.push(await invoke(id, "file_move", { from: `${root}/mv-src.txt`, to: `${root}/moved/dst.txt` }));
    outs.push(await invoke(id, "dir_create", { path: `${root}/made/a/b` }));
    outs.push(await invoke(id, "file_move", { from: `${root}/tree`, to: `${root}/moved/tree` }));
    outs.push(await invoke(id, "file_move", { from: `${root}/mover.txt`, to: `${root}/victim.txt`, overwrite: true }));
    const TOOLS = [
      "file_write",
      "file_write",
      "file_write",
      "file_delete",
      "file_delete",
      "file_move",
      "dir_create",
      "file_move",
      "file_move",
    ];
    const after = snapshot(root);
    expect(after["new/deep/n.txt"]).toMatchObject({ type: "file", mode: 0o644 });
    expect(after["over.txt"]).toEqual({
      type: "file",
      mode: 0o640,
      bytes: Buffer.from("replaced\n").toString("base64"),
    });
    expect(Buffer.from(after["app.txt"]!.bytes!, "base64").toString()).toBe("line one\nline two\n");
    expect(after["del.txt"]).toBeUndefined();
    expect(after["empty"]).toBeUndefined();
    expect(after["mv-src.txt"]).toBeUndefined();
    expect(Buffer.from(after["moved/dst.txt"]!.bytes!, "base64").toString()).toBe("moving house\n");
    expect(after["made/a/b"]?.type).toBe("dir");
    expect(after["tree"]).toBeUndefined();
    expect(Buffer.from(after["moved/tree/inner/leaf.txt"]!.bytes!, "base64").toString()).toBe("a leaf\n");
    expect(after["mover.txt"]).toBeUndefined();
    expect(Buffer.from(after["victim.txt"]!.bytes!, "base64").toString()).toBe("moves over the victim\n");

    // the ledger: each tool's output and its tool.result carry pre/post sha256 of the real bytes
    const hashOf = (snap: Record<string, Entry>, rel: string) => {
      const e = snap[rel];
      if (!e) return { kind: "absent" };
      if (e.type === "dir") return { kind: "dir" };
      return { kind: "file", sha256: sha(Buffer.from(e.bytes!, "base64")) };
    };
    const rel = (p: string) => p.slice(root.length + 1);
    const results = (await audit(id)).filter((e) => e.kind === "tool.result");
    expect(results.length).toBe(outs.length);
    let n = 0;
    for (let i = 0; i < outs.length; i++) {
      const changes = outs[i].output.changes as any[];
      expect(changes.length).toBeGreaterThan(0);
      expect(results[i].tool).toBe(TOOLS[i]);
      expect(results[i].output.changes).toEqual(changes);
      for (const c of changes) {
        // a path changed once: its pre is what the before-snapshot holds, its post what the after one holds
        expect(c.post).toEqual(hashOf(after, rel(c.path)));
        expect(c.pre).toEqual(hashOf(before, rel(c.path)));
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(12);
    expect(outs[1].output.changes[0].pre.sha256).toBe(sha("the original\n"));

    const dry = await rewind(id, { dry_run: true });
    expect(dry.dry_run).toBe(true);
    expect(dry.conflicts).toEqual([]);
    expect(dry.unrestorable).toEqual([]);
    expect(snapshot(root)).toEqual(after);
    const real = await rewind(id);
    expect(real.dry_run).toBe(false);
    expect(real.restored).toEqual(dry.restored);
    expect(real.conflicts).toEqual([]);
    expect(real.unrestorable).toEqual([]);
    expect(new Set(real.restored.map((r: any) => rel(r.path)))).toEqual(
      new Set(outs.flatMap((o) => o.output.changes.map((c: any) => rel(c.path)))),
    );
    expect(snapshot(root)).toEqual(before);
    const kinds = (await audit(id)).map((e) => e.kind);
    expect(kinds).toContain("agent.rewind");
    expect(kinds).toContain("agent.rewound");
  });

  test("conflicts: a later change by another agent or from outside is reported and left alone; force restores it", async () => {
    const { invoke, rewind, spawn } = clientOf(k);
    const root = area(k, "t2");
    const a = await spawn("t2a", grants(k));
    const b = await spawn("t2b", grants(k));
    await invoke(a, "file_write", { path: `${root}/other.txt`, content: "a v1\n" });
    await invoke(a, "file_write", { path: `${root}/other.txt`, content: "a v2\n" });
    await invoke(a, "file_write", { path: `${root}/outside.txt`, content: "a wrote\n" });
    await invoke(a, "file_write", { path: `${root}/fine.txt`, content: "a alone\n" });
    await invoke(b, "file_write", { path: `${root}/other.txt`, content: "b after\n" });
    writeFileSync(join(root, "outside.txt"), "changed outside the kernel\n");
    const held = snapshot(root);

    const dry = await rewind(a, { dry_run: true });
    const r = await rewind(a);
    for (const x of [dry, r]) {
      expect(x.conflicts.map((c: any) => c.path).sort()).toEqual(
        [`${root}/other.txt`, `${root}/other.txt`, `${root}/outside.txt`].sort(),
      );
      expect(x.restored.map((c: any) => c.path)).toEqual([`${root}/fine.txt`]);
    }
    // the older change of other.txt is held back with the newer one
    const older = r.conflicts.filter((c: any) => c.path === `${root}/other.txt`);
    expect(older[0].seq).toBeGreaterThan(older[1].seq);
    expect(older[0].reason).toMatch(/changed since/);
    expect(older[1].reason).toMatch(/later change/);
    expect(r.conflicts.find((c: any) => c.path === `${root}/outside.txt`).reason).toMatch(/changed since/);
    expect(readFileSync(join(root, "other.txt"), "utf8")).toBe("b after\n");
    expect(readFileSync(join(root, "outside.txt"), "utf8")).toBe("changed outside the kernel\n");
    expect(existsSync(join(root, "fine.txt"))).toBe(false);
    const { "fine.txt": _gone, ...rest } = held;
    expect(snapshot(root)).toEqual(rest);

    const f = await rewind(a, { force: true });
    expect(f.conflicts).toEqual([]);
    expect(f.restored.map((c: any) => c.path)).toEqual(
      expect.arrayContaining([`${root}/other.txt`, `${root}/outside.txt`]),
    );
    // back to before a's first change: none of the three files existed
    expect(snapshot(root)).toEqual({});

    // a move whose source is taken again cannot be moved back: a conflict, both left alone
    const m = await spawn("t2m", grants(k));
    writeFileSync(join(root, "from.txt"), "mine\n");
    await invoke(m, "file_move", { from: `${root}/from.txt`, to: `${root}/to.txt` });
    writeFileSync(join(root, "from.txt"), "someone else's\n");
    const mr = await rewind(m);
    expect(mr.restored).toEqual([]);
    expect(mr.conflicts.map((c: any) => [c.path, c.reason])).toContainEqual([
      `${root}/to.txt`,
      expect.stringMatching(/exists again/),
    ]);
    expect(readFileSync(join(root, "from.txt"), "utf8")).toBe("someone else's\n");
    expect(readFileSync(join(root, "to.txt"), "utf8")).toBe("mine\n");
  });

  test("a child's changes are rewound with its parent's by default; include_children: false leaves them", async () => {
    const { call, invoke, rewind } = clientOf(k);
    const root = area(k, "t3");
    const caps = grants(k)
      .map((c) => `  - "${c}"`)
      .join("\n");
    const p = await call("agent.spawn", {
      manifest: `name: t3parent\nmodel: ${MODEL}\nspawn_child: [t3child]\ncapabilities:\n${caps}\n`,
    });
    const c = await invoke(p.agent_id, "spawn_agent", {
      manifest: `name: t3child\nmodel: ${MODEL}\ncapabilities:\n  - "file_write: ${root}/*"\n`,
    });
    const child = c.output.agent_id;
    expect((await call("agent.status", { agent_id: child })).parent_id).toBe(p.agent_id);
    await invoke(p.agent_id, "file_write", { path: `${root}/parent.txt`, content: "by the parent\n" });
    await invoke(child, "file_write", { path: `${root}/kid/child.txt`, content: "by the child\n" });

    const alone = await rewind(p.agent_id, { include_children: false, dry_run: true });
    expect(alone.restored.map((x: any) => x.path)).toEqual([`${root}/parent.txt`]);
    const all = await rewind(p.agent_id, { dry_run: true });
    expect(all.restored.map((x: any) => x.path).sort()).toEqual(
      [`${root}/parent.txt`, `${root}/kid/child.txt`, `${root}/kid`].sort(),
    );

    const r1 = await rewind(p.agent_id, { include_children: false });
    expect(r1.restored.map((x: any) => x.path)).toEqual([`${root}/parent.txt`]);
    expect(existsSync(join(root, "parent.txt"))).toBe(false);
    expect(readFileSync(join(root, "kid/child.txt"), "utf8")).toBe("by the child\n");
    const r2 = await rewind(p.agent_id);
    expect(r2.conflicts).toEqual([]);
    expect(r2.restored.map((x: any) => x.path)).toEqual(
      expect.arrayContaining([`${root}/kid/child.txt`, `${root}/kid`]),
    );
    expect(snapshot(root)).toEqual({});
  });

  test("rewinding a rewind (to_seq: its audit_seq - 1) puts the agent's changes back", async () => {
    const { invoke, rewind, audit, spawn } = clientOf(k);
    const root = area(k, "t4");
    writeFileSync(join(root, "was.txt"), "was here\n");
    const before = snapshot(root);
    const id = await spawn("t4", grants(k));
    await invoke(id, "file_write", { path: `${root}/d/new.txt`, content: "new\n" });
    await invoke(id, "file_write", { path: `${root}/was.txt`, content: "is now\n" });
    await invoke(id, "file_delete", { path: `${root}/d/new.txt` });
    await invoke(id, "file_write", { path: `${root}/d/again.txt`, content: "again\n" });
    const after = snapshot(root);
    const r = await rewind(id);
    expect(snapshot(root)).toEqual(before);
    expect(typeof r.audit_seq).toBe("number");
    const rec = (await audit(id)).find((e) => e.seq === r.audit_seq);
    expect(rec).toMatchObject({ kind: "agent.rewind", rewind_id: r.rewind_id });
    const back = await rewind(id, { to_seq: r.audit_seq - 1 });
    expect(back.conflicts).toEqual([]);
    expect(snapshot(root)).toEqual(after);
    // and that one too
    await rewind(id, { to_seq: back.audit_seq - 1 });
    expect(snapshot(root)).toEqual(before);
  });

  test("moves that overwrite, and whole directories: the rewind and its undo are both exact", async () => {
    const { invoke, rewind, spawn } = clientOf(k);
    const root = area(k, "t4b");
    writeFileSync(join(root, "keep.txt"), "keep");
    mkdirSync(join(root, "d1"));
    writeFileSync(join(root, "d1", "x.txt"), "x");
    const before = snapshot(root);
    const id = await spawn("t4b", [`file_write: ${root}/*`]);
    await invoke(id, "dir_create", { path: `${root}/a/b/c` });
    await invoke(id, "file_write", { path: `${root}/a/b/c/f.txt`, content: "f" });
    await invoke(id, "file_move", { from: `${root}/d1`, to: `${root}/a/d1moved` });
    await invoke(id, "file_move", { from: `${root}/keep.txt`, to: `${root}/a/b/c/f.txt`, overwrite: true });
    await invoke(id, "file_delete", { path: `${root}/a/b/c/f.txt` });
    const after = snapshot(root);
    const r = await rewind(id);
    expect(r.conflicts).toEqual([]);
    expect(snapshot(root)).toEqual(before);
    const undo = await rewind(id, { to_seq: r.audit_seq - 1 });
    expect(undo.conflicts).toEqual([]);
    expect(undo.unrestorable).toEqual([]);
    expect(snapshot(root)).toEqual(after);
  });
});

describe("crash safety", () => {
  test("kill -9 mid-rewind (some files restored, not all): the next boot finishes it, audited recovered: true", async () => {
    const kk = await boot();
    others.push(kk);
    const { invoke, spawn } = clientOf(kk);
    const root = area(kk, "t5");
    const N = 300;
    const name = (i: number) => `f${String(i).padStart(3, "0")}.bin`;
    const orig = (i: number) => `${i}:`.padEnd(64 * 1024, String.fromCharCode(97 + (i % 26)));
    for (let i = 0; i < N; i++) writeFileSync(join(root, name(i)), orig(i));
    const before = snapshot(root);
    const id = await spawn("t5", grants(kk));
    for (let i = 0; i < N; i++)
      await invoke(id, "file_write", { path: `${root}/${name(i)}`, content: `${i}!`.padEnd(64 * 1024, "Z") });
    const isBack = (i: number) => readFileSync(join(root, name(i)), "utf8") === orig(i);
    expect(isBack(N - 1)).toBe(false);

    const pending = kk.client.call("agent.rewind", { agent_id: id }).catch((e) => e);
    // newest first: the last file written is the first put back; kill once it is, while the first is not
    await until("the rewind's first steps", async () => isBack(N - 1), 20_000);
    kk.proc.kill("SIGKILL");
    await kk.proc.exited;
    kk.client.close();
    await pending;
    let restored = 0;
    for (let i = 0; i < N; i++) if (isBack(i)) restored++;
    expect(restored).toBeGreaterThan(0);
    expect(restored).toBeLessThan(N);

    // the dead kernel's socket file: gone, so the harness waits for the new kernel's (it finishes the rewind first)
    rmSync(kk.socket, { force: true });
    const k2 = await boot({ dir: kk.dir });
    others.push(k2);
    // the boot finished it: every file back, byte for byte
    const now = snapshot(root);
    // no leftover of a restoring write cut by the kill: the resumed step removed it before writing again
    expect(Object.keys(now).filter((n) => n.includes(".aaos-"))).toEqual([]);
    expect(now).toEqual(before);
    const ev = (await k2.client.call("audit.query", { kind: "agent.rewound", limit: 1000 })).events as any[];
    const mine = ev.filter((e) => e.agent_id === id);
    expect(mine).toEqual([
      expect.objectContaining({ kind: "agent.rewound", recovered: true, conflicts: 0, unrestorable: 0 }),
    ]);
    // the recovered run counts the steps it made: those after the last step recorded before the kill
    // (one step may have been made on disk but not yet recorded: it is found done and counted again)
    expect([N, N + 1]).toContain(mine[0].restored + restored);
    const rw = ((await k2.client.call("audit.query", { kind: "agent.rewind", limit: 1000 })).events as any[]).filter(
      (e) => e.agent_id === id,
    );
    expect(rw).toEqual([expect.objectContaining({ rewind_id: mine[0].rewind_id, steps: N })]);
    // the rewind cut by the crash is journaled whole: undoing it puts every one of the agent's writes back
    const undo = await k2.client.call("agent.rewind", { agent_id: id, to_seq: rw[0].seq - 1 });
    expect(undo.conflicts).toEqual([]);
    expect(undo.restored.length).toBe(N);
    for (let i = 0; i < N; i++) expect(readFileSync(join(root, name(i)), "utf8")).toBe(`${i}!`.padEnd(64 * 1024, "Z"));
    await k2.stop();
  }, 40_000);
});

describe("retention", () => {
  test("past journal.max_bytes the oldest pre-images go (journal.prune), past max_pre_image_bytes none is kept: both unrestorable", async () => {
    const kk = await boot({
      kernelYaml: KERNEL_YAML + "journal:\n  max_bytes: 4096\n  max_pre_image_bytes: 2048\n",
    });
    others.push(kk);
    const { call, invoke, rewind, spawn } = clientOf(kk);
    const root = area(kk, "t6");
    const orig = (i: number) => `${i}`.padEnd(1000, String.fromCharCode(97 + i));
    for (let i = 0; i < 6; i++) writeFileSync(join(root, `f${i}.txt`), orig(i));
    writeFileSync(join(root, "big.txt"), "B".repeat(3000));
    const id = await spawn("t6", grants(kk));
    await invoke(id, "file_write", { path: `${root}/big.txt`, content: "small now" });
    for (let i = 0; i < 6; i++) await invoke(id, "file_write", { path: `${root}/f${i}.txt`, content: `new ${i}` });
    // 6 pre-images of 1000 bytes against 4096: the two oldest went
    const prunes = await until("journal.prune", async () => {
      const ev = (await call("audit.query", { kind: "journal.prune", limit: 100 })).events as any[];
      return ev.length >= 2 ? ev : null;
    });
    expect(prunes[0]).toMatchObject({ kind: "journal.prune", pre_images: 1, bytes: 1000, limit: 4096 });
    expect(prunes.reduce((n: number, e: any) => n + e.pre_images, 0)).toBe(2);

    const r = await rewind(id);
    expect(r.conflicts).toEqual([]);
    expect(r.unrestorable.map((u: any) => u.path).sort()).toEqual(
      [`${root}/big.txt`, `${root}/f0.txt`, `${root}/f1.txt`].sort(),
    );
    for (const u of r.unrestorable) expect(u.reason).toMatch(/max_pre_image_bytes|max_bytes|pruned/);
    expect(r.restored.map((x: any) => x.path).sort()).toEqual([2, 3, 4, 5].map((i) => `${root}/f${i}.txt`));
    for (let i = 0; i < 6; i++)
      expect(readFileSync(join(root, `f${i}.txt`), "utf8")).toBe(i < 2 ? `new ${i}` : orig(i));
    // changed, and left as the agent left it
    expect(readFileSync(join(root, "big.txt"), "utf8")).toBe("small now");
  });
});

describe("the journal is kernel-private", () => {
  test("with file_read: /* and file_write: /* every file tool is refused on journal.db and its objects", async () => {
    const { invoke, spawn } = clientOf(k);
    const id = await spawn("t7", ["file_read: /*", "file_write: /*", ...FILE_TOOLS]);
    const j = `${k.dataDir}/state/journal`;
    expect(existsSync(`${j}/journal.db`)).toBe(true);
    expect(statSync(`${j}/objects`).isDirectory()).toBe(true);
    const out = `${k.dataDir}/files/t7-out.txt`;
    writeFileSync(out, "x");
    const calls: [string, object][] = [
      ["file_read", { path: `${j}/journal.db` }],
      ["file_read", { path: `${j}/journal.db-wal` }],
      ["file_write", { path: `${j}/journal.db`, content: "" }],
      ["file_write", { path: `${j}/journal.db`, content: "x", append: true }],
      ["file_write", { path: `${j}/objects/${"0".repeat(64)}`, content: "forged" }],
      ["file_list", { path: j }],
      ["file_list", { path: `${j}/objects` }],
      ["file_delete", { path: `${j}/journal.db` }],
      ["file_delete", { path: `${j}/objects` }],
      ["file_move", { from: `${j}/journal.db`, to: `${k.dataDir}/files/stolen.db` }],
      ["file_move", { from: out, to: `${j}/journal.db`, overwrite: true }],
      ["file_move", { from: `${j}/objects`, to: `${k.dataDir}/files/objects` }],
      ["dir_create", { path: `${j}/objects/x` }],
      ["file_read", { path: `${k.dataDir}/files/../state/journal/journal.db` }],
    ];
    for (const [tool, input] of calls) {
      const e = await rpcError(invoke(id, tool, input), -32001);
      expect(`${tool} ${e.message} ${JSON.stringify(e.data)}`).toMatch(/kernel-private/);
    }
    expect(readFileSync(out, "utf8")).toBe("x");
    expect(existsSync(`${k.dataDir}/files/stolen.db`)).toBe(false);
    expect(existsSync(`${j}/objects/x`)).toBe(false);
    // the file_list of the data directory does not show it either
    const d = await invoke(id, "file_list", { path: k.dataDir });
    expect(d.output.entries.map((e: any) => e.name)).toEqual(["files"]);
  });
});

describe("approval by effect class", () => {
  /** the approval the call waits for, then deny or approve it; returns the call's outcome */
  async function decide(call: ReturnType<typeof clientOf>["call"], agent_id: string, tool: string, decision: string) {
    const a = await until(`an approval for ${tool}`, async () =>
      ((await call("approval.list")).approvals as any[]).find((x) => x.agent_id === agent_id && x.tool === tool),
    );
    await call("approval.respond", { id: a.id, decision });
    return a;
  }

  test("[irreversible] gates web_fetch and agent_call, not file_write; [reversible] gates file_write", async () => {
    const { call, invoke, spawn } = clientOf(k);
    const root = area(k, "t8");
    const id = await spawn(
      "t8",
      [...grants(k), "web_fetch: http://127.0.0.1:9/*", "call: t8.*"],
      "approval_required: [irreversible]\n",
    );
    // file_write is reversible: it runs at once
    await invoke(id, "file_write", { path: `${root}/free.txt`, content: "no approval\n" });
    expect(readFileSync(join(root, "free.txt"), "utf8")).toBe("no approval\n");
    expect(((await call("approval.list")).approvals as any[]).filter((x) => x.agent_id === id)).toEqual([]);
    for (const [tool, input] of [
      ["web_fetch", { url: "http://127.0.0.1:9/x" }],
      ["agent_call", { to: id, method: "m" }],
    ] as const) {
      const pending = invoke(id, tool, input).catch((e) => e);
      const a = await decide(call, id, tool, "deny");
      expect(a.input).toEqual(expect.objectContaining(input));
      expect((await pending).code).toBe(-32003);
    }

    const r = await spawn("t8r", grants(k), "approval_required: [reversible]\n");
    const pending = invoke(r, "file_write", { path: `${root}/gated.txt`, content: "approved\n" });
    await Bun.sleep(100);
    expect(existsSync(join(root, "gated.txt"))).toBe(false);
    await decide(call, r, "file_write", "approve");
    await pending;
    expect(readFileSync(join(root, "gated.txt"), "utf8")).toBe("approved\n");
    // and echo (no effect) is not gated
    const e = await spawn("t8e", ["echo"], "approval_required: [reversible, irreversible]\n");
    expect((await invoke(e, "echo", { message: "hi" })).output).toEqual({ message: "hi" });
  });
});

describe("bad inputs", () => {
  test("unknown agent -32002, to_seq < 0 -32602, a running agent -32008", async () => {
    const { call, rewind, spawn } = clientOf(k);
    await rpcError(rewind("ag-0123456789abcdef"), -32002);
    const root = area(k, "t9");
    const id = await spawn("t9", grants(k), "approval_required: [file_write]\n");
    await rpcError(rewind(id, { to_seq: -1 }), -32602);
    await rpcError(rewind(id, { to_seq: 1.5 }), -32602);
    await rpcError(rewind(id, { dry_run: "yes" }), -32602);
    // the run waits for the approval of its file_write: the agent is running
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path: `${root}/w.txt`, content: "w\n" } }] },
      { text: "done" },
    ]);
    const { message_id } = await call("agent.send", { agent_id: id, message: "write it" });
    const a = await until("the run's approval", async () =>
      ((await call("approval.list")).approvals as any[]).find((x) => x.agent_id === id),
    );
    expect((await call("agent.status", { agent_id: id })).state).toBe("running");
    await rpcError(rewind(id), -32008);
    // a dry run only looks: allowed
    expect((await rewind(id, { dry_run: true })).restored).toEqual([]);
    await call("approval.respond", { id: a.id, decision: "approve" });
    const res = await until("the run's end", async () => {
      const r = await call("agent.result", { agent_id: id, message_id });
      return r.state === "queued" || r.state === "running" ? null : r;
    });
    expect(res.state).toBe("done");
    expect(readFileSync(join(root, "w.txt"), "utf8")).toBe("w\n");
    const r = await until("the agent idle", async () => {
      try {
        return await rewind(id);
      } catch (e: any) {
        if (e.code === -32008) return null;
        throw e;
      }
    });
    expect(r.restored.map((x: any) => x.path)).toEqual([`${root}/w.txt`]);
    expect(existsSync(join(root, "w.txt"))).toBe(false);
  });
});
