// file_move on real files in a temp dir: files and directories move,
// journaled first (the source's pre-image, the destination's, the parents it
// creates, the moved_from mark a rewind follows back); every refusal leaves
// the tree as it was and nothing journaled.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrivateAreas } from "../../../kernel/caps/index.ts";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { HARD_LINK_REASON, setOpenat2Disabled } from "../../../kernel/sys/openat2.ts";
import fileMove from "../../../kernel/tools/file_move.ts";
import { makeCtx, rejection } from "./tool-context.ts";

let dir: string;
let w: string; // the granted tree
let secret: string;

const sha = (b: string | Uint8Array) => createHash("sha256").update(b).digest("hex");
const modeOf = (p: string) => statSync(p).mode & 0o7777;
const denied = (e: unknown) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.CapabilityDenied);
  return e as KernelError;
};
const invalid = (e: unknown, re: RegExp) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.InvalidParams);
  expect((e as KernelError).message).toMatch(re);
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-move-"));
  w = join(dir, "w");
  secret = join(dir, "secret");
  mkdirSync(w);
  mkdirSync(secret);
  writeFileSync(join(secret, "key"), "TOP SECRET");
});
afterAll(() => {
  setOpenat2Disabled(false);
  rmSync(dir, { recursive: true, force: true });
});

