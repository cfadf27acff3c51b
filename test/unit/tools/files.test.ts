// file_read / file_write / file_list on real files in a temp dir, through a
// ToolContext over a real CapabilityTable. Every attack must be refused, and
// a refused write must leave nothing behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { setOpenat2Disabled } from "../../../kernel/sys/openat2.ts";
import fileList from "../../../kernel/tools/file_list.ts";
import fileRead from "../../../kernel/tools/file_read.ts";
import fileWrite from "../../../kernel/tools/file_write.ts";
import { makeCtx, rejection } from "./tool-context.ts";

let dir: string; // plays /
let data: string; // plays /data
let secret: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-files-"));
  data = join(dir, "data");
  secret = join(dir, "secret");
  mkdirSync(join(data, "project", "sub"), { recursive: true });
  mkdirSync(join(data, "output"), { recursive: true });
  mkdirSync(join(dir, "data-x"), { recursive: true });
  mkdirSync(secret, { recursive: true });
  writeFileSync(join(data, "project", "notes.txt"), "project notes");
  writeFileSync(join(data, "project", "sub", "deep.txt"), "deep");
  writeFileSync(join(dir, "data-x", "x.txt"), "not yours");
  writeFileSync(join(secret, "key"), "TOP SECRET");
});
afterAll(() => {
  setOpenat2Disabled(false);
  rmSync(dir, { recursive: true, force: true });
});

const denied = (e: unknown) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.CapabilityDenied);
  return e as KernelError;
};

