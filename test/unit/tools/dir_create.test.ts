// dir_create on real directories in a temp dir: the directory and its
// missing parents are created beneath the grant, each journaled first; an
// existing one is no change; every refusal creates nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrivateAreas } from "../../../kernel/caps/index.ts";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { setOpenat2Disabled } from "../../../kernel/sys/openat2.ts";
import dirCreate from "../../../kernel/tools/dir_create.ts";
import { makeCtx, rejection } from "./tool-context.ts";

let dir: string;
let w: string; // the granted tree's parent
let secret: string;

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
const created = (path: string) => ({
  path,
  pre: { kind: "absent" },
  preContent: null,
  post: { kind: "dir", mode: 0o755 },
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-mkdir-"));
  w = join(dir, "w");
  secret = join(dir, "secret");
  mkdirSync(w);
  mkdirSync(secret);
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

    test("creates the directory and its missing parents, parents first, each journaled", async () => {
      const root = join(w, `root-${m}`); // the grant's root, missing: created too
      const ctx = makeCtx([`file_write: ${root}/*`]);
      const p = join(root, "a", "b");
      const out = (await dirCreate.run(ctx, { path: p })) as any;
      expect(statSync(p).isDirectory()).toBe(true);
      const paths = [root, join(root, "a"), p];
      expect(ctx.journaled as unknown).toEqual([{ changes: paths.map(created), settled: "done" }]);
      expect(out).toEqual({
        path: p,
        created: paths,
        changes: paths.map((path) => ({ path, pre: { kind: "absent" }, post: { kind: "dir" } })),
      });
      // again: nothing to do, nothing journaled
      const again = makeCtx([`file_write: ${root}/*`]);
      expect(await dirCreate.run(again, { path: `${p}/` })).toEqual({ path: p, created: [], changes: [] });
      expect(await dirCreate.run(again, { path: root })).toEqual({ path: root, created: [], changes: [] });
      expect(again.journaled).toEqual([]);
      // only the missing part of a path is created
      const more = (await dirCreate.run(again, { path: join(root, "a", "c") })) as any;
      expect(more.created).toEqual([join(root, "a", "c")]);
      expect(again.journaled as unknown).toEqual([{ changes: [created(join(root, "a", "c"))], settled: "done" }]);
    });

    test("an exact grant creates that directory only", async () => {
      const ctx = makeCtx([`file_write: ${w}/exact-${m}`, `file_write: ${w}/nop-${m}/d`]);
      expect(await dirCreate.run(ctx, { path: join(w, `exact-${m}`) })).toMatchObject({
        created: [join(w, `exact-${m}`)],
      });
      invalid(await rejection(dirCreate.run(ctx, { path: join(w, `nop-${m}`, "d") })), /no such file/);
      expect(existsSync(join(w, `nop-${m}`))).toBe(false);
      expect(ctx.journaled.length).toBe(1);
    });

    test("a file in the way, or as a parent: refused", async () => {
      const ctx = makeCtx([`file_write: ${w}/*`]);
      writeFileSync(join(w, `file-${m}`), "f");
      invalid(await rejection(dirCreate.run(ctx, { path: join(w, `file-${m}`) })), /exists and is not a directory/);
      invalid(await rejection(dirCreate.run(ctx, { path: join(w, `file-${m}`, "sub") })), /not a directory/);
      expect(ctx.journaled).toEqual([]);
    });

    test("a denied path, kernel-private state: refused and audited, nothing created", async () => {
      const ctx = makeCtx([`file_write: ${w}/*`]);
      denied(await rejection(dirCreate.run(ctx, { path: join(secret, `x-${m}`) })));
      denied(await rejection(dirCreate.run(ctx, { path: `${w}/../secret/y-${m}` })));
      expect(ctx.denied.length).toBe(2);
      const data = join(dir, `kdata-${m}`);
      mkdirSync(join(data, "files"), { recursive: true });
      const areas = new PrivateAreas({ dataDir: data, configDir: join(dir, "nope") });
      const pctx = makeCtx([`file_write: ${dir}/*`], { privateAreas: areas });
      denied(await rejection(dirCreate.run(pctx, { path: join(data, "state", "evil") })));
      expect(pctx.denied[0]!.reason).toMatch(/kernel-private/);
      expect(await dirCreate.run(pctx, { path: join(data, "files", "ok") })).toMatchObject({
        created: [join(data, "files", "ok")],
      });
      expect(readdirSync(secret)).toEqual([]);
      expect(existsSync(join(data, "state"))).toBe(false);
      expect(ctx.journaled).toEqual([]);
    });

    test("a symlink as the last component, or in a parent: refused", async () => {
      const ctx = makeCtx([`file_write: ${w}/*`]);
      const link = join(w, `sl-${m}`);
      symlinkSync(secret, link);
      denied(await rejection(dirCreate.run(ctx, { path: link })));
      denied(await rejection(dirCreate.run(ctx, { path: join(link, "in") })));
      denied(await rejection(dirCreate.run(ctx, { path: join(link, "in", "deeper") })));
      expect(readdirSync(secret)).toEqual([]);
      expect(ctx.journaled).toEqual([]);
    });

    test("an error after begin, before anything is made: settled failed", async () => {
      const parent = join(w, `vanishing-${m}`);
      mkdirSync(parent);
      const ctx = makeCtx([`file_write: ${w}/*`], { onBegin: () => rmSync(parent, { recursive: true }) });
      invalid(await rejection(dirCreate.run(ctx, { path: join(parent, "new") })), /no such file/);
      expect(ctx.journaled.map((j) => j.settled)).toEqual(["failed"]);
      expect(existsSync(parent)).toBe(false);
    });
  });
}