for (const mode of ["openat2", "fallback walk"] as const) {
  describe(mode, () => {
    beforeAll(() => setOpenat2Disabled(mode === "fallback walk"));
    afterAll(() => setOpenat2Disabled(false));
    const m = mode.length;
    const grant = () => makeCtx([`file_write: ${w}/*`]);

    test("a file to a new path: its missing parents are created, every change journaled in order", async () => {
      const from = join(w, `a-${m}.txt`);
      const to = join(w, `new-${m}`, "sub", "b.txt");
      writeFileSync(from, "moving bytes", { mode: 0o600 });
      const bytes = readFileSync(from);
      const fmode = modeOf(from);
      const ctx = grant();
      const out = (await fileMove.run(ctx, { from, to })) as any;
      expect(existsSync(from)).toBe(false);
      expect(readFileSync(to, "utf8")).toBe("moving bytes");
      const X = { kind: "file", sha256: sha(bytes), size: bytes.length, mode: fmode };
      expect(ctx.journaled as unknown).toEqual([
        {
          changes: [
            {
              path: join(w, `new-${m}`),
              pre: { kind: "absent" },
              preContent: null,
              post: { kind: "dir", mode: 0o755 },
            },
            {
              path: join(w, `new-${m}`, "sub"),
              pre: { kind: "absent" },
              preContent: null,
              post: { kind: "dir", mode: 0o755 },
            },
            { path: from, pre: X, preContent: expect.any(Uint8Array), post: { kind: "absent" } },
            { path: to, pre: { kind: "absent" }, preContent: null, post: { ...X, moved_from: from } },
          ],
          settled: "done",
        },
      ]);
      expect(Buffer.from(ctx.journaled[0]!.changes[2]!.preContent!).equals(bytes)).toBe(true);
      expect(out).toEqual({
        from,
        to,
        changes: [
          { path: join(w, `new-${m}`), pre: { kind: "absent" }, post: { kind: "dir" } },
          { path: join(w, `new-${m}`, "sub"), pre: { kind: "absent" }, post: { kind: "dir" } },
          { path: from, pre: { kind: "file", sha256: sha(bytes) }, post: { kind: "absent" } },
          { path: to, pre: { kind: "absent" }, post: { kind: "file", sha256: sha(bytes) } },
        ],
      });
    });

    test("overwrite: true replaces a regular file, whose bytes are journaled; without it, refused", async () => {
      const from = join(w, `src-${m}.txt`);
      const to = join(w, `dst-${m}.txt`);
      writeFileSync(from, "new");
      writeFileSync(to, "old content");
      const ctx = grant();
      invalid(await rejection(fileMove.run(ctx, { from, to })), /exists \(overwrite: true/);
      invalid(await rejection(fileMove.run(ctx, { from, to, overwrite: false })), /exists/);
      expect(ctx.journaled).toEqual([]);
      await fileMove.run(ctx, { from, to, overwrite: true });
      expect(readFileSync(to, "utf8")).toBe("new");
      expect(existsSync(from)).toBe(false);
      const [src, dst] = ctx.journaled[0]!.changes;
      expect(src).toMatchObject({ path: from, pre: { kind: "file", sha256: sha("new") }, post: { kind: "absent" } });
      expect(dst).toMatchObject({
        path: to,
        pre: { kind: "file", sha256: sha("old content"), size: 11 },
        post: { kind: "file", sha256: sha("new"), moved_from: from },
      });
      expect(Buffer.from(dst!.preContent!).toString()).toBe("old content");
      expect(ctx.journaled[0]!.settled).toBe("done");
    });

    test("a directory moves with its tree; a directory is never overwritten, nor moved into itself", async () => {
      const from = join(w, `tree-${m}`);
      mkdirSync(join(from, "inner"), { recursive: true });
      writeFileSync(join(from, "inner", "f"), "f");
      const dmode = modeOf(from);
      const ctx = grant();
      invalid(await rejection(fileMove.run(ctx, { from, to: join(from, "inner", "x") })), /into itself/);
      invalid(await rejection(fileMove.run(ctx, { from, to: from })), /same path/);
      mkdirSync(join(w, `occupied-${m}`));
      invalid(
        await rejection(fileMove.run(ctx, { from, to: join(w, `occupied-${m}`), overwrite: true })),
        /is a directory/,
      );
      writeFileSync(join(w, `afile-${m}`), "a");
      invalid(
        await rejection(fileMove.run(ctx, { from, to: join(w, `afile-${m}`), overwrite: true })),
        /cannot replace the file/,
      );
      expect(ctx.journaled).toEqual([]);
      const to = join(w, `moved-tree-${m}`);
      const out = (await fileMove.run(ctx, { from, to })) as any;
      expect(readFileSync(join(to, "inner", "f"), "utf8")).toBe("f");
      expect(existsSync(from)).toBe(false);
      expect(ctx.journaled as unknown).toEqual([
        {
          changes: [
            { path: from, pre: { kind: "dir", mode: dmode }, preContent: null, post: { kind: "absent" } },
            {
              path: to,
              pre: { kind: "absent" },
              preContent: null,
              post: { kind: "dir", mode: dmode, moved_from: from },
            },
          ],
          settled: "done",
        },
      ]);
      expect(out.changes).toEqual([
        { path: from, pre: { kind: "dir" }, post: { kind: "absent" } },
        { path: to, pre: { kind: "absent" }, post: { kind: "dir" } },
      ]);
    });

    test("a missing source, the grant's root, a denied path: refused, audited", async () => {
      const ctx = grant();
      invalid(
        await rejection(fileMove.run(ctx, { from: join(w, `nope-${m}`), to: join(w, `x-${m}`) })),
        /does not exist/,
      );
      invalid(await rejection(fileMove.run(ctx, { from: w, to: join(w, "x") })), /root of the grant/);
      writeFileSync(join(w, `mine-${m}`), "mine");
      denied(await rejection(fileMove.run(ctx, { from: join(w, `mine-${m}`), to: join(secret, `stolen-${m}`) })));
      denied(await rejection(fileMove.run(ctx, { from: join(secret, "key"), to: join(w, `key-${m}`) })));
      expect(ctx.denied.map((d) => d.resource)).toEqual([join(secret, `stolen-${m}`), join(secret, "key")]);
      expect(existsSync(join(w, `mine-${m}`)) && !existsSync(join(secret, `stolen-${m}`))).toBe(true);
      expect(readFileSync(join(secret, "key"), "utf8")).toBe("TOP SECRET");
      expect(ctx.journaled).toEqual([]);
    });

    test("symlinks: as source, as destination, in a parent of either; hard links at either end", async () => {
      const ctx = grant();
      const link = join(w, `slink-${m}`);
      symlinkSync(join(secret, "key"), link);
      denied(await rejection(fileMove.run(ctx, { from: link, to: join(w, `s2-${m}`) })));
      writeFileSync(join(w, `plain-${m}`), "p");
      denied(await rejection(fileMove.run(ctx, { from: join(w, `plain-${m}`), to: link, overwrite: true })));
      const dl = join(w, `dlink-${m}`);
      symlinkSync(secret, dl);
      denied(await rejection(fileMove.run(ctx, { from: `${dl}/key`, to: join(w, `k-${m}`) })));
      denied(await rejection(fileMove.run(ctx, { from: join(w, `plain-${m}`), to: `${dl}/planted` })));
      denied(await rejection(fileMove.run(ctx, { from: join(w, `plain-${m}`), to: `${dl}/deeper/planted` })));
      const outside = join(secret, `hl-${m}`);
      writeFileSync(outside, "outside");
      linkSync(outside, join(w, `hl-${m}`));
      const e = denied(await rejection(fileMove.run(ctx, { from: join(w, `hl-${m}`), to: join(w, `hl2-${m}`) })));
      expect(e.message).toContain(HARD_LINK_REASON);
      const e2 = denied(
        await rejection(fileMove.run(ctx, { from: join(w, `plain-${m}`), to: join(w, `hl-${m}`), overwrite: true })),
      );
      expect(e2.data).toMatchObject({ path: join(w, `hl-${m}`), nlink: 2 });
      expect(readFileSync(join(w, `plain-${m}`), "utf8")).toBe("p");
      expect(statSync(outside).nlink).toBe(2);
      expect(existsSync(join(secret, "planted")) || existsSync(join(secret, "deeper"))).toBe(false);
      expect(ctx.journaled).toEqual([]);
    });

    test("a directory holding kernel-private state or the agents' area is not moved", async () => {
      const data = join(dir, `kdata-${m}`);
      const config = join(dir, `kconfig-${m}`);
      mkdirSync(join(data, "files"), { recursive: true });
      mkdirSync(join(config, "secrets"), { recursive: true });
      writeFileSync(join(config, "secrets", "k"), "SECRET");
      const areas = new PrivateAreas({ dataDir: data, configDir: config });
      const ctx = makeCtx([`file_write: ${dir}/*`], { privateAreas: areas });
      invalid(await rejection(fileMove.run(ctx, { from: config, to: join(dir, `open-${m}`) })), /kernel-private/);
      invalid(
        await rejection(fileMove.run(ctx, { from: join(data, "files"), to: join(dir, `f-${m}`) })),
        /agents' own area/,
      );
      invalid(
        await rejection(fileMove.run(ctx, { from: data, to: join(dir, `d-${m}`) })),
        /kernel-private|agents' own/,
      );
      denied(await rejection(fileMove.run(ctx, { from: join(config, "secrets", "k"), to: join(dir, `k-${m}`) })));
      expect(readFileSync(join(config, "secrets", "k"), "utf8")).toBe("SECRET");
      expect(ctx.journaled).toEqual([]);
    });

    test("across file systems: refused as such", async () => {
      if (!existsSync("/dev/shm")) return;
      const shm = mkdtempSync("/dev/shm/aaos-move-");
      try {
        const from = join(w, `xdev-${m}`);
        writeFileSync(from, "x");
        const ctx = makeCtx([`file_write: ${w}/*`, `file_write: ${shm}/*`]);
        if (statSync(shm).dev === statSync(w).dev) return;
        invalid(await rejection(fileMove.run(ctx, { from, to: join(shm, "x") })), /cannot move across file systems/);
        expect(existsSync(from)).toBe(true);
        expect(ctx.journaled.map((j) => j.settled)).toEqual(["failed"]);
      } finally {
        rmSync(shm, { recursive: true, force: true });
      }
    });

    test("an error after begin, before the rename: settled failed", async () => {
      const from = join(w, `gone-${m}`);
      writeFileSync(from, "x");
      const ctx = makeCtx([`file_write: ${w}/*`], { onBegin: () => rmSync(from) });
      invalid(await rejection(fileMove.run(ctx, { from, to: join(w, `gone2-${m}`) })), /no such file/);
      expect(ctx.journaled.map((j) => j.settled)).toEqual(["failed"]);
      expect(existsSync(join(w, `gone2-${m}`))).toBe(false);
    });
  });
}