// run every test twice: with openat2, and with the component walk a kernel without openat2 gets
for (const mode of ["openat2", "fallback walk"] as const) {
  describe(`${mode}`, () => {
    beforeAll(() => setOpenat2Disabled(mode === "fallback walk"));
    afterAll(() => setOpenat2Disabled(false));
    const grants = () => [`file_read: ${data}/*`, `file_write: ${data}/output/*`];

    test("granted reads, writes and lists work, beneath the grant of the token authorize returned", async () => {
      const ctx = makeCtx(grants());
      const r = (await fileRead.run(ctx, { path: `${data}/project/notes.txt` })) as any;
      expect(r).toEqual({ path: `${data}/project/notes.txt`, content: "project notes", bytes: 13, truncated: false });
      const w = (await fileWrite.run(ctx, {
        path: `${data}/output/${mode}/a/b/report.md`,
        content: "# report ✓",
      })) as any;
      expect(w.bytes).toBe(Buffer.byteLength("# report ✓"));
      expect(readFileSync(join(data, "output", mode, "a/b/report.md"), "utf8")).toBe("# report ✓");
      await fileWrite.run(ctx, { path: `${data}/output/${mode}/a/b/report.md`, content: "\nmore", append: true });
      expect(readFileSync(join(data, "output", mode, "a/b/report.md"), "utf8")).toBe("# report ✓\nmore");
      await fileWrite.run(ctx, { path: `${data}/output/${mode}/a/b/report.md`, content: "replaced" });
      expect(readFileSync(join(data, "output", mode, "a/b/report.md"), "utf8")).toBe("replaced");
      const l = (await fileList.run(ctx, { path: `${data}/project` })) as any;
      expect(l.entries).toContainEqual({ name: "notes.txt", type: "file", size: 13 });
      expect(l.entries).toContainEqual({ name: "sub", type: "dir", size: expect.any(Number) });
      const names = l.entries.map((e: any) => e.name);
      expect(names).toEqual([...names].sort());
      const sub = (await fileList.run(ctx, { path: `${data}/project/sub/` })) as any;
      expect(sub).toEqual({
        path: `${data}/project/sub`,
        entries: [{ name: "deep.txt", type: "file", size: 4 }],
        truncated: false,
      });
      // the grant's root itself can be listed
      const root = (await fileList.run(ctx, { path: data })) as any;
      expect(root.entries.map((e: any) => e.name)).toContain("project");
    });

    test("the grant's root directory is created when missing (it is granted itself)", async () => {
      const ctx = makeCtx([`file_write: ${data}/fresh-${mode.length}/*`]);
      await fileWrite.run(ctx, { path: `${data}/fresh-${mode.length}/x/y.txt`, content: "y" });
      expect(readFileSync(join(data, `fresh-${mode.length}`, "x", "y.txt"), "utf8")).toBe("y");
    });

    test("an exact-path grant writes only that file and creates no parent", async () => {
      const ctx = makeCtx([
        `file_write: ${data}/output/exact-${mode.length}.txt`,
        `file_write: ${data}/output/nodir-${mode.length}/f.txt`,
      ]);
      await fileWrite.run(ctx, { path: `${data}/output/exact-${mode.length}.txt`, content: "e" });
      expect(readFileSync(join(data, "output", `exact-${mode.length}.txt`), "utf8")).toBe("e");
      const e = await rejection(
        fileWrite.run(ctx, { path: `${data}/output/nodir-${mode.length}/f.txt`, content: "e" }),
      );
      expect((e as KernelError).code).toBe(ErrorCode.InvalidParams);
      expect(existsSync(join(data, "output", `nodir-${mode.length}`))).toBe(false);
    });

    test("max_bytes and the kernel's cap truncate, on a character boundary", async () => {
      writeFileSync(join(data, "project", "long.txt"), "ab€cd"); // € is 3 bytes
      const ctx = makeCtx(grants(), { limits: { fileReadMaxBytes: 4 } });
      expect(await fileRead.run(ctx, { path: `${data}/project/long.txt` })).toMatchObject({
        content: "ab",
        bytes: 2,
        truncated: true,
      });
      expect(await fileRead.run(ctx, { path: `${data}/project/long.txt`, max_bytes: 1000 })).toMatchObject({
        content: "ab",
        truncated: true,
      });
      const big = makeCtx(grants());
      expect(await fileRead.run(big, { path: `${data}/project/long.txt`, max_bytes: 5 })).toMatchObject({
        content: "ab€",
        bytes: 5,
        truncated: true,
      });
      expect(await fileRead.run(big, { path: `${data}/project/long.txt` })).toMatchObject({
        content: "ab€cd",
        bytes: 7,
        truncated: false,
      });
    });

    test("reading a directory or a missing file is an actionable error", async () => {
      const ctx = makeCtx(grants());
      const e1 = await rejection(fileRead.run(ctx, { path: `${data}/project` }));
      expect(e1.message).toMatch(/is a directory \(use file_list\)/);
      const e2 = await rejection(fileRead.run(ctx, { path: `${data}/project/missing.txt` }));
      expect(e2).toMatchObject({ code: ErrorCode.InvalidParams, message: expect.stringMatching(/no such file/) });
    });

    test("`..` out of a grant", async () => {
      const ctx = makeCtx(grants());
      denied(await rejection(fileRead.run(ctx, { path: `${data}/project/../../secret/key` })));
      denied(await rejection(fileWrite.run(ctx, { path: `${data}/output/../../escape.txt`, content: "x" })));
      denied(await rejection(fileList.run(ctx, { path: `${data}/..` })));
      expect(existsSync(join(dir, "escape.txt"))).toBe(false);
      expect(ctx.denied.length).toBe(3);
    });

    test("/data/* does not grant /data-x", async () => {
      const ctx = makeCtx(grants());
      denied(await rejection(fileRead.run(ctx, { path: `${data}-x/x.txt` })));
      denied(await rejection(fileList.run(ctx, { path: `${data}-x` })));
    });

    test("a symlink as the last component", async () => {
      const ctx = makeCtx(grants());
      const link = join(data, "project", `link-to-key-${mode.length}`);
      symlinkSync(join(secret, "key"), link);
      const e = denied(await rejection(fileRead.run(ctx, { path: link })));
      expect(e.data).toMatchObject({ reason: "symlink or escape refused", tool: "file_read" });
      const planted = join(data, "output", `planted-${mode.length}`);
      symlinkSync(join(secret, `planted-${mode.length}`), planted);
      denied(await rejection(fileWrite.run(ctx, { path: planted, content: "x" })));
      expect(existsSync(join(secret, `planted-${mode.length}`))).toBe(false);
      // a symlink to a directory as the last component of a listing
      const dl = join(data, "project", `dirlink-last-${mode.length}`);
      symlinkSync(secret, dl);
      denied(await rejection(fileList.run(ctx, { path: dl })));
    });

    test("a symlink as a middle directory", async () => {
      const ctx = makeCtx(grants());
      const dl = join(data, "project", `dirlink-${mode.length}`);
      symlinkSync(secret, dl);
      denied(await rejection(fileRead.run(ctx, { path: `${dl}/key` })));
      const ol = join(data, "output", `outlink-${mode.length}`);
      symlinkSync(secret, ol);
      denied(await rejection(fileWrite.run(ctx, { path: `${ol}/new.txt`, content: "x" })));
      denied(await rejection(fileWrite.run(ctx, { path: `${ol}/deeper/new.txt`, content: "x" })));
      expect(readdirSync(secret)).toEqual(["key"]);
    });

    test("a symlink above the grant's root is refused too", async () => {
      const alias = join(dir, `alias-${mode.length}`);
      symlinkSync(data, alias);
      const ctx = makeCtx([`file_read: ${alias}/*`]);
      denied(await rejection(fileRead.run(ctx, { path: `${alias}/project/notes.txt` })));
    });

    test("a directory swapped for a symlink after the check: the write does not land outside", async () => {
      const victim = join(data, "output", `race-${mode.length}`);
      mkdirSync(victim);
      const ctx = makeCtx(grants(), {
        afterAuthorize: () => {
          // between the check and the open, the parent becomes a symlink out of the grant
          renameSync(victim, `${victim}-moved`);
          symlinkSync(secret, victim);
        },
      });
      denied(await rejection(fileWrite.run(ctx, { path: `${victim}/swapped.txt`, content: "x" })));
      expect(existsSync(join(secret, "swapped.txt"))).toBe(false);
      unlinkSync(victim);
      // the same for a read: the swapped parent leads to the secret
      const rv = join(data, "project", `race-${mode.length}`);
      mkdirSync(rv);
      writeFileSync(join(rv, "key"), "harmless");
      const rctx = makeCtx(grants(), {
        afterAuthorize: () => {
          renameSync(rv, `${rv}-moved`);
          symlinkSync(secret, rv);
        },
      });
      denied(await rejection(fileRead.run(rctx, { path: `${rv}/key` })));
      expect(readdirSync(secret)).toEqual(["key"]);
    });

    test("NUL bytes in a path", async () => {
      const ctx = makeCtx(grants());
      const e = denied(await rejection(fileRead.run(ctx, { path: `${data}/project/notes.txt\u0000.png` })));
      expect(e.message).toMatch(/NUL/);
      denied(await rejection(fileWrite.run(ctx, { path: `${data}/output/x\u0000`, content: "x" })));
      expect(readdirSync(join(data, "output")).some((n) => n.startsWith("x"))).toBe(false);
    });

    test("relative paths are refused", async () => {
      const ctx = makeCtx(grants());
      denied(await rejection(fileRead.run(ctx, { path: "data/project/notes.txt" })));
    });

    test("a denied write leaves no file and no directory", async () => {
      const ctx = makeCtx([`file_write: ${data}/output/allowed-${mode.length}/*`]);
      denied(
        await rejection(
          fileWrite.run(ctx, { path: `${data}/output/denied-${mode.length}/deep/dir/file.txt`, content: "x" }),
        ),
      );
      expect(existsSync(join(data, "output", `denied-${mode.length}`))).toBe(false);
      expect(existsSync(join(data, "output", `allowed-${mode.length}`))).toBe(false);
      // read-only grant: no write at all
      const ro = makeCtx([`file_read: ${data}/*`]);
      denied(await rejection(fileWrite.run(ro, { path: `${data}/output/ro-${mode.length}/f.txt`, content: "x" })));
      expect(existsSync(join(data, "output", `ro-${mode.length}`))).toBe(false);
    });

    test("a write on top of a FIFO or a directory is refused without hanging", async () => {
      const ctx = makeCtx(grants());
      mkdirSync(join(data, "output", `isdir-${mode.length}`));
      const e = await rejection(fileWrite.run(ctx, { path: `${data}/output/isdir-${mode.length}`, content: "x" }));
      expect(e.code).toBe(ErrorCode.InvalidParams);
      const fifo = join(data, "project", `fifo-${mode.length}`);
      Bun.spawnSync(["mkfifo", fifo]);
      if (existsSync(fifo)) {
        const r = await rejection(fileRead.run(ctx, { path: fifo }));
        expect(r.message).toMatch(/not a regular file/);
      }
    });
  });
}

test("a revoked or exhausted token authorises nothing", async () => {
  const ctx = makeCtx([{ capability: `file_read: ${data}/*`, max_invocations: 1 }]);
  await fileRead.run(ctx, { path: `${data}/project/notes.txt` });
  denied(await rejection(fileRead.run(ctx, { path: `${data}/project/notes.txt` })));
  const ctx2 = makeCtx([`file_read: ${data}/*`]);
  ctx2.table.revokeAll(ctx2.agentId);
  denied(await rejection(fileList.run(ctx2, { path: data })));
});

test("the race, many rounds: a directory flipping between real and symlink never lets a write out", async () => {
  const victim = join(data, "output", "flip");
  const real = join(data, "output", "flip-real");
  mkdirSync(real);
  const ctx = makeCtx([`file_write: ${data}/output/*`]);
  let stop = false;
  let wrote = 0;
  const flipper = (async () => {
    while (!stop) {
      renameSync(real, victim);
      await Bun.sleep(0);
      renameSync(victim, real);
      symlinkSync(secret, victim);
      await Bun.sleep(0);
      unlinkSync(victim);
    }
  })();
  for (let i = 0; i < 100; i++) {
    await fileWrite
      .run(ctx, { path: `${victim}/f${i}.txt`, content: "x" })
      .then(() => wrote++)
      .catch(() => {});
    await Bun.sleep(0);
  }
  stop = true;
  await flipper;
  expect(readdirSync(secret).sort()).toEqual(["key"]);
});

describe("file_write journals every change before it makes it", () => {
  const sha = (b: string | Uint8Array) => createHash("sha256").update(b).digest("hex");
  const grant = (opts = {}) => makeCtx([`file_write: ${data}/journaled/*`], opts);
  const root = () => join(data, "journaled");

  test("a new file: its missing parents (the grant's root too), parents first, then the file", async () => {
    const ctx = grant();
    const p = join(root(), "a", "new.txt");
    const out = (await fileWrite.run(ctx, { path: p, content: "fresh ✓" })) as any;
    const bytes = Buffer.from("fresh ✓");
    const dirChange = (path: string) => ({
      path,
      pre: { kind: "absent" },
      preContent: null,
      post: { kind: "dir", mode: 0o755 },
    });
    expect(ctx.journaled as unknown).toEqual([
      {
        changes: [
          dirChange(root()),
          dirChange(join(root(), "a")),
          {
            path: p,
            pre: { kind: "absent" },
            preContent: null,
            post: { kind: "file", sha256: sha(bytes), size: bytes.length, mode: 0o644 },
          },
        ],
        settled: "done",
      },
    ]);
    expect(out).toEqual({
      path: p,
      bytes: bytes.length,
      changes: [
        { path: root(), pre: { kind: "absent" }, post: { kind: "dir" } },
        { path: join(root(), "a"), pre: { kind: "absent" }, post: { kind: "dir" } },
        { path: p, pre: { kind: "absent" }, post: { kind: "file", sha256: sha(bytes) } },
      ],
    });
  });

  test("a replace: the old bytes are the pre-image, the mode is kept", async () => {
    mkdirSync(root(), { recursive: true });
    const p = join(root(), "replace.txt");
    writeFileSync(p, "old content", { mode: 0o600 });
    const ctx = grant();
    await fileWrite.run(ctx, { path: p, content: "new content" });
    expect(ctx.journaled as unknown).toEqual([
      {
        changes: [
          {
            path: p,
            pre: { kind: "file", sha256: sha("old content"), size: 11, mode: 0o600 },
            preContent: expect.any(Uint8Array),
            post: { kind: "file", sha256: sha("new content"), size: 11, mode: 0o600 },
          },
        ],
        settled: "done",
      },
    ]);
    expect(Buffer.from(ctx.journaled[0]!.changes[0]!.preContent!).toString()).toBe("old content");
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  test("an append: the post-image is the old bytes and the new, also past the pre-image limit", async () => {
    mkdirSync(root(), { recursive: true });
    const p = join(root(), "append.txt");
    writeFileSync(p, "head ");
    const ctx = grant();
    await fileWrite.run(ctx, { path: p, content: "tail", append: true });
    expect(readFileSync(p, "utf8")).toBe("head tail");
    const [c] = ctx.journaled[0]!.changes;
    expect(c).toEqual({
      path: p,
      pre: { kind: "file", sha256: sha("head "), size: 5, mode: statSync(p).mode & 0o7777 },
      preContent: expect.any(Uint8Array),
      post: { kind: "file", sha256: sha("head tail"), size: 9, mode: statSync(p).mode & 0o7777 },
    });
    expect(Buffer.from(c!.preContent!).toString()).toBe("head ");
    // larger than readState keeps: no pre-image bytes, the post sha still exact
    const big = join(root(), "big.bin");
    const old = Buffer.alloc(16 * 1024 * 1024 + 4096, 7);
    writeFileSync(big, old);
    await fileWrite.run(ctx, { path: big, content: "++", append: true });
    const [b] = ctx.journaled[1]!.changes;
    expect(b!.preContent).toBeNull();
    expect(b!.pre).toMatchObject({ kind: "file" });
    expect(b!.post).toMatchObject({ kind: "file", sha256: sha(readFileSync(big)), size: old.length + 2 });
    expect(ctx.journaled.map((j) => j.settled)).toEqual(["done", "done"]);
    rmSync(big);
  });

  test("replacing a hard-linked file: journaled without its bytes", async () => {
    mkdirSync(root(), { recursive: true });
    const outside = join(dir, "hl-outside.txt");
    writeFileSync(outside, "outside content");
    const link = join(root(), "hl.txt");
    linkSync(outside, link);
    const ctx = grant();
    await fileWrite.run(ctx, { path: link, content: "mine" });
    expect(readFileSync(outside, "utf8")).toBe("outside content");
    const [c] = ctx.journaled[0]!.changes;
    expect(c!.pre).toMatchObject({ kind: "file" });
    expect(c!.preContent).toBeNull();
  });

  test("refusals journal nothing; an error after begin and before the change is settled failed", async () => {
    mkdirSync(root(), { recursive: true });
    const ctx = grant();
    const link = join(root(), "sym");
    symlinkSync(join(secret, "key"), link);
    denied(await rejection(fileWrite.run(ctx, { path: link, content: "x" })));
    denied(await rejection(fileWrite.run(ctx, { path: join(data, "project", "x"), content: "x" })));
    expect(ctx.journaled).toEqual([]);
    const p = join(root(), "becomes-dir.txt");
    writeFileSync(p, "x");
    const racing = grant({
      onBegin: () => {
        rmSync(p);
        mkdirSync(p);
      },
    });
    const e = await rejection(fileWrite.run(racing, { path: p, content: "y" }));
    expect(e.code).toBe(ErrorCode.InvalidParams);
    expect(racing.journaled.map((j) => j.settled)).toEqual(["failed"]);
    const a = join(root(), "append-race.txt");
    writeFileSync(a, "x");
    const racing2 = grant({
      onBegin: () => {
        rmSync(a);
        symlinkSync(join(secret, "key"), a);
      },
    });
    denied(await rejection(fileWrite.run(racing2, { path: a, content: "y", append: true })));
    expect(racing2.journaled.map((j) => j.settled)).toEqual(["failed"]);
    expect(readFileSync(join(secret, "key"), "utf8")).toBe("TOP SECRET");
  });
});
